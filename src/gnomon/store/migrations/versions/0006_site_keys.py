"""sites: keys, the spaces an agent polls for, JWT owners of reservations as `jwt:<sub>`

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
JWT = "jwt:"
OWNER_MAX = 200

reservations = sa.table("reservations", sa.column("id", sa.String), sa.column("owner", sa.String))
tokens = sa.table("tokens", sa.column("id", sa.String))


def upgrade() -> None:
    op.create_table(
        "site_keys",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint("site"),
    )
    op.add_column("agents", sa.Column("spaces", JSON, nullable=True))
    # A reservation owner that is no token's id was a JWT subject: it is `jwt:<sub>` now.
    conn = op.get_bind()
    ids = {r[0] for r in conn.execute(sa.select(tokens.c.id))}
    for res_id, owner in conn.execute(sa.select(reservations.c.id, reservations.c.owner)).all():
        if owner in ids or owner.startswith(JWT) or len(JWT + owner) > OWNER_MAX:
            continue
        conn.execute(
            reservations.update().where(reservations.c.id == res_id).values(owner=JWT + owner)
        )


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(reservations.c.id, reservations.c.owner).where(
            reservations.c.owner.startswith(JWT)
        )
    ).all()
    for res_id, owner in rows:
        conn.execute(
            reservations.update()
            .where(reservations.c.id == res_id)
            .values(owner=owner.removeprefix(JWT))
        )
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("spaces")
    op.drop_table("site_keys")

"""sites: agents seen per site, reservations of a site's time

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", sa.Float(precision=53), nullable=False),
        sa.Column("last_contact_at", sa.Float(precision=53), nullable=False),
        sa.Column("claimed", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("site", "agent_id"),
    )
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("space", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("owner_name", sa.String(length=200), nullable=True),
        sa.Column("start_at", sa.Float(precision=53), nullable=False),
        sa.Column("end_at", sa.Float(precision=53), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(["space"], ["spaces.name"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reservations_site", "reservations", ["site", "start_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reservations_site", table_name="reservations")
    op.drop_table("reservations")
    op.drop_table("agents")

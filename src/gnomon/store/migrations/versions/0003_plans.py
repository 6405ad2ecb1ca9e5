"""plans: generated instrument schedules, their revisions and verification reports

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("space", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("t0", sa.Float(precision=53), nullable=False),
        sa.Column("t1", sa.Float(precision=53), nullable=False),
        sa.Column("parent_id", sa.String(length=26), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("blocks", JSON, nullable=False),
        sa.Column("commands", sa.Text(), nullable=False),
        sa.Column("verification", JSON, nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("dispatches", JSON, nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(["space"], ["spaces.name"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_plans_space", "plans", ["space", "id"], unique=False)
    op.create_index("ix_plans_parent", "plans", ["parent_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_plans_parent", table_name="plans")
    op.drop_index("ix_plans_space", table_name="plans")
    op.drop_table("plans")

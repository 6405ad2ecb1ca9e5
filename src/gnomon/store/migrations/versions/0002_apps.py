"""apps: execution contexts; jobs bound to an app; stable space guids

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import uuid

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("space", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("cwd", sa.String(length=1000), nullable=True),
        sa.Column("env", JSON, nullable=False),
        sa.Column("executor", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.Float(precision=53), nullable=False),
        sa.Column("updated_at", sa.Float(precision=53), nullable=False),
        sa.Column("deleted_at", sa.Float(precision=53), nullable=True),
        sa.ForeignKeyConstraint(["space"], ["spaces.name"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_apps_space_name",
        "apps",
        ["space", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )

    op.add_column("spaces", sa.Column("guid", sa.String(length=36), nullable=True))
    spaces = sa.table("spaces", sa.column("name", sa.String), sa.column("guid", sa.String))
    conn = op.get_bind()
    for (name,) in conn.execute(sa.select(spaces.c.name)).all():
        conn.execute(sa.update(spaces).where(spaces.c.name == name).values(guid=str(uuid.uuid4())))
    op.create_index("ux_spaces_guid", "spaces", ["guid"], unique=True)

    op.add_column("jobs", sa.Column("app_id", sa.String(length=36), nullable=True))
    op.add_column("jobs", sa.Column("labels", JSON, server_default=sa.text("'{}'"), nullable=False))
    # Jobs without an app stay unique per (space, name); jobs of an app per (app, name).
    op.drop_index(
        "ux_jobs_space_name",
        table_name="jobs",
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ux_jobs_space_name",
        "jobs",
        ["space", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL AND app_id IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL AND app_id IS NULL"),
    )
    op.create_index(
        "ux_jobs_app_name",
        "jobs",
        ["app_id", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL AND app_id IS NOT NULL"),
        postgresql_where=sa.text("deleted_at IS NULL AND app_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ux_jobs_app_name", table_name="jobs")
    op.drop_index("ux_jobs_space_name", table_name="jobs")
    op.create_index(
        "ux_jobs_space_name",
        "jobs",
        ["space", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("labels")
        batch_op.drop_column("app_id")
    op.drop_index("ux_spaces_guid", table_name="spaces")
    with op.batch_alter_table("spaces", schema=None) as batch_op:
        batch_op.drop_column("guid")
    op.drop_index("ux_apps_space_name", table_name="apps")
    op.drop_table("apps")

"""plan dispatches: a table keyed by (plan, target), so a plan goes to a target once

A plan's dispatches move from the JSON list `plans.dispatches` into `plan_dispatches`. Earlier
dispatches of one plan to the same target (made before dispatching was idempotent) become one
row: the first one's time, all their runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

plans = sa.table("plans", sa.column("id", sa.String), sa.column("dispatches", JSON))
dispatches = sa.table(
    "plan_dispatches",
    sa.column("plan_id", sa.String),
    sa.column("target", sa.String),
    sa.column("site", sa.String),
    sa.column("job_id", sa.String),
    sa.column("run_ids", JSON),
    sa.column("at", sa.Float),
)


def target(record: dict[str, Any]) -> str:
    return f"site:{record['site']}" if record.get("site") else f"job:{record['job_id']}"


def upgrade() -> None:
    op.create_table(
        "plan_dispatches",
        sa.Column("plan_id", sa.String(length=26), nullable=False),
        sa.Column("target", sa.String(length=80), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=True),
        sa.Column("job_id", sa.String(length=26), nullable=False),
        sa.Column("run_ids", JSON, nullable=False),
        sa.Column("at", sa.Float(precision=53), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"]),
        sa.PrimaryKeyConstraint("plan_id", "target"),
    )
    conn = op.get_bind()
    for plan_id, records in conn.execute(sa.select(plans.c.id, plans.c.dispatches)).all():
        rows: dict[str, dict[str, Any]] = {}
        for record in sorted(records or [], key=lambda r: r["at"]):
            key = target(record)
            if key in rows:
                rows[key]["run_ids"] = [*rows[key]["run_ids"], *record["run_ids"]]
                continue
            rows[key] = {
                "plan_id": plan_id,
                "target": key,
                "site": record.get("site"),
                "job_id": record["job_id"],
                "run_ids": list(record["run_ids"]),
                "at": record["at"],
            }
        if rows:
            conn.execute(dispatches.insert(), list(rows.values()))
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("dispatches")


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("dispatches", JSON, nullable=False, server_default="[]"))
    conn = op.get_bind()
    by_plan: dict[str, list[dict[str, Any]]] = {}
    query = sa.select(dispatches).order_by(dispatches.c.plan_id, dispatches.c.at)
    for row in conn.execute(query).mappings():
        by_plan.setdefault(row["plan_id"], []).append(
            {
                "at": row["at"],
                "site": row["site"],
                "job_id": row["job_id"],
                "run_ids": row["run_ids"],
            }
        )
    for plan_id, records in by_plan.items():
        conn.execute(plans.update().where(plans.c.id == plan_id).values(dispatches=records))
    with op.batch_alter_table("plans") as batch:
        batch.alter_column("dispatches", server_default=None)
    op.drop_table("plan_dispatches")

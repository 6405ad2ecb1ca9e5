"""run_tallies, run_finishes: what /v1/stats reads instead of the runs table

Runs per (space, executor, state), and ended runs per (finishing minute, space, state).
Triggers on `runs` append +1/-1 rows to run_tally_deltas and run_finish_deltas; store.stats
folds those into the totals now and then. Appending never waits for a row lock, so writers
never queue or deadlock on a counter.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ENDED = "('succeeded', 'failed', 'timed_out', 'cancelled', 'lost')"
SQLITE_MINUTE = "CAST({r}.finished_at / 60 AS INTEGER)"
PG_MINUTE = "floor({r}.finished_at / 60)::bigint"


def _counted(r: str) -> str:
    return f"{r}.finished_at IS NOT NULL AND {r}.state IN {ENDED}"


def _finish(r: str, n: int) -> str:
    minute = SQLITE_MINUTE.format(r=r)
    return (
        f"INSERT INTO run_finish_deltas (space, state, minute, n) "
        f"SELECT {r}.space, {r}.state, {minute}, {n} WHERE {_counted(r)};\n"
    )


def _tally(r: str) -> str:
    return f"({r}.space, {r}.executor, {r}.state, {1 if r == 'NEW' else -1})"


TALLY = "INSERT INTO run_tally_deltas (space, executor, state, n) VALUES "
# Row triggers, whose WHEN spares the statements for the rows they would not count (a new
# run is rarely ended; most updates change no state).
SQLITE = [
    f"CREATE TRIGGER runs_tally_insert AFTER INSERT ON runs BEGIN {TALLY}{_tally('NEW')}; END",
    f"CREATE TRIGGER runs_finish_insert AFTER INSERT ON runs WHEN {_counted('NEW')} BEGIN\n"
    + _finish("NEW", 1)
    + "END",
    "CREATE TRIGGER runs_tally_update AFTER UPDATE OF space, executor, state ON runs "
    "WHEN OLD.state IS NOT NEW.state OR OLD.space IS NOT NEW.space "
    f"OR OLD.executor IS NOT NEW.executor BEGIN {TALLY}{_tally('OLD')}, {_tally('NEW')}; END",
    "CREATE TRIGGER runs_finish_update AFTER UPDATE OF space, state, finished_at ON runs "
    f"WHEN ({_counted('OLD')} OR {_counted('NEW')}) AND (OLD.state IS NOT NEW.state "
    "OR OLD.finished_at IS NOT NEW.finished_at OR OLD.space IS NOT NEW.space) BEGIN\n"
    + _finish("OLD", -1)
    + _finish("NEW", 1)
    + "END",
    f"CREATE TRIGGER runs_tally_delete AFTER DELETE ON runs BEGIN {TALLY}{_tally('OLD')}; END",
    f"CREATE TRIGGER runs_finish_delete AFTER DELETE ON runs WHEN {_counted('OLD')} BEGIN\n"
    + _finish("OLD", -1)
    + "END",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS runs_{what}_{op}"
    for what in ("tally", "finish")
    for op in ("insert", "update", "delete")
]


def _pg_sides(table: str, n: int) -> str:
    minute = PG_MINUTE.format(r=table)
    return (
        f"INSERT INTO run_tally_deltas (space, executor, state, n) "
        f"SELECT space, executor, state, {n} * count(*) FROM {table} "
        f"GROUP BY space, executor, state;\n"
        f"INSERT INTO run_finish_deltas (space, state, minute, n) "
        f"SELECT space, state, {minute}, {n} * count(*) FROM {table} "
        f"WHERE finished_at IS NOT NULL AND state IN {ENDED} GROUP BY 1, 2, 3;\n"
    )


def _pg_row(r: str, n: int) -> str:
    minute = PG_MINUTE.format(r=r)
    return (
        f"INSERT INTO run_tally_deltas (space, executor, state, n) "
        f"VALUES ({r}.space, {r}.executor, {r}.state, {n});\n"
        f"IF {r}.finished_at IS NOT NULL AND {r}.state IN {ENDED} THEN "
        f"INSERT INTO run_finish_deltas (space, state, minute, n) "
        f"VALUES ({r}.space, {r}.state, {minute}, {n}); END IF;\n"
    )


# Inserts and deletes: statement triggers with transition tables, one grouped insert per
# statement however many runs it wrote.
PG = [
    "CREATE FUNCTION runs_tally_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n"
    + _pg_sides("new_runs", 1)
    + "RETURN NULL; END $$",
    "CREATE FUNCTION runs_tally_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n"
    + _pg_row("OLD", -1)
    + _pg_row("NEW", 1)
    + "RETURN NULL; END $$",
    "CREATE FUNCTION runs_tally_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n"
    + _pg_sides("old_runs", -1)
    + "RETURN NULL; END $$",
    "CREATE TRIGGER runs_tally_insert AFTER INSERT ON runs REFERENCING NEW TABLE AS new_runs "
    "FOR EACH STATEMENT EXECUTE FUNCTION runs_tally_insert()",
    # A row trigger whose WHEN spares the output and lease updates any call.
    "CREATE TRIGGER runs_tally_update AFTER UPDATE OF space, executor, state, finished_at "
    "ON runs FOR EACH ROW WHEN ((OLD.space, OLD.executor, OLD.state, OLD.finished_at) "
    "IS DISTINCT FROM (NEW.space, NEW.executor, NEW.state, NEW.finished_at)) "
    "EXECUTE FUNCTION runs_tally_update()",
    "CREATE TRIGGER runs_tally_delete AFTER DELETE ON runs REFERENCING OLD TABLE AS old_runs "
    "FOR EACH STATEMENT EXECUTE FUNCTION runs_tally_delete()",
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS runs_tally_insert ON runs",
    "DROP TRIGGER IF EXISTS runs_tally_update ON runs",
    "DROP TRIGGER IF EXISTS runs_tally_delete ON runs",
    "DROP FUNCTION IF EXISTS runs_tally_insert()",
    "DROP FUNCTION IF EXISTS runs_tally_update()",
    "DROP FUNCTION IF EXISTS runs_tally_delete()",
]


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    serial = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "run_tallies",
        sa.Column("space", sa.String(length=64), nullable=False),
        sa.Column("executor", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("space", "executor", "state"),
    )
    op.create_table(
        "run_tally_deltas",
        sa.Column("id", serial, autoincrement=True, nullable=False),
        sa.Column("space", sa.String(length=64), nullable=False),
        sa.Column("executor", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "run_finishes",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("space", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "space", "state"),
    )
    op.create_table(
        "run_finish_deltas",
        sa.Column("id", serial, autoincrement=True, nullable=False),
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("space", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    minute = (PG_MINUTE if pg else SQLITE_MINUTE).format(r="runs")
    op.execute(
        "INSERT INTO run_tallies (space, executor, state, n) "
        "SELECT space, executor, state, count(*) FROM runs GROUP BY space, executor, state"
    )
    op.execute(
        f"INSERT INTO run_finishes (space, state, minute, n) "
        f"SELECT space, state, {minute}, count(*) FROM runs "
        f"WHERE finished_at IS NOT NULL AND state IN {ENDED} GROUP BY 1, 2, 3"
    )
    for sql in PG if pg else SQLITE:
        op.execute(sql)


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for sql in PG_DROP if pg else SQLITE_DROP:
        op.execute(sql)
    for table in ("run_finish_deltas", "run_finishes", "run_tally_deltas", "run_tallies"):
        op.drop_table(table)

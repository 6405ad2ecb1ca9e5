"""Tables. Times are UTC epoch seconds (double precision) — cheap to compare and batch."""

from __future__ import annotations

import sqlalchemy as sa

from gnomon.vocabulary import HELD_STATES, RunState

metadata = sa.MetaData()

_QUEUED = f"state = '{RunState.queued.value}'"
_HELD = "state IN ({})".format(", ".join(f"'{s.value}'" for s in HELD_STATES))
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
Id = sa.String(26)
Time = sa.Float(precision=53)

spaces = sa.Table(
    "spaces",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("created_at", Time, nullable=False),
    # A stable UUID, for faces that name spaces by guid (the Cloud Foundry scheduler).
    sa.Column("guid", sa.String(36)),
    sa.Index("ux_spaces_guid", "guid", unique=True),
)

# Execution contexts: a job bound to an app runs with its working directory, environment
# and executor. Ids are UUIDs, so an app can carry the guid a foreign platform gave it.
apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("space", sa.String(64), sa.ForeignKey("spaces.name"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("cwd", sa.String(1000)),
    sa.Column("env", JSON, nullable=False),
    sa.Column("executor", sa.String(80), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("deleted_at", Time),
    sa.Index(
        "ux_apps_space_name",
        "space",
        "name",
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    ),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),
    sa.Column("admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("revoked_at", Time),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column("token_id", Id, sa.ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True),
    sa.Column(
        "space", sa.String(64), sa.ForeignKey("spaces.name", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("role", sa.String(16), nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("space", sa.String(64), sa.ForeignKey("spaces.name"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("action", JSON, nullable=False),
    sa.Column("executor", sa.String(80), nullable=False),
    sa.Column("timeout_s", sa.Float),
    sa.Column("retry", JSON, nullable=False),
    sa.Column("concurrency", JSON, nullable=False),
    sa.Column("params", JSON, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("deleted_at", Time),
    sa.Column("app_id", sa.String(36)),
    # Fields a face keeps for its clients and gnomon does not interpret (disk_in_mb…).
    sa.Column("labels", JSON, nullable=False, server_default=sa.text("'{}'")),
    # Per-executor settings, checked by domain.validate_executor_options (Slurm partition…).
    sa.Column("executor_options", JSON, nullable=False, server_default=sa.text("'{}'")),
    # Names are unique per space among jobs without an app, per app among jobs of an app.
    sa.Index(
        "ux_jobs_space_name",
        "space",
        "name",
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL AND app_id IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL AND app_id IS NULL"),
    ),
    sa.Index(
        "ux_jobs_app_name",
        "app_id",
        "name",
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL AND app_id IS NOT NULL"),
        postgresql_where=sa.text("deleted_at IS NULL AND app_id IS NOT NULL"),
    ),
)

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("job_id", Id, sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("expr", sa.String(200), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("overlap", sa.String(16), nullable=False),
    sa.Column("catchup_window_s", sa.Integer, nullable=False),
    sa.Column("catchup", sa.String(8), nullable=False),
    sa.Column("jitter_s", sa.Float, nullable=False),
    sa.Column("params", JSON, nullable=False),
    sa.Column("anchor_at", Time, nullable=False),
    sa.Column("next_fire_at", Time),
    # When the scheduler takes the schedule up: next_fire_at, or a little earlier for
    # schedules whose runs may be created ahead of their slot (overlap=allow).
    sa.Column("due_at", Time),
    sa.Column("last_fire_at", Time),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Column("deleted_at", Time),
    sa.Index(
        "ix_schedules_due",
        "due_at",
        sqlite_where=sa.text("due_at IS NOT NULL"),
        postgresql_where=sa.text("due_at IS NOT NULL"),
    ),
    sa.Index("ix_schedules_job", "job_id"),
)

# Slots that did not simply become a run: missed, coalesced or skipped. A range of
# consecutive slots is one row (fire_at .. until_at, count).
fires = sa.Table(
    "fires",
    metadata,
    sa.Column("schedule_id", Id, primary_key=True),
    sa.Column("fire_at", Time, primary_key=True),
    sa.Column("until_at", Time, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("recorded_at", Time, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("job_id", Id, sa.ForeignKey("jobs.id"), nullable=False),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("executor", sa.String(80), nullable=False),
    sa.Column("schedule_id", Id),
    sa.Column("scheduled_for", Time),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("status", sa.String(200)),
    sa.Column("eta_s", sa.Float),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("params", JSON, nullable=False),
    sa.Column("timeout_s", sa.Float),
    sa.Column("not_before", Time, nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("message", sa.Text),
    sa.Column("external_id", sa.String(200)),
    sa.Column("output", sa.Text, nullable=False, server_default=""),
    sa.Column("output_size", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("worker_id", sa.String(64)),
    sa.Column("lease_expires_at", Time),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("claimed_at", Time),
    sa.Column("started_at", Time),
    sa.Column("finished_at", Time),
    sa.Column("updated_at", Time, nullable=False),
    sa.Index(
        "ix_runs_queue",
        "executor",
        "not_before",
        "id",
        sqlite_where=sa.text(_QUEUED),
        postgresql_where=sa.text(_QUEUED),
    ),
    sa.Index(
        "ix_runs_leases",
        "lease_expires_at",
        sqlite_where=sa.text(_HELD),
        postgresql_where=sa.text(_HELD),
    ),
    sa.Index("ix_runs_job", "job_id", "id"),
    # The database is the arbiter of "a slot fires once".
    sa.Index(
        "ux_runs_slot",
        "schedule_id",
        "scheduled_for",
        unique=True,
        sqlite_where=sa.text("schedule_id IS NOT NULL"),
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    ),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("run_id", Id, nullable=False),
    sa.Column("job_id", Id, nullable=False),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("executor", sa.String(80), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("status", sa.String(200)),
    sa.Column("at", Time, nullable=False),
    sa.Index("ix_events_run", "run_id", "id"),
)

# What /v1/stats reads: runs per (space, executor, state), and ended runs per (finishing
# minute, space, state). Triggers on `runs` (migration 0008) append +1/-1 rows to the deltas;
# store.stats folds them into the totals now and then.
Serial = sa.BigInteger().with_variant(sa.Integer, "sqlite")
run_tallies = sa.Table(
    "run_tallies",
    metadata,
    sa.Column("space", sa.String(64), primary_key=True),
    sa.Column("executor", sa.String(80), primary_key=True),
    sa.Column("state", sa.String(16), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)
run_tally_deltas = sa.Table(
    "run_tally_deltas",
    metadata,
    sa.Column("id", Serial, primary_key=True, autoincrement=True),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("executor", sa.String(80), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
)
run_finishes = sa.Table(
    "run_finishes",
    metadata,
    sa.Column("minute", sa.BigInteger, primary_key=True),  # floor(finished_at / 60)
    sa.Column("space", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(16), primary_key=True),
    sa.Column("n", sa.BigInteger, nullable=False),
)
run_finish_deltas = sa.Table(
    "run_finish_deltas",
    metadata,
    sa.Column("id", Serial, primary_key=True, autoincrement=True),
    sa.Column("minute", sa.BigInteger, nullable=False),
    sa.Column("space", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
)

# Generated plans: a policy's blocks and script for a window, with the verifier's report.
# Revisions point at the plan they were made from (parent_id) and count up from 1.
plans = sa.Table(
    "plans",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("space", sa.String(64), sa.ForeignKey("spaces.name"), nullable=False),
    sa.Column("policy", sa.String(64), nullable=False),
    sa.Column("config", JSON, nullable=False),  # the overrides given, not the merged config
    sa.Column("t0", Time, nullable=False),
    sa.Column("t1", Time, nullable=False),
    sa.Column("parent_id", Id),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("blocks", JSON, nullable=False),
    sa.Column("commands", sa.Text, nullable=False),
    sa.Column("verification", JSON, nullable=False),
    sa.Column("verified", sa.Boolean, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("ix_plans_space", "space", "id"),
    sa.Index("ix_plans_parent", "parent_id"),
)

# A plan's dispatches: one per (plan, target), the key that makes dispatching idempotent
# across requests and processes. `target` is `site:<name>` or `job:<job id>`; `job_id` the
# job whose runs carry the plan, `run_ids` those runs.
plan_dispatches = sa.Table(
    "plan_dispatches",
    metadata,
    sa.Column("plan_id", Id, sa.ForeignKey("plans.id"), primary_key=True),
    sa.Column("target", sa.String(80), primary_key=True),
    sa.Column("site", sa.String(64)),
    sa.Column("job_id", Id, nullable=False),
    sa.Column("run_ids", JSON, nullable=False),
    sa.Column("at", Time, nullable=False),
)

# Site agents, one row per (site, agent id): when first and last heard from, and the spaces
# it polled for (those that use the site and where it may claim; NULL: shown to admins only).
agents = sa.Table(
    "agents",
    metadata,
    sa.Column("site", sa.String(64), primary_key=True),
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("first_seen_at", Time, nullable=False),
    sa.Column("last_contact_at", Time, nullable=False),
    sa.Column("claimed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("spaces", JSON),
)

# A site's key (its SHA-256): the site's own software shows it to a face's site routes.
site_keys = sa.Table(
    "site_keys",
    metadata,
    sa.Column("site", sa.String(64), primary_key=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

# A window [start_at, end_at) of a site's time held by one owner (a token id, or `jwt:<sub>`
# for an external JWT's subject); windows of one site never overlap.
reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("space", sa.String(64), sa.ForeignKey("spaces.name"), nullable=False),
    sa.Column("site", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("owner_name", sa.String(200)),
    sa.Column("start_at", Time, nullable=False),
    sa.Column("end_at", Time, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("ix_reservations_site", "site", "start_at"),
)

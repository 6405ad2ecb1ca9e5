"""The words gnomon speaks: run states and their sets, executor names, the site prefix.

The one place where these names are spelled (besides the migrations, which freeze them).
Everything else refers to them through this module. Pure, no imports of gnomon.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal


class RunState(StrEnum):
    pending = "pending"  # held back by its schedule (overlap=buffer_one) until its turn
    queued = "queued"  # waiting for an executor (or a site's agent) to claim it
    claimed = "claimed"  # taken by a worker, not started yet
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    cancelled = "cancelled"
    lost = "lost"  # its worker stopped heartbeating, or its executor failed


S = RunState
WAITING_STATES = (S.pending, S.queued)  # not taken by any worker
ACTIVE_STATES = (S.queued, S.claimed, S.running)  # counts against a schedule's overlap
LIVE_STATES = (S.pending, *ACTIVE_STATES)  # not ended
HELD_STATES = (S.claimed, S.running)  # a worker holds the lease
FINAL_STATES = (S.succeeded, S.failed, S.timed_out, S.cancelled, S.lost)
RETRYABLE_STATES = (S.failed, S.timed_out, S.lost)
Retryable = Literal["failed", "timed_out", "lost"]  # RETRYABLE_STATES, as a pydantic type
# What a site's agent may report a run it holds to be in (specs.ReportSpec).
Reportable = Literal["claimed", "running", "succeeded", "failed", "timed_out", "cancelled"]

# The state machine of DESIGN.md. A retry moves a failed/timed_out/lost run back to queued.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    S.pending: frozenset({S.queued, S.cancelled}),
    S.queued: frozenset({S.claimed, S.cancelled}),
    S.claimed: frozenset({S.running, *FINAL_STATES, S.queued}),
    S.running: frozenset(FINAL_STATES),
    S.succeeded: frozenset(),
    S.failed: frozenset({S.queued}),
    S.timed_out: frozenset({S.queued}),
    S.cancelled: frozenset(),
    S.lost: frozenset({S.queued}),
}


def values(states: tuple[RunState, ...]) -> tuple[str, ...]:
    """The states as plain strings (for SQL literals and sets of stored values)."""
    return tuple(s.value for s in states)


# --- executors ------------------------------------------------------------------------------

LOCAL = "local"
CELERY = "celery"
SLURM = "slurm"
SITE_PREFIX = "site:"  # `site:<name>`: runs queued for a remote site's agents
EXECUTOR_KINDS = (LOCAL, CELERY, SLURM, SITE_PREFIX)


def site_executor(site: str) -> str:
    return SITE_PREFIX + site


def site_of(executor: str) -> str | None:
    """The site an executor names, or None for a server-side executor."""
    return executor[len(SITE_PREFIX) :] if executor.startswith(SITE_PREFIX) else None

"""Which executors this server runs: a job naming one it does not is refused, and runs queued
for one it does not say so instead of waiting silently."""

from __future__ import annotations

from typing import Any

from gnomon.config import Settings
from gnomon.errors import Invalid
from gnomon.vocabulary import CELERY, SLURM, WAITING_STATES


def switched_off(settings: Settings, executor: str) -> str | None:
    """Why this server does not run `executor`, naming the setting; None when it does."""
    if executor == SLURM and not settings.slurm_enabled:
        return "executor 'slurm' is not enabled on this server (set GNOMON_SLURM_ENABLED=true)"
    if executor == CELERY and not settings.celery_broker_url:
        return "executor 'celery' is not enabled on this server (set GNOMON_CELERY_BROKER_URL)"
    return None


def require_enabled(settings: Settings, executor: str) -> None:
    """422 naming the setting when this server does not run `executor`."""
    if reason := switched_off(settings, executor):
        raise Invalid("executor", reason)


def annotate(settings: Settings, run: dict[str, Any]) -> dict[str, Any]:
    """A waiting run whose executor is switched off, with that as its status."""
    if run.get("state") in WAITING_STATES and (reason := switched_off(settings, run["executor"])):
        return {**run, "status": reason}
    return run

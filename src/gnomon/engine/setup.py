"""Which dispatchers a server runs: the local one, and one per scale-out executor configured
(Slurm, Celery) — each with its own claim loop, so remote work never waits for local slots."""

from __future__ import annotations

from gnomon.abc import Executor
from gnomon.engine.dispatcher import Dispatcher
from gnomon.engine.executors.local import LocalExecutor
from gnomon.service import Service


def remote_executors(svc: Service) -> list[Executor]:
    settings = svc.settings
    found: list[Executor] = []
    if settings.slurm_enabled:
        from gnomon.engine.executors.slurm import SlurmExecutor

        found.append(SlurmExecutor(settings))
    if settings.celery_broker_url:
        from gnomon.engine.executors.celery.executor import CeleryExecutor

        found.append(CeleryExecutor(settings))
    return found


def dispatchers(svc: Service) -> list[Dispatcher]:
    executors = [[LocalExecutor(svc.settings)], *([e] for e in remote_executors(svc))]
    return [Dispatcher(svc.execution, svc.settings, svc.signals, e) for e in executors]

"""The old name of the Celery worker app, kept for scripts that start workers with
`celery -A gnomon.celery_worker worker`. It only re-exports: the worker lives in
`gnomon.engine.executors.celery.worker` (start new workers with
`celery -A gnomon.engine.executors.celery.worker worker -Q gnomon`). Nothing in gnomon
imports this module."""

from gnomon.engine.executors.celery.protocol import (
    TASK,
    cancel_key,
    claim_key,
    done_key,
    make_app,
)
from gnomon.engine.executors.celery.worker import app, run_attempt

__all__ = ["TASK", "app", "cancel_key", "claim_key", "done_key", "make_app", "run_attempt"]

"""What gnomon's Celery executor and its workers agree on: the task's name, the Celery app's
configuration, and the keys of the report store (a Redis) the workers write and gnomon reads."""

from __future__ import annotations

from celery import Celery

from gnomon.config import Settings

TASK = "gnomon.run"
RESULT_TTL_S = 7 * 86400  # how long claims, results and cancel marks stay in the report store
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def claim_key(task_id: str) -> str:
    """Set once by the delivery that runs the task, then refreshed as its heartbeat."""
    return f"gnomon:celery:beat:{task_id}"


def done_key(task_id: str) -> str:
    return f"gnomon:celery:done:{task_id}"


def cancel_key(task_id: str) -> str:
    return f"gnomon:celery:cancel:{task_id}"


def make_app(settings: Settings) -> Celery:
    app = Celery("gnomon", broker=settings.celery_broker_url or DEFAULT_BROKER)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,
        task_serializer="json",
        accept_content=["json"],
        worker_prefetch_multiplier=settings.celery_prefetch,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        # Unacknowledged messages of a worker that died come back after this long (Redis).
        broker_transport_options={
            "visibility_timeout": settings.celery_visibility_timeout_s,
            "unacked_restore_interval": max(1, round(settings.celery_visibility_timeout_s / 4)),
            "unacked_restore_throttle": 1,
        },
    )
    return app

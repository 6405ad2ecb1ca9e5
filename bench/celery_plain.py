"""Plain Celery, for bench/celery_throughput.py: the same no-op work through `delay()`, no gnomon.

Configured like gnomon's own Celery app (late acknowledgement, same prefetch), with the
Redis result backend so the sender can tell when every task is done.
"""

from __future__ import annotations

import os

from celery import Celery

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/12")

app = Celery("plain", broker=BROKER, backend=BROKER)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    task_serializer="json",
    accept_content=["json"],
    worker_prefetch_multiplier=4,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="plain.noop")
def noop(n: int) -> int:
    return n

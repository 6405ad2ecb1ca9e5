"""Celery for bench/peers.py: the app its workers run and the `.delay()` producer.

Workers: `celery -A side_celery worker -Q QUEUE ...` (run from this folder). The task counts
itself done with one Redis INCR (no result backend), which the producer polls.
Environment: PEERS_REDIS_URL (broker and counter), PEERS_QUEUE, and PEERS_CELERY_PROFILE —
`default` (Celery's defaults) or `executor` (configured like gnomon's Celery executor app and
bench/celery_plain.py: late acknowledgement, reject on worker loss, prefetch 4).

    python side_celery.py --jobs 2000 --clients 16 --out result.json
"""

from __future__ import annotations

import os
import uuid

import producer
import redis
from celery import Celery

REDIS_URL = os.environ.get("PEERS_REDIS_URL", "redis://127.0.0.1:6379/13")
QUEUE = os.environ.get("PEERS_QUEUE", "peers")

app = Celery("peers", broker=REDIS_URL)
app.conf.update(
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_pool_limit=32,  # 16 producer threads must not wait for a connection
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
if os.environ.get("PEERS_CELERY_PROFILE", "default") == "executor":
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=4
    )

_counter: redis.Redis | None = None


@app.task(name="peers.noop")
def noop(key: str) -> None:
    global _counter
    if _counter is None:
        _counter = redis.Redis.from_url(REDIS_URL)
    _counter.incr(key)


def main() -> None:
    args = producer.parser("Celery .delay() producer").parse_args()
    r = redis.Redis.from_url(REDIS_URL)
    key = f"peers:done:{uuid.uuid4().hex}"

    def count() -> int:
        return int(r.get(key) or 0)

    producer.emit(args.out, producer.measure(lambda: noop.delay(key), count, args))


if __name__ == "__main__":
    main()

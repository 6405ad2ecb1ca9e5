"""RQ for bench/peers.py: the no-op job its workers run and the `enqueue()` producer.

Workers: `rq worker --url URL -w rq.worker.SimpleWorker|rq.worker.Worker --path . QUEUE`
(run from this folder). Done is RQ's own record: the queue's finished-job registry.
`--bulk` enqueues all jobs at once (`enqueue_many`, one pipeline) instead of one call each.

    python side_rq.py --url redis://127.0.0.1:6379/14 --queue q --jobs 2000 --out result.json
"""

from __future__ import annotations

import time

import producer
import redis
from rq import Queue

TASK = "side_rq.noop"


def noop() -> None:
    return None


def main() -> None:
    p = producer.parser("RQ enqueue() producer")
    p.add_argument("--url", required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--bulk", action="store_true", help="all jobs in one enqueue_many")
    args = p.parse_args()
    queue = Queue(args.queue, connection=redis.Redis.from_url(args.url))

    def count() -> int:
        failed = queue.failed_job_registry.count
        if failed:
            raise RuntimeError(f"{failed} RQ jobs failed")
        return queue.finished_job_registry.count

    if not args.bulk:
        producer.emit(args.out, producer.measure(lambda: queue.enqueue(TASK), count, args))
        return
    base = count()
    t0 = time.perf_counter()
    queue.enqueue_many([Queue.prepare_data(TASK) for _ in range(args.jobs)])
    submit_s = time.perf_counter() - t0
    producer.wait_for(count, base + args.jobs, args.timeout)
    producer.emit(args.out, producer.result(args, time.perf_counter() - t0, submit_s))


if __name__ == "__main__":
    main()

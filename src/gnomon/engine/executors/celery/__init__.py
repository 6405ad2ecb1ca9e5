"""The `celery` executor, both halves: `executor` (in gnomon: publishes attempts as tasks,
follows their reports) and `worker` (the Celery app workers run:
`celery -A gnomon.engine.executors.celery.worker worker -Q gnomon`). What the two agree on —
the task name, the app's configuration, the report store's keys — is in `protocol`.

Nothing is imported here, so a worker loads only what it needs.
"""

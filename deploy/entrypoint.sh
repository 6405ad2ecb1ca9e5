#!/bin/sh
# gnomon's container entrypoint. `serve` (default): migrate, then serve on $GNOMON_HOST:$GNOMON_PORT.
# `worker [celery worker options]`: a Celery worker for the `celery` executor.
# `agent --site … --handlers …`: a site agent. Anything else runs as given (`gnomon …`, `sh`).
set -e
case "${1:-serve}" in
  serve)
    [ "$#" -gt 0 ] && shift
    exec gnomon serve "$@" ;;
  worker)
    shift
    exec celery -A gnomon.engine.executors.celery.worker worker -Q "${GNOMON_CELERY_QUEUE:-gnomon}" \
      --without-gossip --without-mingle "$@" ;;
  agent)
    shift
    exec gnomon agent "$@" ;;
  *)
    exec "$@" ;;
esac

#!/usr/bin/env bash
# Run every gnomon benchmark in turn (called by `make bench`). Each prints its table on stdout
# (progress goes to stderr). Extra arguments go to every benchmark, e.g.
#   bash bench/run_all.sh --backend sqlite
# Environment: PYTHON (default .venv/bin/python), BENCH_ONLY="submit batch" to run a subset,
# BENCH_OUT=dir to also keep each benchmark's output and JSON results there.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
python=${PYTHON:-$root/.venv/bin/python}
only=${BENCH_ONLY:-submit batch schedules_create e2e_noop shell schedules_lateness idle stats sites slurm celery_throughput peers}
out=${BENCH_OUT:-}
[ -n "$out" ] && mkdir -p "$out"

# name:time limit (s) — each benchmark is bounded; the limits are far above normal run times.
limits="submit:300 shell:600 batch:600 schedules_create:300 e2e_noop:1500 schedules_lateness:900 idle:600 stats:600 sites:600 slurm:600 celery_throughput:900 peers:1200"

failed=()
for name in $only; do
  limit=$(tr ' ' '\n' <<<"$limits" | sed -n "s/^$name://p")
  echo "=== bench/$name.py $* (limit ${limit:-900}s) ===" >&2
  extra=()
  [ -n "$out" ] && extra=(--json "$out/$name.json")
  if [ -n "$out" ]; then
    timeout -s TERM -k 30 "${limit:-900}" "$python" "$here/$name.py" "$@" "${extra[@]}" \
      | tee "$out/$name.txt"
    rc=${PIPESTATUS[0]}
  else
    timeout -s TERM -k 30 "${limit:-900}" "$python" "$here/$name.py" "$@"
    rc=$?
  fi
  if [ "$rc" -ne 0 ]; then
    echo "!!! bench/$name.py failed (exit $rc)" >&2
    failed+=("$name")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "benchmarks that failed: ${failed[*]}" >&2
  exit 1
fi

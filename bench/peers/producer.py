"""Shared by the peers' producer scripts (they run in build/peers-venv, never in gnomon's).

A producer submits N jobs, one call each, from C clients (threads), and waits until the
peer's own record says all N are done; it writes one JSON object to `--out`. Workers are
warmed first with `--warmup` jobs that are not timed.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POLL_S = 0.02  # how often a producer reads the done-count (gnomon's side polls the same)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--warmup", type=int, default=100, help="untimed jobs first (workers warm)")
    p.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    p.add_argument("--out", type=Path, required=True, help="where the JSON result goes")
    return p


def split(jobs: int, clients: int) -> list[int]:
    """`jobs` shared out among `clients` as evenly as possible."""
    return [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]


def submit_threads(submit: Callable[[], Any], jobs: int, clients: int) -> float:
    """Call `submit()` `jobs` times from `clients` threads; returns the seconds it took."""
    if clients == 1:
        t0 = time.perf_counter()
        for _ in range(jobs):
            submit()
        return time.perf_counter() - t0
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            for _ in range(n):
                submit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in split(jobs, clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def wait_for(count: Callable[[], int], target: int, timeout: float) -> None:
    """Poll `count()` until it reaches `target`; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (n := count()) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {n} of {target} done after {timeout:g}s")
        time.sleep(POLL_S)


def measure(
    submit: Callable[[], Any], count: Callable[[], int], args: argparse.Namespace
) -> dict[str, Any]:
    """Warm up, then time `args.jobs` submissions until `count()` has grown by as many."""
    if args.warmup:
        base = count()
        submit_threads(submit, args.warmup, 1)
        wait_for(count, base + args.warmup, args.timeout)
    base = count()
    t0 = time.perf_counter()
    submit_s = submit_threads(submit, args.jobs, args.clients)
    wait_for(count, base + args.jobs, args.timeout)
    return result(args, time.perf_counter() - t0, submit_s)


def result(args: argparse.Namespace, elapsed: float, submit_s: float | None) -> dict[str, Any]:
    return {
        "jobs": args.jobs,
        "clients": args.clients,
        "seconds": elapsed,
        "per_s": args.jobs / elapsed,
        "submit_s": submit_s,
    }


def emit(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data))

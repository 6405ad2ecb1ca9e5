"""Real Celery worker processes (`celery -A gnomon.engine.executors.celery.worker worker`) for
tests and benchmarks, each in a process group of its own so a test can kill one whole with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

REDIS_URL = os.environ.get("GNOMON_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
RABBITMQ_URL = os.environ.get("GNOMON_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
CELERY = str(Path(sys.executable).with_name("celery"))


def celery_env(broker: str = REDIS_URL, **extra: str) -> dict[str, str]:
    """Settings shared by a gnomon server and its workers: a queue of the test's own."""
    return {
        "GNOMON_CELERY_BROKER_URL": broker,
        "GNOMON_CELERY_REPORT_URL": REDIS_URL,
        "GNOMON_CELERY_QUEUE": f"gnomon-test-{uuid.uuid4().hex[:8]}",
        "GNOMON_CELERY_POLL_S": "0.1",
        "GNOMON_CELERY_LOST_AFTER_S": "2",
        "GNOMON_CELERY_VISIBILITY_TIMEOUT_S": "5",
        **extra,
    }


class Worker:
    def __init__(self, env: dict[str, str], log_dir: Path, name: str, concurrency: int = 4):
        self.name = name
        self.log_path = log_dir / f"celery-{name}.log"
        argv = [
            CELERY,
            "-A",
            "gnomon.engine.executors.celery.worker",
            "worker",
            "-Q",
            env["GNOMON_CELERY_QUEUE"],
            "-n",
            f"{name}@%h",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> Worker:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.log()}")
            if " ready." in self.log():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready in {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def pids(self) -> set[int]:
        """The worker and its pool processes."""
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return {int(p) for p in out.stdout.split()}

    def kill9(self) -> None:
        """Kill the worker and its pool at once, as a machine that dies would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

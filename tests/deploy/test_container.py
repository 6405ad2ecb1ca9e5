"""The container image and the compose stack, for real, with podman.

`scripts/container/build.sh` builds the image (and caches its base and layers under build/); the
image then runs against this machine's PostgreSQL and Redis on the host network, and compose.yaml
comes up with podman-compose. Skipped only where no container engine can be installed.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import drop_postgres, free_port, fresh_postgres

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "scripts" / "container" / "build.sh"
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def engine() -> dict[str, str]:
    """Build (or reuse) the images; the environment podman and podman-compose run with."""
    done = subprocess.run(
        ["bash", str(BUILD), "services", "compose"], capture_output=True, text=True, timeout=1500
    )
    if done.returncode == 77:
        pytest.skip(f"no container engine here: {done.stderr.strip().splitlines()[-1]}")
    assert done.returncode == 0, f"image build failed:\n{done.stderr[-4000:]}"
    found = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return {**os.environ, **found}


def podman(env: dict[str, str], *args: str, check: bool = True, timeout: float = 120) -> str:
    """Run podman; its stdout (with `check`, a non-zero exit fails the test)."""
    done = subprocess.run(
        ["podman", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {done.returncode}\n{done.stderr}")
    return done.stdout


def wait_ready(url: str, timeout: float, logs: Callable[[], str] | None = None) -> None:
    """Wait until `url` answers 200 on /readyz; fail with the server's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url}/readyz never answered 200\n{logs() if logs else ''}")


def run_to_end(api: httpx.Client, job: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """Start a run of `job` and wait until it ends."""
    r = api.post(f"/v1/jobs/{job['id']}/runs", json={})
    assert r.status_code == 201, r.text
    run_id = r.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/v1/runs/{run_id}").json()
        if run["state"] in ("succeeded", "failed", "timed_out", "cancelled", "lost"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not end: {run}")


@pytest.fixture
def database() -> Iterator[str]:
    url = fresh_postgres()
    yield url
    drop_postgres(url)


def test_unreachable_database_fails_fast_with_a_clear_message(engine: dict[str, str]) -> None:
    done = subprocess.run(
        ["podman", "run", "--rm", "--network", "host",
         "-e", "GNOMON_DATABASE_URL=postgresql://gnomon@127.0.0.1:1/gnomon",
         "-e", "GNOMON_DATABASE_WAIT_S=2", engine["GNOMON_IMAGE"]],
        env=engine, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 69, done.stderr
    assert "database at 127.0.0.1:1/gnomon did not answer within 2 s" in done.stderr


HANDLERS = """
def hello(task):
    task.output("hello from the site " + task.params["who"] + "\\n")
    return 0

HANDLERS = {"hello": hello}
"""


def test_image_serves_runs_and_stops_without_losing_acknowledged_runs(
    engine: dict[str, str], database: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    name, worker, volume = f"gnomon-ct-{tag}", f"gnomon-ct-worker-{tag}", f"gnomon-ct-{tag}"
    agent = f"gnomon-ct-agent-{tag}"
    site = tmp_path / "site"
    site.mkdir(mode=0o755)
    (site / "site_handlers.py").write_text(HANDLERS)
    (site / "site_handlers.py").chmod(0o644)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    common = [
        "--network", "host",
        "-e", f"GNOMON_DATABASE_URL={database}",
        "-e", f"GNOMON_CELERY_BROKER_URL={REDIS}",
        "-e", f"GNOMON_CELERY_QUEUE=ct-{tag}",
    ]  # fmt: skip
    image = engine["GNOMON_IMAGE"]
    try:
        podman(engine, "run", "-d", "--name", name, "-v", f"{volume}:/var/lib/gnomon",
               "-e", f"GNOMON_PORT={port}", *common, image)  # fmt: skip
        podman(engine, "run", "-d", "--name", worker, *common, image, "worker", "-c", "2")
        wait_ready(url, 120, lambda: podman(engine, "logs", name, check=False))
        podman(engine, "healthcheck", "run", name)  # the image's HEALTHCHECK: /readyz
        user = podman(engine, "exec", name, "id", "-un").strip()
        assert user == "gnomon"
        token = podman(engine, "exec", name, "cat", "/var/lib/gnomon/admin.token").strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

        noop = api.post("/v1/jobs", json={"name": "noop", "action": {"type": "noop"}}).json()
        assert run_to_end(api, noop)["state"] == "succeeded"
        shell = {"type": "shell", "command": "echo from-the-worker"}
        celery = api.post("/v1/jobs", json={"name": "c", "executor": "celery", "action": shell})
        assert celery.status_code == 201, celery.text
        run = run_to_end(api, celery.json(), timeout=90)
        assert run["state"] == "succeeded", run
        assert "from-the-worker" in api.get(f"/v1/runs/{run['id']}/log").text

        # The site agent from the same image, its handlers mounted beside where it starts.
        podman(engine, "run", "-d", "--name", agent, "--network", "host", "-v",
               f"{site}:/site:ro", "-w", "/site", image, "agent", "--site", "ct",
               "--handlers", "site_handlers:HANDLERS", "--url", url, "--token", token,
               "--wait-s", "2")  # fmt: skip
        task = {"type": "task", "name": "hello"}
        job = api.post("/v1/jobs", json={"name": "s", "executor": "site:ct", "action": task})
        assert job.status_code == 201, job.text
        r = api.post(f"/v1/jobs/{job.json()['id']}/runs", json={"params": {"who": "ct"}})
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 60
        while api.get(f"/v1/runs/{r.json()['id']}").json()["state"] != "succeeded":
            assert time.monotonic() < deadline, podman(engine, "logs", agent, check=False)
            time.sleep(0.2)
        assert "hello from the site ct" in api.get(f"/v1/runs/{r.json()['id']}/log").text

        # Runs posted while `podman stop` (SIGTERM) lands: every acknowledged one is kept.
        acked: list[str] = []
        stop = threading.Event()

        def post() -> None:
            with httpx.Client(base_url=url, headers=api.headers, timeout=10) as c:
                while not stop.is_set():
                    try:
                        r = c.post(f"/v1/jobs/{noop['id']}/runs", json={})
                    except httpx.HTTPError:
                        continue
                    if r.status_code == 201:
                        acked.append(r.json()["id"])

        posters = [threading.Thread(target=post) for _ in range(4)]
        for t in posters:
            t.start()
        time.sleep(1.5)
        started = time.monotonic()
        podman(engine, "stop", "-t", "30", name, timeout=60)
        took = time.monotonic() - started
        stop.set()
        for t in posters:
            t.join()
        state = podman(engine, "inspect", "-f", "{{.State.ExitCode}}", name).strip()
        assert state == "0", f"exit code {state} (137: killed, not stopped)"
        assert took < 25, f"stop took {took:.1f} s"
        assert len(acked) > 10
        kept = subprocess.run(
            ["psql", database, "-tAc", "SELECT id FROM runs"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert not set(acked) - set(kept), "acknowledged runs missing after the stop"
        print(f"podman stop: {took:.1f} s, {len(acked)} runs acknowledged, all kept")

        # It starts again on the same data: migrations are idempotent, the token still works.
        podman(engine, "start", name)
        wait_ready(url, 120, lambda: podman(engine, "logs", name, check=False))
        assert api.get(f"/v1/runs/{acked[-1]}").status_code == 200
    finally:
        podman(engine, "rm", "-f", "-v", "-t", "0", name, worker, agent, check=False)
        podman(engine, "volume", "rm", "-f", volume, check=False)


@pytest.mark.parametrize(
    ("file", "executor"), [("compose.yaml", "celery"), ("compose.sqlite.yaml", "local")]
)
def test_compose_stack(engine: dict[str, str], file: str, executor: str) -> None:
    project = f"gnomon-ct-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **engine,
        "POSTGRES_IMAGE": engine["SERVICES_IMAGE"],
        "REDIS_IMAGE": engine["SERVICES_IMAGE"],
        "GNOMON_PUBLISH": f"127.0.0.1:{port}",
    }
    compose = [engine["PODMAN_COMPOSE"], "-p", project, "-f", str(ROOT / file)]

    def run(*args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [*compose, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, f"{' '.join(args)}: {done.returncode}\n{done.stderr[-3000:]}"
        return done.stdout

    def containers() -> list[str]:
        label = f"label=io.podman.compose.project={project}"
        return podman(env, "ps", "-a", "--filter", label, "--format", "{{.Names}}").split()

    try:
        run("up", "-d")
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, 180, lambda: run("logs", "gnomon"))
        token = run("exec", "gnomon", "cat", "/var/lib/gnomon/admin.token").strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        shell = {"type": "shell", "command": "echo composed"}
        job = api.post("/v1/jobs", json={"name": "c", "executor": executor, "action": shell})
        assert job.status_code == 201, job.text
        result = run_to_end(api, job.json(), timeout=120)
        assert result["state"] == "succeeded", result
        assert "composed" in api.get(f"/v1/runs/{result['id']}/log").text
        # Every health check compose.yaml defines passes (the worker has none).
        for name in containers():
            if not name.endswith("_worker_1"):
                podman(env, "healthcheck", "run", name)
    finally:
        # `down -v` keeps the anonymous volumes of VOLUME lines: remove those by name too.
        names = containers()
        anonymous = podman(
            env, "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", *names, check=False
        ).split() if names else []  # fmt: skip
        subprocess.run(
            [*compose, "down", "-v", "-t", "10"], env=env, cwd=ROOT, capture_output=True,
            timeout=180,
        )  # fmt: skip
        if anonymous:
            podman(env, "volume", "rm", "-f", *anonymous, check=False)

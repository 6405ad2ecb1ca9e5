"""The Celery executor with real workers
(`celery -A gnomon.engine.executors.celery.worker worker`) on a real broker: Redis, and one run
through RabbitMQ."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gnomon.config import Settings
from gnomon.engine.executors.celery.protocol import TASK, make_app
from tests.api.helpers import FINAL, create_job, get_run, trigger, wait_state
from tests.celery_workers import RABBITMQ_URL, Worker, celery_env
from tests.engine.conftest import Ledger, check_history
from tests.server import SHARED_CWD, Server, wait_for


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    # One message per worker process: a killed worker then holds only the runs it started
    # (whose silence makes them lost). Messages a dead worker prefetched but never started
    # wait for the broker's redelivery, which can take longer than these tests wait.
    return celery_env(**SHARED_CWD, GNOMON_CELERY_PREFETCH="1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("gnomon-celery"), **env).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def workers(server: Server, env: dict[str, str]) -> Iterator[list[Worker]]:
    started = [Worker(env, server.data_dir, f"w{i}") for i in range(2)]
    try:
        yield [w.wait_ready() for w in started]
    finally:
        for w in started:
            w.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def ledger(server: Server) -> Ledger:
    return Ledger(server.data_dir, None)


def succeeded_twice(server: Server) -> list[dict]:
    return ledger(server).query(
        "SELECT run_id, attempt, COUNT(*) AS n FROM events WHERE state = 'succeeded' "
        "GROUP BY run_id, attempt HAVING COUNT(*) > 1"
    )


def test_a_thousand_noops_through_two_workers(
    api: httpx.Client, server: Server, workers: list[Worker]
) -> None:
    job = create_job(api, {"type": "noop"}, executor="celery")
    r = api.post("/v1/runs:batch", json={"job": job["id"], "runs": [{}] * 1000})
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]

    def ended() -> bool:
        rows = ledger(server).query(
            f"SELECT COUNT(*) AS n FROM runs WHERE job_id = '{job['id']}' "
            "AND state IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'lost')"
        )
        return rows[0]["n"] == len(ids)

    wait_for(ended, timeout=120, interval=0.25)
    rows = ledger(server).query(
        f"SELECT state, message, external_id FROM runs WHERE job_id = '{job['id']}'"
    )
    assert {r["state"] for r in rows} == {"succeeded"}
    assert len({r["external_id"] for r in rows}) == 1000
    hosts = {r["message"].rsplit(":", 1)[-1].rstrip(")") for r in rows}  # worker pids
    pool = set().union(*(w.pids() for w in workers))
    assert {int(p) for p in hosts} <= pool
    assert any(int(p) in workers[0].pids() for p in hosts)
    assert any(int(p) in workers[1].pids() for p in hosts)
    assert not succeeded_twice(server)


def test_shell_output_and_exit_code(api: httpx.Client, workers: list[Worker]) -> None:
    action = {"type": "shell", "command": "echo out-$PARAM_WHO; exit 4"}
    job = create_job(api, action, executor="celery", executor_options={})
    run = wait_state(api, trigger(api, job["id"], params={"who": "celery"})["id"], timeout=30)
    assert run["state"] == "failed" and run["exit_code"] == 4, run
    assert "out-celery" in api.get(f"/v1/runs/{run['id']}/log").text


def test_cancel_stops_the_task(api: httpx.Client, workers: list[Worker]) -> None:
    job = create_job(api, {"type": "noop", "sleep_s": 60}, executor="celery")
    run_id = trigger(api, job["id"])["id"]
    wait_for(lambda: (get_run(api, run_id)["status"] or "").startswith("running on"), 30)
    assert api.post(f"/v1/runs/{run_id}/cancel").status_code == 200
    run = wait_state(api, run_id, timeout=15)
    assert run["state"] == "cancelled", run


def test_duplicate_delivery_runs_once(
    api: httpx.Client, server: Server, workers: list[Worker], env: dict[str, str], shared_dir: Path
) -> None:
    marks = shared_dir / "ran"  # the job runs there, as another user
    action = {"type": "shell", "command": "echo ran >> ran", "cwd": str(shared_dir)}
    job = create_job(api, action, executor="celery")
    run = wait_state(api, trigger(api, job["id"])["id"], timeout=30)
    assert run["state"] == "succeeded", run
    # The broker delivers the same message again (as after a lost acknowledgement).
    app = make_app(Settings(**{k[len("GNOMON_") :].lower(): v for k, v in env.items()}))
    payload = {
        "run": {"id": run["id"], "job_id": job["id"], "attempt": 1},
        "action": action,
        "params": {},
        "timeout_s": None,
    }
    app.send_task(
        TASK, args=[payload], task_id=run["external_id"], queue=env["GNOMON_CELERY_QUEUE"]
    )
    done = f"gnomon.run[{run['external_id']}] succeeded"
    wait_for(lambda: sum(w.log().count(done) for w in workers) >= 2, timeout=30)
    assert marks.read_text() == "ran\n"
    states = [e["state"] for e in api.get(f"/v1/runs/{run['id']}/events").json()["items"]]
    assert states.count("succeeded") == 1


def test_worker_killed_mid_run_is_lost_then_retried(
    api: httpx.Client, server: Server, workers: list[Worker]
) -> None:
    retry = {"max_attempts": 3, "backoff_s": 0.1, "jitter": 0}
    job = create_job(api, {"type": "noop", "sleep_s": 2}, executor="celery", retry=retry)
    r = api.post("/v1/runs:batch", json={"job": job["id"], "runs": [{}] * 16})
    ids = r.json()["ids"]
    victim = workers[0]
    pool = victim.pids()
    host = socket.gethostname()

    def victim_busy() -> bool:
        statuses = [get_run(api, i)["status"] or "" for i in ids]
        return any(
            s.startswith(f"running on {host}:") and int(s.rsplit(":", 1)[1]) in pool
            for s in statuses
        )

    wait_for(victim_busy, timeout=30, interval=0.1)
    victim.kill9()
    runs = [wait_state(api, i, FINAL, timeout=60) for i in ids]
    assert [r["state"] for r in runs] == ["succeeded"] * 16
    lost = 0
    for run in runs:
        steps = check_history(api.get(f"/v1/runs/{run['id']}/events").json()["items"])
        assert [s for s, _ in steps].count("succeeded") == 1
        if ("lost", 1) in steps:
            lost += 1
            assert ("queued", 2) in steps and run["attempt"] >= 2
    assert lost >= 1
    assert not succeeded_twice(server)


def test_rabbitmq_broker(tmp_path: Path) -> None:
    env = celery_env(broker=RABBITMQ_URL)
    srv = Server(tmp_path / "data", **env).start()
    worker = Worker(env, tmp_path, "rabbit", concurrency=2)
    try:
        worker.wait_ready()
        with srv.client() as api:
            job = create_job(api, {"type": "shell", "command": "echo via-amqp"}, executor="celery")
            run = wait_state(api, trigger(api, job["id"])["id"], timeout=30)
            assert run["state"] == "succeeded", run
            assert "via-amqp" in api.get(f"/v1/runs/{run['id']}/log").text
    finally:
        worker.stop()
        srv.stop()

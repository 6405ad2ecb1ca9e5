"""The Slurm executor on a real one-node cluster (scripts/slurm.sh): sbatch, squeue, sacct -c,
scancel — no stand-ins."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import FINAL, create_job, get_run, trigger, uid, wait_state
from tests.server import Server, wait_for
from tests.slurm_cluster import slurm, slurm_env

SCRIPT = textwrap.dedent(
    """\
    #!/bin/sh
    # args: <message> [exit code] [sleep seconds]
    echo "job says: $1 (run $GNOMON_RUN_ID)"
    sleep "${3:-0}"
    echo "done"
    exit "${2:-0}"
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("gnomon-slurm"), **slurm_env()).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slurm-scripts") / "job.sh"
    path.write_text(SCRIPT)
    path.chmod(0o755)
    return path


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def slurm_job(api: httpx.Client, script: Path, *args: str, **fields: object) -> dict:
    action = {"type": "shell", "command": [str(script), *args]}
    return create_job(api, action, executor="slurm", **fields)


def log_of(api: httpx.Client, run_id: str) -> str:
    return api.get(f"/v1/runs/{run_id}/log").text


def queued_in_slurm(job_id: str) -> bool:
    out = slurm("squeue", "-h", "-o", "%i %T").stdout.split("\n")
    return any(line.split()[:1] == [job_id] and "COMPLET" not in line for line in out)


def test_success_carries_output_and_job_id(api: httpx.Client, script: Path) -> None:
    job = slurm_job(api, script, "hello", executor_options={"cpus": 1, "job_name": "greet"})
    assert job["executor_options"] == {"cpus": 1, "job_name": "greet"}
    run = wait_state(api, trigger(api, job["id"])["id"], timeout=30)
    assert run["state"] == "succeeded", run
    assert run["exit_code"] == 0
    assert run["external_id"] and run["external_id"].isdigit()
    log = log_of(api, run["id"])
    assert f"job says: hello (run {run['id']})" in log and "done" in log
    name = slurm("sacct", "-c", "-n", "-P", "-o", "JobID,JobName", "-j", run["external_id"])
    assert f"{run['external_id']}|greet" in name.stdout


def test_failure_carries_the_exit_code(api: httpx.Client, script: Path) -> None:
    job = slurm_job(api, script, "failing", "3")
    run = wait_state(api, trigger(api, job["id"])["id"], timeout=30)
    assert run["state"] == "failed", run
    assert run["exit_code"] == 3
    assert "FAILED" in run["message"]
    assert "job says: failing" in log_of(api, run["id"])


def test_cancel_calls_scancel(api: httpx.Client, script: Path) -> None:
    job = slurm_job(api, script, "long", "0", "120")
    run_id = trigger(api, job["id"])["id"]
    run = wait_for(lambda: (r := get_run(api, run_id))["status"] == "RUNNING" and r, timeout=30)
    assert queued_in_slurm(run["external_id"])
    assert api.post(f"/v1/runs/{run_id}/cancel").status_code == 200
    run = wait_state(api, run_id, timeout=30)
    assert run["state"] == "cancelled", run
    assert not queued_in_slurm(run["external_id"])
    assert "job says: long" in log_of(api, run_id)


def test_timeout_calls_scancel(api: httpx.Client, script: Path) -> None:
    job = slurm_job(api, script, "slow", "0", "120", timeout_s=1.5)
    run = wait_state(api, trigger(api, job["id"])["id"], timeout=30)
    assert run["state"] == "timed_out", run
    assert "scancel" in run["message"]
    assert not queued_in_slurm(run["external_id"])


def test_sbatch_refusal_fails_the_run_with_its_message(api: httpx.Client, script: Path) -> None:
    job = slurm_job(api, script, "x", executor_options={"partition": "nowhere"})
    run = wait_state(api, trigger(api, job["id"])["id"], timeout=30)
    assert run["state"] == "failed", run
    assert "partition" in run["message"].lower()
    assert run["external_id"] is None


def test_bad_options_are_refused(api: httpx.Client, script: Path) -> None:
    body = {
        "name": uid("job"),
        "action": {"type": "shell", "command": [str(script)]},
        "executor": "slurm",
        "executor_options": {"extra": ["--output=/etc/passwd"]},
    }
    r = api.post("/v1/jobs", json=body)
    assert r.status_code == 422 and "not allowed" in r.text
    body["executor_options"] = {"cpus": "many"}
    assert api.post("/v1/jobs", json=body).status_code == 422


def test_fifty_at_once(api: httpx.Client, script: Path) -> None:
    action = {"type": "shell", "command": [str(script), "n={n}"], "argv_params": True}
    job = create_job(api, action, executor="slurm")
    body = {"job": job["id"], "runs": [{"params": {"n": i}} for i in range(50)]}
    r = api.post("/v1/runs:batch", json=body)
    assert r.status_code == 201, r.text
    ids = r.json()["ids"]
    runs = [wait_state(api, run_id, FINAL, timeout=90) for run_id in ids]
    assert [r["state"] for r in runs] == ["succeeded"] * 50
    assert len({r["external_id"] for r in runs}) == 50
    for i, run in enumerate(runs):
        assert f"job says: n={i} " in log_of(api, run["id"])


def test_exit_codes_from_slurm_records() -> None:
    from gnomon.engine.executors.slurm import exit_code, job_state, sacct_exit

    assert exit_code(768) == 3 and exit_code(0) == 0 and exit_code(9) == 137
    assert exit_code({"return_code": {"number": 2}, "signal": {"id": {"number": 0}}}) == 2
    assert sacct_exit("3:0") == 3 and sacct_exit("0:15") == 143
    assert job_state(["FAILED"]) == "FAILED" and job_state("CANCELLED by 0") == "CANCELLED"


STEERING = [
    ("env", "SBATCH_ERROR", "/tmp/stolen"),
    ("env", "SLURM_CONF", "/tmp/slurm.conf"),
    ("env", "SBATCH_GET_USER_ENV", "1"),
    ("env", "LD_PRELOAD", "/tmp/x.so"),
    ("secrets", "SBATCH_ACCOUNT", "any"),
]


@pytest.mark.parametrize(("field", "name", "value"), STEERING)
def test_env_that_steers_sbatch_is_refused(
    api: httpx.Client, script: Path, field: str, name: str, value: str
) -> None:
    action = {"type": "shell", "command": [str(script)], field: {name: value}}
    body = {"name": uid("job"), "action": action, "executor": "slurm"}
    r = api.post("/v1/jobs", json=body)
    assert r.status_code == 422 and name in r.json()["error"]["message"], r.text
    if field == "secrets":
        return  # no secret of that name here: the local job would be refused for that
    # The same environment on the local executor is the job's own business...
    local = api.post("/v1/jobs", json={**body, "executor": "local"})
    assert local.status_code == 201, local.text
    # ...until the job moves to Slurm.
    r = api.patch(f"/v1/jobs/{local.json()['id']}", json={"executor": "slurm"})
    assert r.status_code == 422 and name in r.text, r.text


def test_an_app_on_slurm_cannot_steer_sbatch(api: httpx.Client, script: Path) -> None:
    body = {"name": uid("app"), "executor": "slurm", "env": {"SBATCH_PARTITION": "nowhere"}}
    r = api.post("/v1/apps", json=body)
    assert r.status_code == 422 and "SBATCH_PARTITION" in r.text, r.text
    app = api.post("/v1/apps", json={**body, "executor": "local"}).json()["guid"]
    action = {"type": "shell", "command": [str(script)]}
    r = api.post(
        "/v1/jobs", json={"name": uid("job"), "action": action, "app": app, "executor": "slurm"}
    )
    assert r.status_code == 422 and "SBATCH_PARTITION" in r.text, r.text


def test_env_that_steers_sbatch_is_stripped_at_submission(
    api: httpx.Client, script: Path, server: Server
) -> None:
    """A job stored before the rule (written straight into the database) still cannot steer
    sbatch: its SBATCH_PARTITION would send it to a partition that does not exist."""
    job = slurm_job(api, script, "stripped")
    action = {
        "type": "shell",
        "command": [str(script), "stripped"],
        "env": {"SBATCH_PARTITION": "nowhere", "KEPT": "yes"},
    }
    with sqlite3.connect(server.data_dir / "gnomon.db") as db:
        db.execute("UPDATE jobs SET action = ? WHERE id = ?", (json.dumps(action), job["id"]))
    wait_for(lambda: api.get(f"/v1/jobs/{job['id']}").json()["action"].get("env"), timeout=5)
    time.sleep(0.5)  # the submission path's cached definition expires
    run = wait_state(api, trigger(api, job["id"])["id"], timeout=30)
    assert run["state"] == "succeeded", run
    assert "job says: stripped" in log_of(api, run["id"])

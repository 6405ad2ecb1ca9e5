"""Executors this server does not run: a job naming one is refused with a 422 naming the
setting; runs already queued for one that was switched off say so in their status and in
/v1/stats."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.helpers import assert_error, create_job, noop, trigger, uid
from tests.server import Server

SETTING = {"slurm": "GNOMON_SLURM_ENABLED", "celery": "GNOMON_CELERY_BROKER_URL"}


@pytest.mark.parametrize("executor", ["slurm", "celery"])
def test_job_on_an_executor_not_enabled_is_422(api: httpx.Client, executor: str) -> None:
    r = api.post("/v1/jobs", json={"name": uid(), "action": noop(), "executor": executor})
    err = assert_error(r, 422, "invalid", field="executor")
    assert SETTING[executor] in err["message"]

    job = create_job(api)
    r = api.patch(f"/v1/jobs/{job['id']}", json={"executor": executor})
    err = assert_error(r, 422, "invalid", field="executor")
    assert SETTING[executor] in err["message"]
    assert api.get(f"/v1/jobs/{job['id']}").json()["executor"] == "local"


def test_runs_queued_for_a_switched_off_executor_say_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    nothing = tmp_path / "no-slurm-here"
    nothing.mkdir()
    with_slurm = {"GNOMON_SLURM_ENABLED": "true", "GNOMON_SLURM_BIN_DIR": str(nothing)}
    srv = Server(data, **with_slurm).start()
    try:
        with srv.client() as api:
            job = create_job(api, executor="slurm")
    finally:
        srv.stop()

    srv = Server(data).start()  # the same ledger, Slurm switched off
    try:
        with srv.client() as api:
            run = trigger(api, job["id"])
            shown = api.get(f"/v1/runs/{run['id']}").json()
            assert shown["state"] == "queued"
            assert "GNOMON_SLURM_ENABLED" in shown["status"]
            listed = api.get("/v1/runs", params={"job_id": job["id"]}).json()["items"]
            assert [r["status"] for r in listed] == [shown["status"]]
            local = trigger(api, create_job(api)["id"])  # its executor runs: nothing said
            assert api.get(f"/v1/runs/{local['id']}").json()["status"] is None
            queues = {q["executor"]: q for q in api.get("/v1/stats").json()["queues"]}
            assert queues["slurm"]["queued"] == 1
            assert "GNOMON_SLURM_ENABLED" in queues["slurm"]["off"]
    finally:
        srv.stop()

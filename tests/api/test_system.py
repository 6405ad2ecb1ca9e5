"""Health, readiness, metrics, docs and the OpenAPI document."""

from __future__ import annotations

import httpx

from tests.api.helpers import create_job, trigger, wait_state
from tests.server import Server


def test_healthz_and_readyz(server: Server) -> None:
    r = httpx.get(server.url + "/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    r = httpx.get(server.url + "/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"


def test_metrics(api: httpx.Client, server: Server) -> None:
    job = create_job(api)
    wait_state(api, trigger(api, job["id"])["id"])
    schedule = api.post(f"/v1/jobs/{job['id']}/schedules", json={"cron": "0 0 1 1 *"})
    assert schedule.status_code == 201
    r = httpx.get(server.url + "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in (
        "gnomon_runs",
        "gnomon_fire_lateness_seconds",
        "gnomon_queue_depth",
        "gnomon_schedule_slots",
    ):
        assert f"# TYPE {name}" in text, name
    assert 'gnomon_runs{executor="local",state="succeeded"}' in text
    assert "gnomon_fire_lateness_seconds_bucket" in text


def test_docs_and_openapi(server: Server) -> None:
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "openapi.json" in docs.text
    r = httpx.get(server.url + "/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    expected = {
        "/v1/jobs": {"get", "post"},
        "/v1/jobs/{job_id}": {"get", "patch", "delete"},
        "/v1/jobs/{job_id}/runs": {"post"},
        "/v1/runs:batch": {"post"},
        "/v1/runs": {"get"},
        "/v1/runs/{run_id}": {"get"},
        "/v1/runs/{run_id}/log": {"get"},
        "/v1/runs/{run_id}/cancel": {"post"},
        "/v1/runs/{run_id}/events": {"get"},
        "/v1/jobs/{job_id}/schedules": {"post"},
        "/v1/schedules/{schedule_id}": {"get", "patch", "delete"},
        "/v1/schedules/{schedule_id}/next": {"get"},
        "/v1/schedules/{schedule_id}/fires": {"get"},
        "/v1/events": {"get"},
        "/v1/spaces": {"get", "post"},
        "/v1/spaces/{name}": {"get"},
        "/v1/tokens": {"get", "post"},
        "/v1/tokens/{token_id}": {"delete"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    assert "bearer" in str(doc.get("components", {}).get("securitySchemes", {})).lower()

"""The TSM batch face over real HTTP, on the shipped example templates and a real one-node
Slurm cluster: the original envelope, bad input, sbatch refusals and the secrets rule."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import FINAL, wait_state
from tests.server import Server, wait_for
from tests.slurm_cluster import slurm_env

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = ROOT / "examples" / "tsm" / "templates.toml"
PASSWORD = f"pw-{uuid.uuid4().hex}"
EXTRACT = {
    "parser": "AnotherCustomParser",
    "target": "postgresql://postgres:postgres@postgres/postgres",
    "source": "https://example.com/",
    "thing_uuid": "ce2b4fb6-d9de-11eb-a236-125e5a40a845",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    secrets = {"tsm_mqtt_user": "tsm", "tsm_mqtt_password": PASSWORD}
    srv = Server(
        tmp_path_factory.mktemp("gnomon-tsm"),
        **slurm_env(),
        GNOMON_TEMPLATES_FILE=str(TEMPLATES),
        GNOMON_SECRETS=json.dumps(secrets),
        TSM_DEMO_SLEEP_S="3",
    ).start()
    yield srv
    srv.stop()


@pytest.fixture
def tsm(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/tsm", timeout=60) as c:
        yield c


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def check_envelope(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"code", "err", "out", "job_id", "run_id"}, body
    return body


def test_health(tsm: httpx.Client) -> None:
    r = tsm.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_extractor_submits_a_slurm_job(tsm: httpx.Client, api: httpx.Client) -> None:
    body = check_envelope(tsm.post("/extractor/run", json=EXTRACT), 200)
    assert body["code"] == 0 and body["err"] == ""
    assert body["out"] == f"Submitted batch job {body['job_id']}\n"
    assert isinstance(body["job_id"], int)
    run = api.get(f"/v1/runs/{body['run_id']}").json()
    assert run["external_id"] == str(body["job_id"]) and run["executor"] == "slurm"
    assert run["params"]["thing_uuid"] == EXTRACT["thing_uuid"]
    # The secrets rule: the password reaches the job by its environment, never by argv.
    wait_for(lambda: "tsm-extractor parse" in api.get(f"/v1/runs/{run['id']}/log").text, 30)
    ps = subprocess.run(["ps", "-e", "-ww", "-o", "args"], capture_output=True, text=True).stdout
    assert f"-d {EXTRACT['thing_uuid']}" in ps, api.get(f"/v1/runs/{run['id']}/log").text
    assert PASSWORD not in ps
    run = wait_state(api, run["id"], FINAL, timeout=30)
    assert run["state"] == "succeeded", run
    log = api.get(f"/v1/runs/{run['id']}/log").text
    assert (
        "tsm-extractor parse -p AnotherCustomParser -t postgresql://postgres:postgres@postgres/"
        "postgres -s https://example.com/ -d ce2b4fb6-d9de-11eb-a236-125e5a40a845 "
        "-m mqtt.localhost:1883" in log
    )
    assert f"broker credentials: present ({len(PASSWORD)} characters)" in log
    job = api.get(f"/v1/jobs/{run['job_id']}").json()
    events = api.get(f"/v1/runs/{run['id']}/events").text
    for stored in (json.dumps(run), json.dumps(job), log, events):
        assert PASSWORD not in stored
    assert job["action"]["secrets"] == {
        "MQTT_USER": "tsm_mqtt_user",
        "MQTT_PASSWORD": "tsm_mqtt_password",
    }


def test_qaqc_submits_a_slurm_job(tsm: httpx.Client, api: httpx.Client) -> None:
    body = {"target": EXTRACT["target"], "thing_uuid": EXTRACT["thing_uuid"]}
    reply = check_envelope(tsm.post("/qaqc/run", json=body), 200)
    run = wait_state(api, reply["run_id"], FINAL, timeout=30)
    assert run["state"] == "succeeded", run
    assert "tsm-extractor run-qaqc -t" in api.get(f"/v1/runs/{run['id']}/log").text


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({k: v for k, v in EXTRACT.items() if k != "thing_uuid"}, "missing parameter 'thing_uuid'"),
        ({**EXTRACT, "thing_uuid": "not-a-uuid"}, "parameter 'thing_uuid'"),
        ({**EXTRACT, "source": "example.com"}, "parameter 'source'"),
        ({**EXTRACT, "parser": 7}, "parameter 'parser'"),
        ({**EXTRACT, "parser": "--help"}, "must not start with '-'"),
        ([EXTRACT], "JSON object"),
    ],
)
def test_bad_parameters_are_400(tsm: httpx.Client, body: object, complaint: str) -> None:
    reply = check_envelope(tsm.post("/extractor/run", json=body), 400)
    assert complaint in reply["err"] and reply["run_id"] is None


def test_malformed_bodies_are_400(tsm: httpx.Client) -> None:
    for content in (b"{not json", b"", b"\xff\xfe"):
        reply = check_envelope(tsm.post("/extractor/run", content=content), 400)
        assert reply["err"]
    form = tsm.post("/extractor/run", data={"parser": "x"})
    assert check_envelope(form, 400)["err"]


def test_unknown_routes_keep_the_envelope(tsm: httpx.Client) -> None:
    check_envelope(tsm.post("/nothing/run", json={}), 404)
    check_envelope(tsm.get("/extractor/run"), 405)


def test_templates_api(api: httpx.Client) -> None:
    items = api.get("/v1/templates").json()["items"]
    assert {t["name"] for t in items} >= {"extractor", "qaqc"}
    extractor = api.get("/v1/templates/extractor").json()
    assert extractor["params"]["thing_uuid"]["type"] == "uuid"
    assert api.get("/v1/templates/nope").status_code == 404
    r = api.post("/v1/templates/qaqc/runs", json={"params": {"target": "x"}})
    assert r.status_code == 422 and "thing_uuid" in r.text
    r = api.post(
        "/v1/templates/qaqc/runs",
        json={"params": {"target": "x", "thing_uuid": EXTRACT["thing_uuid"]}},
    )
    assert r.status_code == 201, r.text
    assert wait_state(api, r.json()["id"], FINAL, timeout=30)["state"] == "succeeded"


def test_sbatch_failure_is_500_with_its_message(
    tmp_path: Path, tsm: httpx.Client, server: Server
) -> None:
    broken = tmp_path / "templates.toml"
    script = str(TEMPLATES.parent / "submit_script.sh")
    text = TEMPLATES.read_text().replace('"./submit_script.sh"', json.dumps(script))
    broken.write_text(text.replace('job_name = "parse"', 'job_name = "parse", partition = "gone"'))
    srv = Server(
        tmp_path / "data",
        **slurm_env(),
        GNOMON_TEMPLATES_FILE=str(broken),
        GNOMON_SECRETS=json.dumps({"tsm_mqtt_user": "u", "tsm_mqtt_password": "p"}),
    ).start()
    try:
        reply = check_envelope(
            httpx.post(srv.url + "/tsm/extractor/run", json=EXTRACT, timeout=60), 500
        )
        assert reply["code"] != 0
        assert "invalid partition" in reply["err"].lower(), reply
        assert reply["run_id"] and reply["job_id"] is None
    finally:
        srv.stop()


def test_a_token_can_be_required(tmp_path: Path) -> None:
    """GNOMON_TSM_AUTH closes the face: no token → 401, a viewer → 403, a developer runs."""
    srv = Server(
        tmp_path / "data",
        **slurm_env(),
        GNOMON_TEMPLATES_FILE=str(TEMPLATES),
        GNOMON_SECRETS=json.dumps({"tsm_mqtt_user": "u", "tsm_mqtt_password": "p"}),
        GNOMON_TSM_AUTH="true",
    ).start()
    try:
        url = srv.url + "/tsm/extractor/run"
        with srv.client() as admin:
            tokens = {
                role: admin.post(
                    "/v1/tokens", json={"name": role, "roles": {"default": role}}
                ).json()["token"]
                for role in ("viewer", "developer")
            }
        check_envelope(httpx.post(url, json=EXTRACT, timeout=60), 401)
        bad = {"Authorization": "Bearer gn_nope"}
        check_envelope(httpx.post(url, json=EXTRACT, headers=bad, timeout=60), 401)
        viewer = {"Authorization": f"Bearer {tokens['viewer']}"}
        check_envelope(httpx.post(url, json=EXTRACT, headers=viewer, timeout=60), 403)
        dev = {"Authorization": f"Bearer {tokens['developer']}"}
        reply = check_envelope(httpx.post(url, json=EXTRACT, headers=dev, timeout=60), 200)
        assert reply["code"] == 0 and reply["job_id"]
    finally:
        srv.stop()

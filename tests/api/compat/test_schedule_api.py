"""The observatory schedule API face over real HTTP: the original contract, its messages,
CORS, always JSON, and no config leaking from one request into the next."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.server import Server

PATHS = ["/api/v1/schedule/", "/api/v1/schedule"]
WINDOW = {"t0": "2026-01-02 00:00", "t1": "2026-01-03 00:00"}


@pytest.fixture
def face(server: Server) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as c:  # no token: none is needed
        yield c


def post(face: httpx.Client, body: Any, path: str = PATHS[0], **kw: Any) -> httpx.Response:
    if isinstance(body, (dict, list)) or body is None:
        return face.post(path, json=body, **kw)
    return face.post(path, content=body, **kw)


def ok(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "*"
    body = r.json()
    assert set(body) == {"status", "commands", "message"}
    assert body["status"] == "ok" and body["message"] == "Success"
    return body["commands"]


def err(r: httpx.Response, status: int, message: str | None = None) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["access-control-allow-origin"] == "*"
    body = r.json()
    assert set(body) == {"status", "message"} and body["status"] == "error"
    if message is not None:
        assert body["message"] == message
    return body["message"]


@pytest.mark.parametrize("path", PATHS)
def test_readme_example_with_a_policy_string(face: httpx.Client, path: str) -> None:
    body = {
        "t0": "2022-01-01 12:00",
        "t1": "2022-01-01 14:00",
        "policy": '{"policy": "dummy", "config": {}}',
    }
    text = ok(post(face, body, path))
    lines = text.split("\n")
    assert lines[0] == "import time"
    assert re.fullmatch(r"# \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[1])
    sleeps = [float(re.fullmatch(r"time\.sleep\((\d+\.\d\d)\)", x)[1]) for x in lines[2:]]
    assert 1 <= len(sleeps) <= 10 and sum(sleeps) == pytest.approx(7200, abs=0.006)


def test_policy_as_an_object_and_by_default(face: httpx.Client) -> None:
    assert ok(post(face, {**WINDOW, "policy": {"policy": "dummy"}})).startswith("import time")
    assert ok(post(face, WINDOW)).startswith("import time")  # dummy when no policy is given
    seeded = {**WINDOW, "policy": {"policy": "dummy", "config": {"seed": 42}}}
    a, b = ok(post(face, seeded)), ok(post(face, seeded))
    assert a.split("\n")[2:] == b.split("\n")[2:]


@pytest.mark.parametrize(
    "when",
    [
        ("2026-01-02T00:00:00Z", "2026-01-02T12:00:00Z"),
        ("2026-01-01T21:00:00-03:00", "2026-01-02T12:00:00+00:00"),
        ("2026-01-02", "2026-01-02 12:00"),
    ],
)
def test_basic_over_http(face: httpx.Client, when: tuple[str, str]) -> None:
    body = {"t0": when[0], "t1": when[1], "policy": json.dumps({"policy": "basic"})}
    r = post(face, body)
    text = ok(r)
    assert r.headers["x-gnomon-verified"] == "true"
    assert text.startswith("from sorunlib import *\n")
    assert "wait_until('2026-01-02T00:00:00+00:00')" in text
    assert text.endswith("\n")


def test_basic_with_an_inline_master_schedule(face: httpx.Client) -> None:
    from gnomon.plans.toast import sample_text

    lines = sample_text().splitlines(keepends=True)
    config = {"master_schedule": "".join(lines[:8]), "calibration_targets": []}
    text = ok(
        post(face, {**WINDOW, "t0": "2026-01-01", "policy": {"policy": "basic", "config": config}})
    )
    first = lines[3].split()
    assert f"# {first[7]}\nacu.move_to({float(first[8]):.2f}, {float(first[10]):.2f})" in text
    assert f"wait_until('{first[0]}T{first[1]}+00:00')" in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"t1": "2026-01-02"}, "Missing t0 field"),
        ({"t0": "2026-01-02"}, "Missing t1 field"),
        ({"t0": "2026-01-02", "t1": None}, "Missing t1 field"),
        ({"t0": "yesterday", "t1": "2026-01-02"}, "Invalid date format, needs to be ISO format"),
        ({"t0": "2026-01-02", "t1": "2026-13-02"}, "Invalid date format, needs to be ISO format"),
        ({"t0": 1767312000, "t1": "2026-01-02"}, "Invalid date format, needs to be ISO format"),
        ({**WINDOW, "policy": "{not json"}, "Invalid policy, needs to be a json string"),
        ({**WINDOW, "policy": "[1, 2]"}, "Invalid policy, needs to be a json string"),
        ({**WINDOW, "policy": 17}, "Invalid policy, needs to be a json string"),
        (
            {**WINDOW, "policy": '{"policy": "fancy"}'},
            "Invalid policy. Supported policies are: ['dummy', 'basic']",
        ),
    ],
)
def test_error_messages(face: httpx.Client, body: dict[str, Any], message: str) -> None:
    err(post(face, body), 400, message)


def test_unknown_config_keys_are_ignored_and_named(face: httpx.Client) -> None:
    """The original ignored config keys it did not know; gnomon does too, and says which."""
    config = {
        "rules": {"sun-avoidance": {"min_angel_az": 3, "n_buffer": 2}, "moon-avoidance": {}},
        "calibration_targets": ["saturn"],
        "colour": "blue",
    }
    r = post(face, {**WINDOW, "policy": json.dumps({"policy": "basic", "config": config})})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["commands"].startswith("from sorunlib import *")
    assert body["message"] == (
        "Success; ignored config key(s) the policy 'basic' does not know: "
        "'colour', 'rules.moon-avoidance', 'rules.sun-avoidance.min_angel_az'"
    )
    known = {"rules": {"sun-avoidance": {"n_buffer": 2}}, "calibration_targets": ["saturn"]}
    same = ok(post(face, {**WINDOW, "policy": {"policy": "basic", "config": known}}))
    assert body["commands"].split("\n")[1:] == same.split("\n")[1:]  # the known keys apply
    r = post(face, {**WINDOW, "policy": {"policy": "dummy", "config": {"sed": 1, "seed": 4}}})
    assert r.json()["message"] == (
        "Success; ignored config key(s) the policy 'dummy' does not know: 'sed'"
    )
    # A bad value of a known key is still refused.
    bad = {"sed": 1, "rules": {"alt-range": {"alt_range": [80, 10]}}}
    msg = err(post(face, {**WINDOW, "policy": {"policy": "basic", "config": bad}}), 400)
    assert "alt_range" in msg


def test_other_bad_input_is_a_json_400(face: httpx.Client) -> None:
    err(post(face, b"not json", headers={"content-type": "application/json"}), 400)
    err(post(face, [1, 2]), 400)
    err(post(face, b""), 400)
    err(
        post(
            face,
            {**WINDOW, "policy": {"policy": "basic", "config": {"master_schedule": "/etc/passwd"}}},
        ),
        400,
    )
    msg = err(
        post(face, {"t0": "2026-01-03", "t1": "2026-01-02", "policy": {"policy": "basic"}}), 400
    )
    assert "t1 must be after t0" in msg


def test_cors_preflight_and_other_methods(face: httpx.Client) -> None:
    for path in PATHS:
        r = face.options(
            path,
            headers={
                "Origin": "https://web.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert r.status_code in (200, 204)
        assert r.headers["access-control-allow-origin"] == "*"
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "content-type" in r.headers["access-control-allow-headers"].lower()
        err(face.get(path), 405)


def test_one_bad_request_does_not_break_the_next(face: httpx.Client) -> None:
    """The original merged each request's config into module-level defaults."""
    hungry = {"rules": {"calibration-min-duration": {"min_duration": 86400}}}
    r = post(face, {**WINDOW, "policy": {"policy": "basic", "config": hungry}})
    assert "uranus" not in ok(r) and "saturn" not in r.text  # it filters calibration only
    bad = {"rules": {"alt-range": {"alt_range": [80, 10]}}}
    err(post(face, {**WINDOW, "policy": {"policy": "basic", "config": bad}}), 400)
    r = post(face, {**WINDOW, "policy": {"policy": "basic", "config": {"wrong": 1}}})
    assert r.status_code == 200 and "'wrong'" in r.json()["message"]  # ignored, named
    text = ok(post(face, {**WINDOW, "policy": {"policy": "basic"}}))
    assert text.count("seq.scan(") > 5
    assert "uranus" in text or "saturn" in text  # default targets are back


def test_a_window_past_the_limit_is_refused_naming_it(face: httpx.Client) -> None:
    month = {"t0": "2026-01-01", "t1": "2026-02-01", "policy": {"policy": "basic"}}
    t0 = time.monotonic()
    message = err(post(face, month), 400)
    assert "7 days" in message and "GNOMON_PLAN_WINDOW_MAX_S" in message
    assert time.monotonic() - t0 < 2
    week = {"t0": "2026-01-01", "t1": "2026-01-08", "policy": {"policy": "dummy"}}
    assert ok(post(face, week))


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("compute"), GNOMON_COMPUTE_WORKERS="1", GNOMON_COMPUTE_QUEUE="1"
    ).start()
    yield srv
    srv.stop()


def test_plan_generation_is_bounded_and_the_server_stays_responsive(narrow: Server) -> None:
    body = {"t0": "2026-01-01", "t1": "2026-01-08", "policy": {"policy": "basic"}}

    def plan() -> httpx.Response:
        with httpx.Client(base_url=narrow.url, timeout=60) as c:
            return post(c, body)

    with ThreadPoolExecutor(16) as pool:
        answers = [pool.submit(plan) for _ in range(16)]
        worst = 0.0
        while not all(a.done() for a in answers):
            t0 = time.monotonic()
            assert httpx.get(narrow.url + "/healthz", timeout=10).status_code == 200
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.1)
        got = [a.result() for a in answers]
    busy = [r for r in got if r.status_code == 503]
    assert 1 <= len(got) - len(busy) <= 15 and busy, [r.status_code for r in got]
    for r in busy:
        assert int(r.headers["retry-after"]) >= 1
        assert "GNOMON_COMPUTE_WORKERS" in err(r, 503)
    assert worst < 2.0, f"/healthz took {worst:.2f} s while plans were made"

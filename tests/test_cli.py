"""The `gnomon` CLI, run as a subprocess against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from tests.server import SHARED_CWD, Server, free_port, wait_for

ULID_LEN = 26


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One SQLite server whose data dir is `<root>/gnomon-data`, as a local install has it."""
    root = tmp_path_factory.mktemp("cli")
    server = Server(root / "gnomon-data", **SHARED_CWD).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory without a gnomon-data/ in it."""
    return tmp_path_factory.mktemp("elsewhere")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GNOMON_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def cli_env(srv: Server, token: str | None = None) -> dict[str, str]:
    return clean_env(GNOMON_URL=srv.url, GNOMON_TOKEN=token or srv.token)


def gnomon(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gnomon", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Cli(Protocol):
    def __call__(
        self, *args: str, token: str | None = None
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def cli(srv: Server, elsewhere: Path) -> Cli:
    """Run `gnomon ARGS` with GNOMON_URL/GNOMON_TOKEN pointing at the module's server."""

    def run(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        return gnomon(*args, env=cli_env(srv, token), cwd=elsewhere)

    return run


def make_job(srv: Server, name: str, command: str, **spec: object) -> dict:
    """Set up a shell job through the API (the CLI's own `job create` is tested apart)."""
    action = {"type": "shell", "command": command}
    with srv.client() as api:
        resp = api.post("/v1/jobs", json={"name": name, "action": action, **spec})
    assert resp.status_code == 201, resp.text
    return resp.json()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def loads(result: subprocess.CompletedProcess[str]) -> object:
    return json.loads(ok(result))


def test_discovers_server_and_token_from_the_data_dir(srv: Server) -> None:
    env = clean_env(GNOMON_PORT=str(srv.port))
    result = gnomon("job", "list", "--json", env=env, cwd=srv.data_dir.parent)
    assert isinstance(json.loads(ok(result)), list)


def test_token_create(cli: Cli) -> None:
    result = cli("token", "create", "ci", "--role", "default=developer")
    secret = ok(result).strip()
    assert secret and "\n" not in secret
    assert "created token" in result.stderr and "default=developer" in result.stderr
    ok(cli("job", "create", "made-by-ci", "--noop", token=secret))

    admin = loads(cli("token", "create", "root", "--admin", "--json"))
    assert isinstance(admin, dict) and admin["admin"] is True and admin["token"]


def test_job_create_list_show(cli: Cli) -> None:
    out = ok(
        cli(
            "job", "create", "cli-echo", "--shell", "echo hi", "--cwd", "/tmp",
            "--env", "A=1", "--param", "who=world", "--timeout", "60",
            "--retries", "2", "--backoff", "5",
        )
    )  # fmt: skip
    assert out.startswith("created job cli-echo (")
    ok(
        cli(
            "job", "create", "cli-http", "--http", "http://127.0.0.1:9/hook",
            "--method", "put", "--header", "X-Key=abc=", "--header", "X-Other: 2",
        )
    )  # fmt: skip

    listed = ok(cli("job", "list"))
    assert "cli-echo" in listed and "cli-http" in listed and "$ echo hi" in listed
    found = loads(cli("job", "list", "--search", "cli-h", "--json"))
    assert isinstance(found, list) and [j["name"] for j in found] == ["cli-http"]
    assert found[0]["action"]["method"] == "PUT"
    assert found[0]["action"]["headers"] == {"X-Key": "abc=", "X-Other": "2"}

    shown = ok(cli("job", "show", "cli-echo"))
    for text in ("cli-echo", "$ echo hi", "/tmp", "A=1", "60s", "3 attempts", "who"):
        assert text in shown
    raw = loads(cli("job", "show", found[0]["id"], "--json"))
    assert isinstance(raw, dict)
    assert raw["job"]["name"] == "cli-http" and raw["schedules"] == [] and raw["runs"] == []

    usage = cli("job", "create", "neither")
    assert usage.returncode == 2 and "--shell" in usage.stderr


def test_run_wait_exit_codes(srv: Server, cli: Cli) -> None:
    make_job(srv, "w-ok", "exit 0")
    make_job(srv, "w-fail", "echo no; exit 7")
    make_job(srv, "w-slow", "sleep 10", timeout_s=0.3)

    good = cli("run", "w-ok", "--wait")
    assert good.returncode == 0, good.stderr
    assert len(good.stdout.strip()) == ULID_LEN and "succeeded" in good.stderr
    bad = cli("run", "w-fail", "--wait")
    assert bad.returncode == 7 and "failed (exit 7)" in bad.stderr
    slow = cli("run", "w-slow", "--wait")
    assert slow.returncode == 124 and "timed_out" in slow.stderr

    queued = ok(cli("run", "w-ok", "--at", "+1h")).strip()
    assert len(queued) == ULID_LEN


def test_run_wait_cancelled_exits_130(srv: Server, elsewhere: Path, cli: Cli) -> None:
    make_job(srv, "w-long", "sleep 30")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gnomon", "run", "w-long", "--wait"],
        env=cli_env(srv),
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        with srv.client() as api:
            wait_for(lambda: api.get(f"/v1/runs/{run_id}").json()["state"] == "running")
            assert api.post(f"/v1/runs/{run_id}/cancel").status_code == 200
        assert proc.wait(15) == 130
    finally:
        proc.kill()
        proc.wait()


def test_run_follow_streams_output_live(srv: Server, elsewhere: Path, cli: Cli) -> None:
    make_job(srv, "f-slow", "echo first; sleep 1.5; echo second")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gnomon", "run", "f-slow", "--follow"],
        env=cli_env(srv),
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        first_at = time.monotonic()
        assert first == b"first\n"
        assert proc.poll() is None, "the first line came only after the run ended"
        rest, err = proc.communicate(timeout=20)
        ended_at = time.monotonic()
    finally:
        proc.kill()
        proc.wait()
    assert rest == b"second\n"
    assert proc.returncode == 0, err
    assert ended_at - first_at > 1.0, (first_at - started, ended_at - started)
    assert b"succeeded" in err

    make_job(srv, "f-fail", 'echo "hello $PARAM_WHO"; exit 5')
    failed = cli("run", "f-fail", "--follow", "--param", "who=there")
    assert failed.returncode == 5 and failed.stdout == "hello there\n"
    assert len(failed.stderr.split()[1]) == ULID_LEN


def test_runs_table(srv: Server, cli: Cli) -> None:
    job = make_job(srv, "t-mixed", 'exit "$PARAM_CODE"')
    with srv.client() as api:
        ids = [
            api.post(f"/v1/jobs/{job['id']}/runs", json={"params": {"code": c}}).json()["id"]
            for c in ("0", "3")
        ]
        for run_id in ids:
            wait_for(lambda r=run_id: api.get(f"/v1/runs/{r}").json()["finished_at"])

    table = ok(cli("runs", "--job", "t-mixed"))
    assert table.count("t-mixed") == 2 and "succeeded" in table and "failed" in table
    for header in ("id", "job", "state", "attempt", "exit", "created", "duration"):
        assert header in table
    failed = loads(cli("runs", "--job", "t-mixed", "--state", "failed", "--json"))
    assert isinstance(failed, list) and [(r["state"], r["exit_code"]) for r in failed] == [
        ("failed", 3)
    ]
    newest = loads(cli("runs", "--limit", "1", "--json"))
    assert isinstance(newest, list) and len(newest) == 1


def test_schedule_create_list_next(srv: Server, cli: Cli) -> None:
    make_job(srv, "s-job", "true")
    made = loads(
        cli(
            "schedule", "create", "s-job", "--cron", "0 9 * * *", "--timezone", "Europe/Paris",
            "--overlap", "skip", "--catchup-window", "120", "--jitter", "0", "--json",
        )
    )  # fmt: skip
    assert isinstance(made, dict) and made["cron"] == "0 9 * * *" and made["overlap"] == "skip"
    line = ok(cli("schedule", "create", "s-job", "--every", "30s", "--disabled"))
    assert line.startswith("created schedule ") and "every 30s" in line and "disabled" in line
    # `add`, the old name of `create`, still works (not listed in the help)
    once = ok(cli("schedule", "add", "s-job", "--at", "2031-01-01 12:00", "--tz", "Asia/Tokyo"))
    assert "2031-01-01 03:00:00Z" in once

    listed = ok(cli("schedule", "list", "--job", "s-job"))
    assert "cron 0 9 * * *" in listed and "Europe/Paris" in listed and "every 30s" in listed
    assert listed.count("s-job") == 3

    upcoming = ok(cli("schedule", "next", made["id"], "-n", "3"))
    assert upcoming.count("09:00:00 CE") == 3  # CET or CEST
    assert upcoming.count(":00:00Z") == 3 and "UTC" in upcoming

    window = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-01-04T00:00:00Z")
    listed_slots = ok(cli("schedule", "backfill", made["id"], *window, "--dry-run"))
    assert listed_slots.splitlines() == [
        "2026-01-01 08:00:00Z",
        "2026-01-02 08:00:00Z",
        "2026-01-03 08:00:00Z",
        "dry run: 3 slot(s) in the range, 0 already had a run",
    ]
    back = ok(cli("schedule", "backfill", made["id"], *window))
    assert back.strip() == "3 slot(s) in the range: 3 run(s) queued, 0 already had one"
    again = loads(cli("schedule", "backfill", made["id"], *window, "--json"))
    assert isinstance(again, dict) and (again["created"], again["existing"]) == (0, 3)


def test_unreachable_server(elsewhere: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = gnomon("runs", env=clean_env(GNOMON_URL=url, GNOMON_TOKEN="x"), cwd=elsewhere)
    assert result.returncode == 2
    assert result.stderr == f"cannot reach gnomon at {url}: is `gnomon serve` running?\n"


def test_api_errors_print_the_server_message(srv: Server, cli: Cli) -> None:
    missing = cli("job", "show", "no-such-job")
    assert (missing.returncode, missing.stderr) == (1, "error: job 'no-such-job' not found\n")

    make_job(srv, "e-job", "true")
    dup = cli("job", "create", "e-job", "--noop")
    assert dup.returncode == 1 and "already exists" in dup.stderr

    bad_cron = cli("schedule", "create", "e-job", "--cron", "61 * * * *")
    assert bad_cron.returncode == 1 and "61" in bad_cron.stderr
    assert "Traceback" not in bad_cron.stderr

    bad_token = cli("runs", token="gn_not-a-token")
    with httpx.Client(base_url=srv.url) as api:
        expected = api.get("/v1/runs", headers={"Authorization": "Bearer gn_not-a-token"})
    assert bad_token.returncode == 1
    assert bad_token.stderr == f"error: {expected.json()['error']['message']}\n"


def test_app_create_list(cli: Cli, tmp_path: Path) -> None:
    guid = "6f1d3c2a-8b7e-4f60-9a51-0c2d4e6f8a10"
    out = ok(
        cli(
            "app", "create", "cli-app", "--id", guid, "--cwd", str(tmp_path),
            "--env", "A=1", "--executor", "local",
        )
    )  # fmt: skip
    assert f"created app cli-app ({guid}) in space default" in out
    apps = loads(cli("app", "list", "--json"))
    assert isinstance(apps, list)
    mine = [a for a in apps if a["id"] == guid]
    assert mine and mine[0]["cwd"] == str(tmp_path) and mine[0]["env"] == {"A": "1"}
    assert mine[0]["guid"] == guid  # the old name, still sent
    table = ok(cli("app", "list", "--space", "default"))
    assert "cli-app" in table and guid[:8] in table and "guid" not in table
    failed = cli("app", "create", "cli-app")
    assert failed.returncode == 1 and "already exists" in failed.stderr
    # `--guid`, the old name of `--id`, still works
    other = "0b7e4f60-9a51-4c2d-8e6f-6f1d3c2a8a10"
    out = ok(cli("app", "create", "cli-app-2", "--guid", other))
    assert f"created app cli-app-2 ({other})" in out


def test_schedule_create_is_the_listed_name(cli: Cli) -> None:
    listed = ok(cli("schedule", "--help"))
    assert "create" in listed and " add " not in listed
    for group in ("job", "app", "token", "plan"):
        assert "create" in ok(cli(group, "--help"))


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root")
def test_serve_on_a_read_only_data_dir_says_so_in_one_line(tmp_path: Path) -> None:
    where = tmp_path / "ro"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(where)], check=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gnomon", "serve", "--port", str(free_port())],
            env=clean_env(GNOMON_DATA_DIR=str(where / "data")),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"gnomon: cannot use the data directory {where / 'data'}: Read-only file system"
    ]

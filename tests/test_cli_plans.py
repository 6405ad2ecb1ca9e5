"""`gnomon plan …` as a subprocess against a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gnomon.plans.toast import sample_text
from tests.server import Server
from tests.test_cli import cli_env, gnomon


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("cli-plans") / "gnomon-data").start()
    yield server
    server.stop()


def run(srv: Server, cwd: Path, *args: str) -> str:
    done = gnomon(*args, env=cli_env(srv), cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_create_show_revise_diff_dispatch(srv: Server, tmp_path: Path) -> None:
    # a master schedule on this machine is sent inline: the server need not see the file
    (tmp_path / "mine.txt").write_text("".join(sample_text().splitlines(keepends=True)[:40]))
    (tmp_path / "cfg.json").write_text(json.dumps({"master_schedule": "mine.txt"}))
    out = run(
        srv,
        tmp_path,
        "plan",
        "create",
        "--policy",
        "basic",
        "--t0",
        "2026-01-01 00:00",
        "--t1",
        "2026-01-02 00:00",
        "--config",
        "cfg.json",
        "--json",
    )
    plan = json.loads(out)
    assert plan["verified"] and plan["blocks"]

    shown = run(srv, tmp_path, "plan", "show", plan["id"])
    assert f"plan {plan['id']} (basic" in shown and "verified" in shown
    assert plan["blocks"][0]["name"] in shown
    script = run(srv, tmp_path, "plan", "show", plan["id"], "--commands")
    assert script == plan["commands"]

    (tmp_path / "patch.json").write_text(json.dumps({"calibration_targets": []}))
    rev = json.loads(
        run(srv, tmp_path, "plan", "revise", plan["id"], "--config", "patch.json", "--json")
    )
    assert rev["parent_id"] == plan["id"] and rev["revision"] == 2
    diff = run(srv, tmp_path, "plan", "diff", plan["id"], rev["id"])
    assert f"{plan['id']} → {rev['id']}" in diff and "removed" in diff
    assert json.loads(run(srv, tmp_path, "plan", "diff", rev["id"], "--json"))["from"] == plan["id"]

    listed = run(srv, tmp_path, "plan", "list")
    assert plan["id"] in listed and rev["id"] in listed

    done = run(srv, tmp_path, "plan", "dispatch", rev["id"], "--site", "telescope1")
    assert f"dispatched plan {rev['id']} to site telescope1: {len(rev['blocks'])} runs" in done
    again = run(srv, tmp_path, "plan", "dispatch", rev["id"], "--site", "telescope1")
    assert f"plan {rev['id']} was dispatched to site telescope1 already, at " in again
    assert f"({len(rev['blocks'])} runs); nothing new was queued" in again
    shown = json.loads(run(srv, tmp_path, "plan", "show", rev["id"], "--json"))
    assert len(shown["dispatches"]) == 1


def test_errors_are_one_line(srv: Server, tmp_path: Path) -> None:
    done = gnomon(
        "plan",
        "create",
        "--policy",
        "fancy",
        "--t0",
        "2026-01-01",
        "--t1",
        "2026-01-02",
        env=cli_env(srv),
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "Supported policies are" in done.stderr
    done = gnomon("plan", "dispatch", "x", env=cli_env(srv), cwd=tmp_path)
    assert done.returncode == 2 and "exactly one of --site or --job" in done.stderr

"""The local executor's trust boundary, through real `gnomon serve` processes on SQLite.

A developer's shell job must not read the data directory, the server's environment or
memory, another run's directory, nor signal the server: as root (jobs run as an unprivileged
user, in bubblewrap or not) and as a server that is not root (bubblewrap). Named secrets reach
only the spaces they are granted to, the local executor only the spaces the admin lists, a
job's `cwd` only directories the admin allows; each attempt's own directory goes when it ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from gnomon.config import Settings
from gnomon.engine.executors.sandbox import BWRAP_BASE, MIN_PATH, Confinement
from gnomon.permits import WORK_PREFIX
from tests.api.helpers import create_job, trigger, uid, wait_state
from tests.server import Server, wait_for

NOBODY = 65534
MARK = uuid.uuid4().hex
SECRETS = {
    "everywhere": f"all-{MARK}",
    "alpha_only": {"value": f"alpha-{MARK}", "spaces": ["alpha"]},
}
OWN = {"GNOMON_RUN_ID", "GNOMON_JOB_ID", "GNOMON_ATTEMPT"}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the tests start servers as root")
pytestmark = [needs_root]


@pytest.fixture(scope="module", autouse=True)
def bwrap_installed() -> None:
    """`make test` installs bubblewrap (scripts/services.sh): without it these tests fail."""
    assert shutil.which("bwrap", path=MIN_PATH), "bubblewrap is missing: run `make services`"


def server_env(sandbox: str, **extra: str) -> dict[str, str]:
    """What every server of these tests has: secrets and a canary in its environment."""
    return {
        "GNOMON_SECRETS": json.dumps(SECRETS),
        "GNOMON_TEST_CANARY": f"canary-{MARK}",
        "GNOMON_SANDBOX": sandbox,
        "GNOMON_LOCAL_SPACES": "default,alpha,beta",
        "GNOMON_LOCAL_CWD_ROOTS": "/tmp",
        "GNOMON_WORKERS": "4",
        **extra,
    }


class Tenants:
    """A server with spaces alpha, beta and gamma, and a developer token for each space."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.tokens: dict[str, str] = {}
        with server.client() as admin:
            for space in ("alpha", "beta", "gamma"):
                r = admin.post("/v1/spaces", json={"name": space})
                assert r.status_code in (201, 409), r.text
            for space in ("default", "alpha", "beta", "gamma"):
                body = {"name": uid("dev"), "roles": {space: "developer"}}
                r = admin.post("/v1/tokens", json=body)
                assert r.status_code == 201, r.text
                self.tokens[space] = r.json()["token"]

    def dev(self, space: str = "default") -> httpx.Client:
        return self.server.client(self.tokens[space])


def start(data_dir: Path, sandbox: str, wrap: tuple[str, ...] = (), **extra: str) -> Server:
    return Server(data_dir, wrap=wrap, **server_env(sandbox, **extra)).start()


@pytest.fixture(scope="module", params=["bwrap", "none"])
def root_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenants]:
    """A server run as root: jobs run as the run user, in bubblewrap or not."""
    srv = start(tmp_path_factory.mktemp(f"sandbox-{request.param}") / "data", request.param)
    try:
        yield Tenants(srv)
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def bwrap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    srv = start(tmp_path_factory.mktemp("sandbox-main") / "data", "bwrap")
    try:
        yield Tenants(srv)
    finally:
        srv.stop()


def nobody_can_run_gnomon() -> str | None:
    """Why a server cannot run as nobody here (None: it can)."""
    done = subprocess.run(
        [*as_nobody(), sys.executable, "-c", "import gnomon.cli"],
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    return None if done.returncode == 0 else f"nobody cannot run this Python: {done.stderr}"


def as_nobody() -> tuple[str, ...]:
    return ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--")


@pytest.fixture(scope="module")
def nobody_server() -> Iterator[Tenants]:
    """A server that is not root (nobody): the sandbox is what protects it."""
    if (why := nobody_can_run_gnomon()) is not None:
        pytest.skip(why)
    base = Path(tempfile.mkdtemp(prefix="gnomon-nobody-", dir="/tmp"))
    (base / "data").mkdir()
    for path in (base, base / "data"):
        os.chown(path, NOBODY, NOBODY)
    srv = start(base / "data", "bwrap", wrap=as_nobody(), PYTHONDONTWRITEBYTECODE="1")
    try:
        yield Tenants(srv)
    finally:
        srv.stop()
        shutil.rmtree(base, ignore_errors=True)


# --- helpers ------------------------------------------------------------------------------


def run_to_end(
    api: httpx.Client, action: dict[str, Any], timeout: float = 30, **fields: Any
) -> tuple[dict[str, Any], str]:
    """Create a job, run it once, wait for its end: the run and its log."""
    job = create_job(api, action, **fields)
    run = wait_state(api, trigger(api, job["id"])["id"], timeout=timeout)
    return run, api.get(f"/v1/runs/{run['id']}/log").text


def lines_of(log: str) -> dict[str, str]:
    """`key=value` lines of a log."""
    return dict(line.split("=", 1) for line in log.splitlines() if "=" in line)


def processes_with(text: str, where: str = "cmdline") -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/{where}", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            continue
    return found


def start_victim(api: httpx.Client) -> tuple[str, Path, int]:
    """A run that holds a secret and a file in its directory, and sleeps: its id, its
    directory and the host pid of its shell."""
    marker = f"victim-{uuid.uuid4().hex}"
    action = {
        "type": "shell",
        "command": f"echo {marker} > secret.txt; pwd; exec sleep 60",
        "secrets": {"VICTIM_SECRET": "everywhere"},
        "env": {"VICTIM_MARK": marker},
    }
    job = create_job(api, action)
    run_id = trigger(api, job["id"])["id"]
    log = wait_for(lambda: api.get(f"/v1/runs/{run_id}/log").text.strip(), timeout=20)
    workdir = Path(log.splitlines()[0])
    (pid,) = wait_for(lambda: processes_with(f"VICTIM_MARK={marker}", "environ"), timeout=10)
    return run_id, workdir, pid


ATTACK = """\
D={data}; S={server}; V={victim}; VP={victim_pid}
cat "$D/admin.token"; echo "token=$?"
head -c 64 "$D/gnomon.db" | od -c | head -n 1; [ -r "$D/gnomon.db" ]; echo "db=$?"
[ -n "$(ls -A "$D")" ]; echo "data_dir=$?"
cat /proc/$PPID/environ | tr '\\0' '\\n'; echo
cat /proc/$S/environ; echo "server_environ=$?"
head -c 16 /proc/$S/mem; echo "server_mem=$?"
kill -0 $S; echo "kill=$?"
cat "$V/secret.txt"; echo "other_dir=$?"
cat /proc/$VP/environ; echo "other_environ=$?"
cat /proc/$VP/cwd/secret.txt; echo "other_cwd=$?"
echo "pwd=$(pwd)"
echo "home=$HOME"
env | sed 's/^/env:/'
"""


def attack(tenants: Tenants, isolated_runs: bool, cwd: str | None = None) -> None:
    """A `default` developer's job (in its own directory, or in `cwd`, an allowed one that
    holds the others) tries everything H1 lists; all of it fails."""
    server = tenants.server
    assert server.proc is not None
    with tenants.dev() as dev:
        victim, victim_dir, victim_pid = start_victim(dev)
        # The victim's secret is in its environment, never in any process's argv.
        assert victim_pid in processes_with(f"VICTIM_SECRET=all-{MARK}", "environ")
        assert not processes_with(f"all-{MARK}")
        try:
            command = ATTACK.format(
                data=server.data_dir,
                server=server.proc.pid,
                victim=victim_dir,
                victim_pid=victim_pid,
            )
            action = {"type": "shell", "command": command, **({"cwd": cwd} if cwd else {})}
            run, log = run_to_end(dev, action)
        finally:
            assert dev.post(f"/v1/runs/{victim}/cancel").status_code == 200
        assert run["state"] == "succeeded", (run, log)
        assert wait_state(dev, victim)["state"] == "cancelled"
    got = lines_of(log)
    for what in ("token", "db", "data_dir", "server_environ", "server_mem", "kill"):
        assert got[what] != "0", f"{what} was reachable:\n{log}"
    if isolated_runs:
        for what in ("other_dir", "other_environ", "other_cwd"):
            assert got[what] != "0", f"{what} was reachable:\n{log}"
        assert "victim-" not in log
    assert server.token not in log
    # Nothing of the server's environment: neither its secrets nor its settings.
    for text in (f"canary-{MARK}", f"alpha-{MARK}", "GNOMON_SECRETS", "GNOMON_TEST_CANARY"):
        assert text not in log, log
    if isolated_runs:  # not even the secret the other run was given
        assert MARK not in log, log
    env = {line[4:].split("=", 1)[0] for line in log.splitlines() if line.startswith("env:")}
    assert {k for k in env if k.startswith("GNOMON_")} == OWN, env
    assert got["env:PATH"] == MIN_PATH and got["pwd"] == (cwd or got["home"])
    # Each attempt's directory is its own, and goes when the attempt ends.
    workdir = Path(got["home"])
    assert workdir != victim_dir and workdir.parent == victim_dir.parent
    assert not workdir.exists()
    wait_for(lambda: not victim_dir.exists(), timeout=10)


# --- H1 -----------------------------------------------------------------------------------


def test_a_job_of_a_root_server_cannot_reach_the_server(root_server: Tenants) -> None:
    """As root: the run user keeps the job off the server's files and processes; bubblewrap
    keeps runs (all of the one run user) off each other too."""
    bwrap = root_server.server.env["GNOMON_SANDBOX"] == "bwrap"
    attack(root_server, isolated_runs=bwrap)
    attack(root_server, isolated_runs=bwrap, cwd="/tmp")  # holds the data dir, all runs' dirs
    with root_server.dev() as dev:
        _, log = run_to_end(dev, {"type": "shell", "command": "id -un; ps -e | wc -l"})
    name, processes = log.split()
    assert name == "gnomon-run"
    if bwrap:  # its own pid namespace: ps, the shell, bubblewrap's init (and wc)
        assert int(processes) <= 6, log


def test_a_job_of_a_server_not_run_as_root_cannot_reach_it(nobody_server: Tenants) -> None:
    """Same user as the server: bubblewrap hides the data dir and the other runs, even below
    an allowed `cwd` that holds them."""
    attack(nobody_server, isolated_runs=True)
    attack(nobody_server, isolated_runs=True, cwd="/tmp")


def test_what_a_run_leaves_running_ends_with_it(bwrap_server: Tenants) -> None:
    marker = f"left-{uuid.uuid4().hex}"
    command = "(setsid sleep 60 >/dev/null 2>&1 &); echo started"
    with bwrap_server.dev() as dev:
        run, log = run_to_end(dev, {"type": "shell", "command": command, "env": {"M": marker}})
    assert run["state"] == "succeeded" and log == "started\n", (run, log)
    wait_for(lambda: not processes_with(f"M={marker}", "environ"), timeout=10)


# --- secrets ------------------------------------------------------------------------------


def test_secrets_reach_only_the_spaces_they_are_granted_to(bwrap_server: Tenants) -> None:
    action = {
        "type": "shell",
        "command": 'echo "a=$A e=$E"',
        "secrets": {"A": "alpha_only", "E": "everywhere"},
    }
    with bwrap_server.dev("alpha") as alpha:
        run, log = run_to_end(alpha, action, space="alpha")
    assert run["state"] == "succeeded", run
    assert log == f"a=alpha-{MARK} e=all-{MARK}\n"
    for space in ("beta", "default"):
        with bwrap_server.dev(space) as dev:
            r = dev.post("/v1/jobs", json={"name": uid(), "action": action, "space": space})
            assert r.status_code == 403, r.text
            assert "alpha_only" in r.json()["error"]["message"], r.text
            assert "everywhere" not in r.json()["error"]["message"]
            # ...nor by changing a job that may have it
            job = create_job(dev, {"type": "shell", "command": "true"}, space=space)
            r = dev.patch(f"/v1/jobs/{job['id']}", json={"action": action})
            assert r.status_code == 403 and "alpha_only" in r.text, r.text
    with bwrap_server.dev() as dev:  # one the server does not hold fails when it starts
        run, _ = run_to_end(dev, {**action, "secrets": {"X": "no_such_secret"}})
        assert run["state"] == "failed" and "no_such_secret" in run["message"], run


def test_the_secrets_file_keeps_secrets_out_of_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text('plain = "p"\n[granted]\nvalue = "g"\nspaces = ["alpha"]\n')
    path.chmod(0o600)
    settings = Settings(secrets_file=path, secrets={"plain": "old", "kept": "k"})
    assert settings.secrets_for("alpha") == {"plain": "p", "kept": "k", "granted": "g"}
    assert settings.secrets_for("beta") == {"plain": "p", "kept": "k"}
    path.chmod(0o640)
    with pytest.raises(ValidationError, match="chmod 600"):
        Settings(secrets_file=path)
    (tmp_path / "s.json").write_text(json.dumps(SECRETS))
    (tmp_path / "s.json").chmod(0o600)
    assert Settings(secrets_file=tmp_path / "s.json").secrets_for("alpha")["alpha_only"]


# --- spaces, working directories ------------------------------------------------------------


def test_only_the_listed_spaces_use_the_local_executor(bwrap_server: Tenants) -> None:
    with bwrap_server.dev("gamma") as gamma:
        for action in (
            {"type": "shell", "command": "true"},
            {"type": "http", "url": "https://example.invalid/hook"},
        ):
            r = gamma.post("/v1/jobs", json={"name": uid(), "action": action, "space": "gamma"})
            assert r.status_code == 403 and "GNOMON_LOCAL_SPACES" in r.text, r.text
        run, _ = run_to_end(gamma, {"type": "noop"}, space="gamma")  # runs nothing: allowed
        assert run["state"] == "succeeded"


def test_an_allowed_cwd_is_used_and_kept(bwrap_server: Tenants, shared_dir: Path) -> None:
    action = {"type": "shell", "command": "pwd; echo $HOME; echo kept > out.txt"}
    with bwrap_server.dev() as dev:
        run, log = run_to_end(dev, {**action, "cwd": str(shared_dir)})
        assert run["state"] == "succeeded", (run, log)
        where, home = log.split()
        assert where == str(shared_dir) and home != where
        assert (shared_dir / "out.txt").read_text() == "kept\n"
        assert (shared_dir / "out.txt").stat().st_uid != 0  # written as the run user
        assert not Path(home).exists()
        # A directory the run user could not reach by itself is not opened up for it.
        private = shared_dir / "private"
        (private / "inner").mkdir(parents=True)
        private.chmod(0o700)
        run, _ = run_to_end(dev, {**action, "cwd": str(private / "inner")})
        assert run["state"] == "failed" and "out of reach" in run["message"], run
        data = bwrap_server.server.data_dir
        for cwd in ("/etc", str(data), "relative/dir", f"/tmp/{WORK_PREFIX}x/run"):
            r = dev.post("/v1/jobs", json={"name": uid(), "action": {**action, "cwd": cwd}})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["details"][0]["field"] == "action.cwd", r.text


def test_settings_are_enforced_again_when_a_run_starts(tmp_path: Path, shared_dir: Path) -> None:
    """Jobs made while the settings allowed them fail to start once they no longer do."""
    data = tmp_path / "data"
    srv = start(data, "bwrap")
    try:
        tenants = Tenants(srv)
        jobs = {}
        with tenants.dev("alpha") as alpha:
            for name, action in {
                "secret": {"type": "shell", "command": "true", "secrets": {"A": "alpha_only"}},
                "cwd": {"type": "shell", "command": "true", "cwd": str(shared_dir)},
            }.items():
                jobs[name] = create_job(alpha, action, space="alpha")["id"]
        with tenants.dev("beta") as beta:
            jobs["space"] = create_job(beta, {"type": "shell", "command": "true"}, space="beta")[
                "id"
            ]
    finally:
        srv.stop()
    narrower = {
        "GNOMON_SECRETS": json.dumps({**SECRETS, "alpha_only": {"value": "x", "spaces": []}}),
        "GNOMON_LOCAL_SPACES": "default,alpha",
        "GNOMON_LOCAL_CWD_ROOTS": "/nowhere",
    }
    srv = Server(data, **{**server_env("bwrap"), **narrower}).start()
    try:
        with srv.client() as admin:
            for name, needle in (
                ("secret", "alpha_only"),
                ("cwd", "GNOMON_LOCAL_CWD_ROOTS"),
                ("space", "GNOMON_LOCAL_SPACES"),
            ):
                run = wait_state(admin, trigger(admin, jobs[name])["id"])
                assert run["state"] == "failed", run
                assert needle in run["message"], run
    finally:
        srv.stop()


# --- the data directory's modes, the sandbox's mounts ---------------------------------------


def test_the_data_directory_is_the_servers_alone(bwrap_server: Tenants) -> None:
    data = bwrap_server.server.data_dir
    assert data.stat().st_mode & 0o777 == 0o700
    for name in ("gnomon.db", "gnomon.db-wal", "gnomon.db-shm", "admin.token"):
        assert (data / name).stat().st_mode & 0o777 == 0o600, name


def test_the_sandbox_hides_what_lies_below_an_allowed_cwd() -> None:
    """A data dir outside /tmp, below a cwd the admin allows: hidden all the same."""
    base = Path(tempfile.mkdtemp(prefix="gnomon-hide-", dir="/run"))
    try:
        data, work = base / "data", base / "work"
        data.mkdir()
        work.mkdir()
        (data / "admin.token").write_text("token-value\n")
        (base / "secrets.json").write_text("{}")
        bwrap = shutil.which("bwrap", path=MIN_PATH)
        assert bwrap is not None
        confined = Confinement(None, bwrap, BWRAP_BASE, shutil.which("setpriv"), ())
        script = "ls data; cat secrets.json; echo hi > mine; pwd"
        opened = os.open(base, os.O_PATH | os.O_DIRECTORY)
        argv, kw, fd = confined.spawn(
            ["/bin/sh", "-c", script],
            {"PATH": MIN_PATH},
            work,
            (opened, base),
            [data, work, base / "secrets.json"],
        )
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)
        finally:
            assert fd is not None
            os.close(fd)
            os.close(opened)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"{base}\n", done.stdout  # data empty, secrets.json empty
        assert (base / "mine").read_text() == "hi\n"
    finally:
        shutil.rmtree(base, ignore_errors=True)

"""Where, as whom and how confined a local shell command runs.

Every attempt gets a directory of its own and an environment built from scratch. A server
running as root starts commands as an unprivileged user (`run_user`); with bubblewrap
(`sandbox`), each command also gets its own pid and IPC namespaces, a private /tmp, a
read-only view of the machine, and no sight of the data directory, the secrets file or other
attempts' directories. Commands are started by the executor's spawner (spawner.py), a small
process that dies with the server and kills what it started first; the user switch and the
new session are done by `subprocess` there, `setpriv --pdeathsig` (or a hook in the spawner's
small child) makes the command die with it, and bubblewrap gets only a clean environment (the
command's comes through a file descriptor, never argv)."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from gnomon.permits import WORK_PREFIX

MIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOBODY = 65534
PR_SET_PDEATHSIG = 1
PROBE_TIMEOUT_S = 10.0
LOCK = ".lock"  # held by the process whose attempts' directory it is in

# The machine read-only, fresh /dev, /proc of the command's own pid namespace, private /tmp.
BWRAP_BASE = (
    "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
    "--tmpfs", "/tmp", "--tmpfs", "/var/tmp",
    "--unshare-user", "--unshare-pid", "--unshare-ipc", "--die-with-parent",
)  # fmt: skip
PRIVATE_TMP = (Path("/tmp"), Path("/var/tmp"))

log = structlog.get_logger(__name__)


class SandboxUnavailable(RuntimeError):
    """The settings ask for bubblewrap, and it does not work here."""


@dataclass(frozen=True)
class RunUser:
    """Who a command runs as, when the server is root."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str


@dataclass(frozen=True)
class Confinement:
    """How this process runs local shell commands; worked out once per process."""

    user: RunUser | None  # switch to this user; None: run as the server's own user
    bwrap: str | None  # bubblewrap, when commands run in its sandbox
    bwrap_flags: tuple[str, ...]
    setpriv: str | None  # for --pdeathsig (else a pre-exec hook does it)
    warnings: tuple[str, ...]

    @property
    def mode(self) -> str:
        return "bwrap" if self.bwrap else "none"

    @property
    def ids(self) -> tuple[int, int, tuple[int, ...]] | None:
        """Who the spawner becomes (uid, gid, groups) once it started: the run user."""
        return (self.user.uid, self.user.gid, self.user.groups) if self.user else None

    def spawn(
        self,
        command: list[str],
        env: dict[str, str],
        workdir: Path,
        cwd: tuple[int, Path] | None,
        hidden: list[Path],
        place: tuple[int, int] | None = None,
    ) -> tuple[list[str], dict[str, Any], int | None]:
        """The argv and Popen keywords that run `command` (in `workdir`, or in the directory
        open as `cwd`: a descriptor and its path); and a descriptor for the parent to close
        once the command started (bubblewrap's arguments), if any.

        With `place`, the spawner starts it: a process that already runs as the run user (see
        `ids`) and is not the server, so there is no user switch here, and no setpriv under
        bubblewrap (its --die-with-parent ends the sandbox with the spawner); the command finds
        the descriptors it is given (bubblewrap's arguments, then `cwd`'s) at these numbers
        rather than where they are open here (the spawner puts them there)."""
        if any("\0" in item for item in (*command, *env, *env.values())):
            raise ValueError("a NUL character in the command or its environment")
        if any(not key or "=" in key for key in env):
            raise ValueError("an environment variable name that is empty or holds '='")
        kw: dict[str, Any] = {"start_new_session": True, "umask": 0o022}
        prefix = [self.setpriv, "--pdeathsig", "KILL", "--"] if self.setpriv else []
        if place is not None and self.bwrap is not None:
            prefix = []
        elif not self.setpriv:
            kw["preexec_fn"] = die_with_parent
        u = self.user if place is None else None  # the spawner is the run user already
        if u is not None and self.setpriv and self.bwrap is not None:
            # What runs as root has a clean environment: setpriv can switch users (and the
            # server's process is not forked, only vforked).
            groups = f"--groups={','.join(map(str, u.groups))}" if u.groups else "--clear-groups"
            prefix[1:1] = [f"--reuid={u.uid}", f"--regid={u.gid}", groups]
        elif u is not None:  # the command's own environment: switch before the exec
            kw.update(user=u.uid, group=u.gid, extra_groups=list(u.groups))
        numbers = iter(place) if place is not None else None
        args_at = next(numbers) if numbers is not None and self.bwrap is not None else None
        cwd_at = cwd[0] if cwd is not None else None
        if cwd is not None and numbers is not None:
            cwd_at = next(numbers)
        opened = f"/proc/self/fd/{cwd_at}" if cwd_at is not None else None
        if self.bwrap is None:
            if place is not None:
                kw["pass_fds"] = (cwd_at,) if cwd_at is not None else ()
            return [*prefix, *command], {**kw, "env": env, "cwd": opened or str(workdir)}, None
        uid = self.user.uid if self.user is not None else os.geteuid()
        hidden = [p for p in hidden if _reachable(p, uid)]  # the others are out of its reach
        args = [*self.bwrap_flags, *_hide(hidden, under=None)]
        if opened is not None and cwd is not None:
            args += ["--bind", opened, str(cwd[1]), *_hide(hidden, under=cwd[1])]
        where = str(cwd[1]) if cwd is not None else str(workdir)
        args += ["--bind", str(workdir), str(workdir), "--chdir", where]
        args.append("--clearenv")
        for key, value in env.items():
            args += ["--setenv", key, value]
        fd = os.memfd_create("gnomon-bwrap-args")
        try:
            data = b"".join(a.encode() + b"\0" for a in args)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.lseek(fd, 0, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        args_at = fd if args_at is None else args_at
        argv = [*prefix, self.bwrap, "--args", str(args_at), "--", *command]
        fds = (args_at,) if cwd_at is None else (args_at, cwd_at)
        return argv, {**kw, "env": {"PATH": MIN_PATH}, "cwd": "/", "pass_fds": fds}, fd


def _hide(paths: list[Path], under: Path | None) -> list[str]:
    """bubblewrap arguments that cover `paths` (all of them, or those strictly below `under`,
    again after `under` was bound): an empty tmpfs on a directory, /dev/null on a file."""
    out: list[str] = []
    for path in paths:
        if under is None:
            if any(t == path or t in path.parents for t in PRIVATE_TMP):
                continue  # below the private /tmp already
        elif under not in path.parents:
            continue
        if path.is_dir():
            out += ["--tmpfs", str(path)]
        elif path.exists():
            out += ["--ro-bind", "/dev/null", str(path)]
    return out


def reachable_by(path: Path, user: RunUser) -> bool:
    """Whether `user` may pass through every directory down to `path`, and into it, by their
    modes (an ACL that grants more is not counted)."""
    gids = {user.gid, *user.groups}
    for each in (*reversed(path.parents), path):
        try:
            st = os.stat(each)
        except OSError:
            return False
        if st.st_uid == user.uid:
            bit = stat.S_IXUSR
        else:
            bit = stat.S_IXGRP if st.st_gid in gids else stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _reachable(path: Path, uid: int) -> bool:
    """Whether `uid` may pass through every directory above `path`, by their modes; a
    directory with group search permission counts as passable (an ACL may grant it)."""
    if uid == 0:
        return True
    for parent in reversed(path.parents):
        try:
            st = os.stat(parent)
        except OSError:
            return False
        owner = st.st_uid == uid and st.st_mode & stat.S_IXUSR
        if not (owner or st.st_mode & (stat.S_IXGRP | stat.S_IXOTH)):
            return False
    return True


def server_user() -> str:
    """The name of the user the server runs as (its uid when it has none)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def server_home() -> Path | None:
    """The home directory of the user the server runs as, when it has one."""
    try:
        home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    except KeyError:
        return None
    return home if home != Path("/") and home.is_dir() else None


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """In the child (when there is no setpriv): SIGKILL when the server dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def confinement(sandbox: str, run_user: str, run_user_given: bool) -> Confinement:
    """How local shell commands run in this process (cached: the first call probes)."""
    found = _confinement(sandbox, run_user, run_user_given)
    if isinstance(found, SandboxUnavailable):
        raise found
    return found


@functools.cache
def _confinement(
    sandbox: str, run_user: str, run_user_given: bool
) -> Confinement | SandboxUnavailable:
    warnings: list[str] = []
    user = _run_user(run_user, run_user_given, warnings)
    setpriv = shutil.which("setpriv", path=MIN_PATH)
    bwrap, flags = None, BWRAP_BASE
    if sandbox != "none":
        found = shutil.which("bwrap", path=MIN_PATH)
        problem = "bubblewrap (bwrap) is not installed" if found is None else None
        if found is not None:
            flags = (*BWRAP_BASE, "--disable-userns")  # no nested namespaces for the command
            problem = _probe(found, flags, user)
            if problem is not None and _probe(found, BWRAP_BASE, user) is None:
                flags, problem = BWRAP_BASE, None  # an older bubblewrap
        if problem is None:
            bwrap = found
        elif sandbox == "bwrap":
            return SandboxUnavailable(f"GNOMON_SANDBOX=bwrap, but {problem}")
        else:
            warnings.append(
                f"local shell commands run without a sandbox: {problem} (GNOMON_SANDBOX=auto)"
            )
    if bwrap is None and user is None:
        warnings.append(
            "local shell commands run as the server's own user without a sandbox: they can "
            "read the data directory and the server's environment"
        )
    elif bwrap is None and user is not None:
        warnings.append(
            f"local shell commands run as {user.name} without a sandbox: they are kept from "
            "the server, not from each other"
        )
    for warning in warnings:
        log.warning(warning)
    return Confinement(user, bwrap, flags, setpriv, tuple(warnings))


def _run_user(name: str, given: bool, warnings: list[str]) -> RunUser | None:
    """The user to switch to (the server is root), or None."""
    if os.geteuid() != 0:
        if given and name and name not in (server_user(), str(os.geteuid())):
            warnings.append(f"GNOMON_RUN_USER={name} is ignored: the server is not root")
        return None
    if not name:
        warnings.append("local shell commands run as root (GNOMON_RUN_USER is empty)")
        return None
    uid_text, _, gid_text = name.partition(":")
    if uid_text.isdigit():
        uid = int(uid_text)
        gid = int(gid_text) if gid_text.isdigit() else uid
        user: RunUser | None = RunUser(uid, gid, (), name) if uid else None
    else:
        entry = _user_entry(name, warnings)
        user = RunUser(
            entry.pw_uid,
            entry.pw_gid,
            tuple(os.getgrouplist(entry.pw_name, entry.pw_gid)),
            entry.pw_name,
        )
    if user is None or user.uid == 0:
        warnings.append(f"local shell commands run as root (GNOMON_RUN_USER={name})")
        return None
    return user


def _user_entry(name: str, warnings: list[str]) -> pwd.struct_passwd:
    """The user `name`, made as a system user when missing; else nobody, with a warning."""
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(name)
    useradd = shutil.which("useradd", path=MIN_PATH)
    shell = next(
        (s for s in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(s)), "/bin/false"
    )
    problem = "useradd is not installed"
    for _ in range(5):  # servers starting together race for /etc/passwd's lock
        if useradd is None:
            break
        done = subprocess.run(
            [useradd, "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", shell, name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            if done.returncode == 0:
                log.info("made the user local shell commands run as", user=name)
            return entry
        problem = done.stderr.strip() or f"useradd exited with {done.returncode}"
        time.sleep(0.2)
    warnings.append(f"cannot make user '{name}' ({problem}): local shell commands run as nobody")
    try:
        return pwd.getpwuid(NOBODY)
    except KeyError:
        return pwd.struct_passwd(("nobody", "x", NOBODY, NOBODY, "", "/nonexistent", shell))


def _probe(bwrap: str, flags: tuple[str, ...], user: RunUser | None) -> str | None:
    """Why bubblewrap cannot run a command with `flags` as `user` (None: it can)."""
    kw: dict[str, Any] = {}
    if user is not None:
        kw.update(user=user.uid, group=user.gid, extra_groups=list(user.groups))
    try:
        done = subprocess.run(
            [bwrap, *flags, "--", "/bin/true"],
            env={"PATH": MIN_PATH},
            cwd="/",
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
            **kw,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap does not start ({exc})"
    if done.returncode != 0:
        return f"bubblewrap fails here ({done.stderr.strip() or done.returncode})"
    return None


class WorkRoot:
    """The directory of this process's attempts' directories: others may pass through it to
    their own (0711), not list it. It holds a lock while this process lives, so the next
    process to start here removes it if this one died without doing so (kill -9)."""

    def __init__(self, base: Path | None) -> None:
        where = base or Path(tempfile.gettempdir())
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        _sweep(where.resolve())
        self.path = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=where)).resolve()
        os.chmod(self.path, 0o711)
        self._lock = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def remove(self) -> None:
        remove_tree(self.path)
        os.close(self._lock)


@functools.cache
def _sweep(where: Path) -> None:
    """Remove the attempts' directories that processes which died left in `where` (once per
    process): those whose lock nobody holds."""
    for root in where.glob(WORK_PREFIX + "*"):
        try:
            if root.stat().st_uid != os.geteuid():
                continue
            fd = os.open(root / LOCK, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue  # not one of ours, or just being made
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # its process is alive
        try:
            remove_tree(root)
        finally:
            os.close(fd)


def make_workdir(root: Path, name: str, user: RunUser | None) -> Path:
    """An attempt's own directory (0700), owned by the user its command runs as."""
    path = root / name
    os.mkdir(path, 0o700)
    if user is not None:
        os.chown(path, user.uid, user.gid)
    return path


def remove_tree(path: Path) -> None:
    """Remove a directory a command used, whatever modes it left on what it made."""
    with contextlib.suppress(OSError):
        shutil.rmtree(path)
        return
    _open_up(str(path))
    for where, dirs, _ in os.walk(path):
        for d in dirs:
            _open_up(os.path.join(where, d))
    shutil.rmtree(path, ignore_errors=True)


def _open_up(directory: str) -> None:
    """chmod 0700 a directory (never what a symlink points to)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.chmod(f"/proc/self/fd/{fd}", 0o700)
        finally:
            os.close(fd)

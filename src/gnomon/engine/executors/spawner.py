"""A small long-lived process that starts the local executor's shell commands.

Starting a command from the server itself costs a `fork()` of a large process whenever the
start needs a user switch or a pre-exec hook, and `subprocess.Popen` blocks the event loop
until the command has exec'd. Instead, each executor keeps one spawner: this file, run as
`python -I -S spawner.py FD` (a small image; nothing of the server's environment, nor its
site packages), which the server asks over a socketpair to start a command — argv,
environment, directory and user as JSON, the output pipe and the descriptors the command is
given as SCM_RIGHTS — and which reports each start and each exit back. The server's event
loop never forks, never waits for an exec, and starts overlap. A root server's spawner becomes
the run user once set up, so it starts commands with vfork and no user switch (under
bubblewrap, no setpriv either: bubblewrap's --die-with-parent ties the sandbox to it).

The spawner also holds the commands' process groups: when the server goes away, however it
died (kill -9 included), its end of the socket closes and the spawner kills every group it
started before it exits; the commands themselves die with the spawner (PR_SET_PDEATHSIG).
Only the standard library is imported here: the spawner runs without site packages.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

if __name__ != "__main__":  # the server's end; the spawner process itself stays small
    import asyncio

PLACE = (3, 4)  # where a command finds the descriptors it is given, in order
INLINE_MAX = 32 * 1024  # a larger request travels in a memfd
IN_FD = b"@"  # the message of a request that travels in a memfd (the first descriptor)
RECV_MAX = 64 * 1024
MAX_FDS = 8
HIGH_FD = 64  # the spawner's own descriptors live at or above this
PR_SET_PDEATHSIG = 1


class SpawnError(OSError):
    """The spawner could not start a command (the reason as `subprocess` gave it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "could not start"


# --- the server's end ------------------------------------------------------------------------


class Spawner:
    """The server's end of one spawner process, started on first use (again if it died)."""

    def __init__(self, ids: tuple[int, int, Sequence[int]] | None = None) -> None:
        self.ids = ids  # the user (uid, gid, groups) it switches to once started, if any
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._ids = 0
        self._starting: dict[int, asyncio.Future[tuple[int, asyncio.Future[int]]]] = {}
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ensure(self) -> socket.socket:
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            if self._loop is loop:
                return self._sock
            self.close()  # made for another event loop: let that spawner go
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        who = []
        if self.ids is not None:
            uid, gid, groups = self.ids
            who = [f"{uid}:{gid}:{','.join(map(str, groups))}"]
        try:
            self._proc = subprocess.Popen(
                [_interpreter(), "-I", "-S", os.path.abspath(__file__), str(theirs.fileno()), *who],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # no signal meant for the server's group reaches it
                env={},  # nothing of the server's to read in /proc/<pid>/environ
                cwd="/",
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        loop.add_reader(ours.fileno(), self._readable)
        self._sock, self._loop = ours, loop
        return ours

    async def start(
        self,
        argv: Sequence[str],
        spawn: dict[str, Any],
        stdout: int,
        fds: Sequence[int] = (),
    ) -> tuple[int, asyncio.Future[int]]:
        """Start `argv` with the Popen keywords `spawn` (as Confinement.spawn makes them, with
        the descriptors `fds` expected at PLACE), its output to `stdout`: its pid, and its
        exit status to come (as Popen.returncode has it)."""
        request = _request(argv, spawn, len(fds))
        sock = self._ensure()
        self._ids += 1
        request_id = self._ids
        body = json.dumps({"id": request_id, **request}).encode()
        sent = [stdout, *fds]
        memfd = None
        if len(body) > INLINE_MAX:
            memfd = os.memfd_create("gnomon-spawn", os.MFD_CLOEXEC)
            _write_all(memfd, body)
            body, sent = IN_FD, [memfd, *sent]
        assert self._loop is not None
        started: asyncio.Future[tuple[int, asyncio.Future[int]]] = self._loop.create_future()
        self._starting[request_id] = started
        try:
            await self._send(sock, body, sent)
        except BaseException:
            self._starting.pop(request_id, None)
            raise
        finally:
            if memfd is not None:
                os.close(memfd)
        return await started

    async def _send(self, sock: socket.socket, body: bytes, fds: list[int]) -> None:
        while True:
            try:
                socket.send_fds(sock, [body], fds)
                return
            except BlockingIOError:
                assert self._loop is not None
                room: asyncio.Future[None] = self._loop.create_future()
                self._loop.add_writer(sock.fileno(), _settle, room)
                try:
                    await room
                finally:
                    self._loop.remove_writer(sock.fileno())

    def _readable(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                data = sock.recv(RECV_MAX)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            self._answer(json.loads(data))

    def _answer(self, msg: dict[str, Any]) -> None:
        if "exit" in msg:
            done = self._exits.pop(msg["exit"], None)
            if done is not None and not done.done():
                done.set_result(msg["code"])
            return
        started = self._starting.pop(msg["id"], None)
        if "pid" in msg:
            assert self._loop is not None
            exit_ = self._exits[msg["pid"]] = self._loop.create_future()
            if started is not None and not started.done():
                started.set_result((msg["pid"], exit_))
        elif started is not None and not started.done():
            started.set_exception(SpawnError(msg["error"]))

    def _lost(self) -> None:
        """The spawner is gone: what it started is ended here (its direct children died with
        it), and the next start makes a new one."""
        self._disconnect()
        for started in self._starting.values():
            if not started.done():
                started.set_exception(SpawnError("the spawner process died"))
        for pid, done in self._exits.items():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            if not done.done():
                done.set_result(-signal.SIGKILL)
        self._starting.clear()
        self._exits.clear()
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
        self._proc = None

    def _disconnect(self) -> None:
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def close(self) -> None:
        """Let the spawner go (it kills what it still holds) and wait for it."""
        self._disconnect()
        if self._proc is not None:
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        for pid, done in self._exits.items():
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            if not done.done():
                with contextlib.suppress(RuntimeError):  # its event loop is closed
                    done.set_result(-signal.SIGKILL)
        self._exits.clear()

    @property
    def pid(self) -> int | None:
        """The spawner's own pid, once it runs."""
        return self._proc.pid if self._proc is not None else None


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _request(argv: Sequence[str], spawn: dict[str, Any], given: int) -> dict[str, Any]:
    """What the spawner needs of `spawn` (Popen keywords): no callable crosses over, a
    pre-exec hook is known by name."""
    known = {"env", "cwd", "umask", "start_new_session", "pass_fds", "preexec_fn"}
    known |= {"user", "group", "extra_groups"}
    if unknown := set(spawn) - known:
        raise ValueError(f"the spawner cannot pass {sorted(unknown)}")
    hook = spawn.get("preexec_fn")
    if hook is not None and getattr(hook, "__name__", "") != "die_with_parent":
        raise ValueError("the spawner runs no pre-exec hook but die_with_parent")
    if sorted(spawn.get("pass_fds", ())) != sorted(PLACE[:given]):
        raise ValueError(f"descriptors for the command must be placed at {PLACE[:given]}")
    return {
        "argv": list(argv),
        "env": spawn.get("env"),
        "cwd": spawn.get("cwd"),
        "umask": spawn.get("umask", -1),
        "session": bool(spawn.get("start_new_session")),
        "user": spawn.get("user"),
        "group": spawn.get("group"),
        "groups": spawn.get("extra_groups"),
        "pdeathsig": hook is not None,
        "given": given,
    }


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)


def _interpreter() -> str:
    """This very Python binary: /proc/self/exe reaches it even where the path to it does not
    (a virtualenv in a home the server's user may not enter)."""
    return "/proc/self/exe" if os.path.exists("/proc/self/exe") else sys.executable


# --- the spawner process -----------------------------------------------------------------------


_LIBC: list[Any] = []  # libc, loaded by the spawner before it needs the hook below


def _die_with_parent() -> None:  # pragma: no cover - runs in the command's process
    """In the command's process, before the exec: SIGKILL when the spawner dies."""
    _LIBC[0].prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def serve(fd: int, ids: str | None = None) -> None:  # pragma: no cover - the spawner
    """The spawner: start what the socket `fd` asks for, report starts and exits; on EOF,
    kill every process group still held, and exit. With `ids` ("uid:gid:g1,g2"), it becomes
    that user once set up: the commands then start without a user switch (vfork, no exec of
    setpriv), and, changed from root, it is not dumpable (the commands of the same user
    cannot read its memory)."""
    sock = socket.socket(fileno=_high(fd))
    sock.setblocking(True)
    devnull = _high(os.open(os.devnull, os.O_RDWR))
    wake_r, wake_w = (_high(x) for x in os.pipe())
    for end in (wake_r, wake_w):
        os.set_blocking(end, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd is written
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    live: dict[int, subprocess.Popen[bytes]] = {}
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    poller.register(wake_r, select.POLLIN)
    if ids:
        uid, gid, groups = ids.split(":")
        os.setgroups([int(g) for g in groups.split(",") if g])
        os.setresgid(int(gid), int(gid), int(gid))
        os.setresuid(int(uid), int(uid), int(uid))

    def tell(msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            sock.send(json.dumps(msg).encode())

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = live.pop(pid, None)
            code = os.waitstatus_to_exitcode(status)
            if proc is not None:
                proc.returncode = code
            with contextlib.suppress(OSError):  # what the command left running ends with it
                os.killpg(pid, signal.SIGKILL)
            tell({"exit": pid, "code": code})

    def start(data: bytes, fds: list[int]) -> None:
        if data == IN_FD:  # the request is in a memfd
            memfd, fds = fds[0], fds[1:]
            with os.fdopen(memfd, "rb") as f:
                data = f.read()
        request = json.loads(data)
        fds = [_high(fd_) for fd_ in fds]  # none of them in the way of PLACE
        stdout, given = fds[0], fds[1:]
        placed = list(PLACE[: len(given)])
        try:
            if len(given) != request["given"]:
                raise OSError("descriptors went missing on the way")
            for src, dst in zip(given, placed, strict=True):
                os.dup2(src, dst)
            kw: dict[str, Any] = {}
            if request["user"] is not None:
                kw.update(user=request["user"], group=request["group"])
                kw.update(extra_groups=request["groups"] or [])
            if request["pdeathsig"]:
                if not _LIBC:
                    _LIBC.append(ctypes.CDLL("libc.so.6", use_errno=True))
                kw["preexec_fn"] = _die_with_parent
            proc = subprocess.Popen(
                request["argv"],
                stdin=devnull,
                stdout=stdout,
                stderr=stdout,
                env=request["env"],
                cwd=request["cwd"],
                umask=request["umask"],
                start_new_session=request["session"],
                pass_fds=tuple(placed),
                **kw,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            tell({"id": request["id"], "error": str(exc)})
        else:
            live[proc.pid] = proc
            tell({"id": request["id"], "pid": proc.pid})
        finally:
            for fd_ in (*fds, *placed):
                with contextlib.suppress(OSError):
                    os.close(fd_)

    while True:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        for fd_, _ in events:
            if fd_ == wake_r:
                with contextlib.suppress(BlockingIOError):
                    while os.read(wake_r, 4096):
                        pass
                reap()
                continue
            try:
                data, fds, _, _ = socket.recv_fds(sock, RECV_MAX, MAX_FDS)
            except InterruptedError:
                continue
            except OSError:
                data, fds = b"", []
            if not data and not fds:  # the server is gone, however it died
                for pid in live:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
                for proc in live.values():
                    with contextlib.suppress(OSError):
                        proc.wait()
                return
            start(data, fds)
        reap()


def _high(fd: int) -> int:
    """Move one of the spawner's own descriptors out of the way of PLACE."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, HIGH_FD)
    os.close(fd)
    return moved


if __name__ == "__main__":  # pragma: no cover - the spawner process
    serve(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)

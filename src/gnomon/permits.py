"""What the admin's settings permit a job: which spaces may use the local executor, which
named secrets a space may use, which working directories a local shell command may name.

The service asks when a job is created or changed (so a refusal names the cause at once);
the executors ask again before each attempt (the settings may have changed since)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from gnomon.config import Settings

WORK_PREFIX = "gnomon-work-"  # the directory of one process's attempts, in work_base()


def work_base(settings: Settings) -> Path:
    """Where each server and worker makes the directory of its attempts' directories."""
    return Path(os.path.realpath(settings.work_dir or tempfile.gettempdir()))


def local_space_refusal(
    settings: Settings, space: str | None, action: dict[str, Any]
) -> str | None:
    """Why `space` may not run `action` on the local executor (None: it may). No-ops run
    nothing and are allowed everywhere."""
    allowed = settings.local_spaces
    if allowed is None or action.get("type") == "noop" or (space is not None and space in allowed):
        return None
    return f"space '{space}' may not use the local executor (GNOMON_LOCAL_SPACES)"


def secret_refusals(settings: Settings, space: str | None, action: dict[str, Any]) -> list[str]:
    """The secrets `action` asks for that the settings hold but do not grant to `space`."""
    wanted = (action.get("secrets") or {}).values()
    return sorted({name for name in wanted if not settings.secret_granted(name, space)})


def cwd_refusal(settings: Settings, cwd: str | None) -> str | None:
    """Why a local shell command may not run in `cwd` (None: it may, or it names none).

    It must be an absolute path at or below one of `local_cwd_roots`, and not inside the data
    directory or the directory of the attempts' own working directories."""
    if not cwd:
        return None
    if not os.path.isabs(cwd):
        return f"cwd '{cwd}' is not an absolute path"
    where = Path(os.path.realpath(cwd))
    if not any(_within(where, root) for root in settings.local_cwd_roots):
        roots = ", ".join(str(r) for r in settings.local_cwd_roots) or "none"
        return (
            f"cwd '{cwd}' is not under a directory the admin allows for local jobs "
            f"(GNOMON_LOCAL_CWD_ROOTS: {roots})"
        )
    private = [settings.data_dir, *([settings.work_dir] if settings.work_dir else [])]
    base = work_base(settings)
    attempts = base in where.parents and where.relative_to(base).parts[0].startswith(WORK_PREFIX)
    if attempts or any(_within(where, p) for p in private):
        return f"cwd '{cwd}' is inside the server's own directories"
    return None


def _within(path: Path, root: Path) -> bool:
    root = Path(os.path.realpath(root))
    return path == root or root in path.parents

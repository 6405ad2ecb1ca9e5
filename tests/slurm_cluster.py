"""The one-node Slurm cluster of scripts/slurm.sh, started once per test session."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def slurm_conf() -> Path:
    """Start (or find) the cluster; its SLURM_CONF. Fails loudly when it cannot start."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm.sh")], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"scripts/slurm.sh failed:\n{done.stdout}\n{done.stderr}"
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("SLURM_CONF=")][-1]
    return Path(line.split("=", 1)[1])


def slurm_env() -> dict[str, str]:
    """Settings for a gnomon server with the Slurm executor on that cluster."""
    return {
        "GNOMON_SLURM_ENABLED": "true",
        "GNOMON_SLURM_CONF": str(slurm_conf()),
        "GNOMON_SLURM_POLL_S": "0.2",
    }


def slurm(*argv: str) -> subprocess.CompletedProcess[str]:
    """A Slurm command against the test cluster."""
    env = {**os.environ, "SLURM_CONF": str(slurm_conf())}
    return subprocess.run(list(argv), capture_output=True, text=True, env=env, timeout=60)

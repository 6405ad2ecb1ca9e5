"""Command scripts: sorunlib (the telescope's command library) and plain sleeps."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from gnomon.plans.policy import Block

PREAMBLE = """from sorunlib import *
from nextline import disable_trace

with disable_trace():
    initialize(test_mode=True)

smurf.uxm_setup()
smurf.iv_curve()
"""


def iso(t: float) -> str:
    """`2023-01-01T00:04:22.008539+00:00`; no fraction when there is none."""
    return datetime.fromtimestamp(t, UTC).isoformat()


def sorunlib_block(b: Block) -> str:
    """One block: move, bias, wait for the start, scan until the end."""
    return (
        f"# {b.name}\n"
        f"acu.move_to({b.az:.2f}, {b.alt:.2f})\n"
        "smurf.bias_dets()\n"
        f"wait_until('{iso(b.t0)}')\n"
        "smurf.bias_step()\n"
        f"seq.scan(description='{b.name}', stop_time='{iso(b.t1)}', width={b.throw:.2f})\n"
        "smurf.bias_step()\n"
    )


def sorunlib(blocks: Iterable[Block]) -> str:
    """The preamble, then each block after an empty line; one newline at the end."""
    return PREAMBLE + "".join("\n" + sorunlib_block(b) for b in blocks)


def sleeps(parts: Iterable[float], now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "\n".join(["import time", f"# {stamp}", *(f"time.sleep({p:.2f})" for p in parts)])

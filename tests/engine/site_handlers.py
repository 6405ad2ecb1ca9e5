"""Task handlers for the agent tests: each run leaves a line in a file, waits for a gate."""

from __future__ import annotations

import time
from pathlib import Path

from gnomon.agent import Task


def expose(task: Task) -> int:
    marker = Path(task.params["marker"])
    with marker.open("a") as fh:
        fh.write(f"{task.id}\n")
    task.status("EXPOSING", eta_s=5)
    task.output("shutter open\n")
    gate = Path(task.params["gate"])
    deadline = time.monotonic() + 60
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    task.status("READING OUT", eta_s=1)
    task.output("shutter closed\n")
    return 0


HANDLERS = {"expose": expose}

"""`basic` against outputs of the original scheduler (../shared/data/schedule-api-ref): the
same command script, byte for byte."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from gnomon.plans import policy
from gnomon.plans.policy import Context
from tests.plans.helpers import REFERENCE_DIR, ts

CASES = [
    ("basic_20230101T00_20230102T00.txt", "2023-01-01 00:00", "2023-01-02 00:00", {}),
    (
        "nocal_20230520T00_20230523T00.txt",
        "2023-05-20 00:00",
        "2023-05-23 00:00",
        {"calibration_targets": []},
    ),
]


def reference(name: str) -> str:
    path = Path(REFERENCE_DIR) / name
    if not path.exists():
        pytest.fail(f"{path} is missing beside the repository")
    return path.read_text()


@pytest.mark.parametrize(("name", "t0", "t1", "config"), CASES)
def test_same_script_as_the_original(
    shared_schedule: str, name: str, t0: str, t1: str, config: dict
) -> None:
    p = policy.get("basic")
    cfg = p.config({"master_schedule": shared_schedule, **config})
    got = p.generate(ts(t0), ts(t1), cfg, Context()).commands
    want = reference(name)
    diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), lineterm=""))
    assert got == want, diff

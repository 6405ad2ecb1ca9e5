import re

import pytest

from gnomon.plans import policy
from gnomon.plans.policy import Context, PolicyError
from gnomon.plans.verify import verify

LINE = re.compile(r"^time\.sleep\((\d+\.\d\d)\)$")


def make(t0: float, t1: float, **config: object):
    p = policy.get("dummy")
    return p.generate(t0, t1, p.config(config), Context(now=0))


@pytest.mark.parametrize("seed", range(20))
def test_parts_sum_to_the_window(seed: int) -> None:
    out = make(1000.0, 8200.0, seed=seed)
    lines = out.commands.split("\n")
    assert lines[0] == "import time"
    assert lines[1] == "# 1970-01-01 00:00:00"
    parts = [float(LINE.match(line).group(1)) for line in lines[2:]]  # type: ignore[union-attr]
    assert 1 <= len(parts) <= 10
    assert sum(parts) == pytest.approx(7200.0, abs=0.006)
    assert not out.commands.endswith("\n")
    assert [b.duration for b in out.blocks] == pytest.approx(parts, abs=0.006)
    assert verify(out.blocks, 1000.0, 8200.0, out.constraints)["ok"]


def test_seed_repeats_and_no_seed_varies() -> None:
    assert make(0, 3600, seed=7).commands == make(0, 3600, seed=7).commands
    assert len({make(0, 3600).commands for _ in range(20)}) > 1


def test_reversed_window_uses_its_length() -> None:
    out = make(7200.0, 0.0, seed=1)
    assert sum(b.duration for b in out.blocks) == pytest.approx(7200.0, abs=0.006)


def test_unknown_config_key_is_named() -> None:
    with pytest.raises(PolicyError, match="'seeed'"):
        policy.get("dummy").config({"seeed": 1})

"""`dummy`: the window split into 1 to 10 random sleeps that add up to its length."""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gnomon.plans.policy import Block, Constraints, Context, Draft, Policy, register
from gnomon.plans.script import sleeps


class DummyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int | None = Field(default=None, description="Makes the split repeatable.")


def split(duration: float, rng: random.Random) -> list[float]:
    """n (uniform in 1..10) parts, each to two decimals, summing to `duration` (to 0.01)."""
    n = rng.randint(1, 10)
    cuts = sorted(rng.uniform(0.0, duration) for _ in range(n - 1))
    edges = [0.0, *cuts, duration]
    parts = [round(b - a, 2) for a, b in itertools.pairwise(edges)]
    parts[-1] = max(0.0, round(duration - sum(parts[:-1]), 2))
    return parts


@register
class Dummy(Policy):
    name = "dummy"
    Config = DummyConfig
    order = 0

    def generate(self, t0: float, t1: float, config: Any, ctx: Context) -> Draft:
        lo, hi = min(t0, t1), max(t0, t1)
        parts = split(hi - lo, random.Random(config.seed))
        blocks, at = [], lo
        for i, p in enumerate(parts):
            end = hi if i == len(parts) - 1 else min(hi, at + p)
            if end > at:  # a sleep of 0.00 s takes no time in the plan
                blocks.append(Block("sleep", "wait", at, end))
            at = end
        now = ctx.now if ctx.now is not None else time.time()
        return Draft(blocks, sleeps(parts, now), Constraints())

"""The verifier: checks a plan without trusting the policy that made it.

- every block inside [t0, t1] and of positive length; no two blocks overlap;
- every pointed block at an elevation inside the alt range;
- no pointed block within the sun-avoidance angles at any instant: the sun comes straight
  from PyEphem (not the generator's interpolated track), at a finer step than generation
  (`step`: 1 s, or half the generation's step if that is finer). Stretches are skipped only
  when no instant in them can be unsafe: altitude and azimuth cannot change faster than the
  bounds below, so a margin of m degrees keeps a stretch of m / rate seconds safe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ephem

from gnomon.plans.policy import Block, Constraints
from gnomon.plans.sky import DEG, UNIX_TO_DJD, Site

# The sun's altitude changes at most as fast as the sky turns (360.99 deg/day), plus a margin.
ALT_RATE = 0.0042  # deg/s
EPS = 1e-6


@dataclass
class Problem:
    check: str  # "window", "overlap", "alt", "sun"
    block: int
    name: str
    at: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "block": self.block,
            "name": self.name,
            "at": _iso(self.at),
            "message": self.message,
        }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


class _Sun:
    """The sun's (alt, az) in degrees from PyEphem, one call per instant."""

    def __init__(self, site: Site):
        self.obs = ephem.Observer()
        self.obs.lat = math.radians(site.lat)
        self.obs.lon = math.radians(site.lon)
        self.obs.elevation = site.elevation
        self.obs.pressure = 0
        self.body = ephem.Sun()
        self.sin_lat = abs(math.sin(math.radians(site.lat)))
        self.cos_lat = math.cos(math.radians(site.lat))
        self.calls = 0

    def __call__(self, t: float) -> tuple[float, float]:
        self.obs.date = t / 86400.0 + UNIX_TO_DJD
        self.body.compute(self.obs)
        self.calls += 1
        return float(self.body.alt) * DEG, float(self.body.az) * DEG

    def az_rate(self, alt: float) -> float:
        """A bound on |d az / dt| (deg/s) while the sun stays below `alt` degrees."""
        if alt >= 89.0:
            return math.inf
        return ALT_RATE * (self.sin_lat + self.cos_lat * math.tan(math.radians(alt)))


def _sun_problem(b: Block, sun: _Sun, c: Constraints, step: float) -> float | None:
    """The first instant at which block `b` is within the avoidance angles, or None."""
    assert b.az is not None and b.alt is not None
    t = b.t0
    while True:
        alt_s, az_s = sun(t)
        m_alt = abs(b.alt - alt_s) - c.min_angle_alt
        m_az = abs((b.az - az_s + 180.0) % 360.0 - 180.0) - b.throw - c.min_angle_az
        if m_alt <= EPS and m_az <= EPS:
            return t
        if t >= b.t1:
            return None
        skip = step
        if m_alt > 0:
            skip = max(skip, m_alt / ALT_RATE)
        if m_az > 0:
            horizon = min(240.0, m_az / ALT_RATE)  # within which alt rises by at most 1 deg
            rate = sun.az_rate(abs(alt_s) + 1.0)
            skip = max(skip, min(horizon, m_az / rate))
        skip = max(step, math.floor(skip / step) * step)
        t = min(b.t1, t + skip)


def verify(
    blocks: Sequence[Block], t0: float, t1: float, c: Constraints, *, step: float | None = None
) -> dict[str, Any]:
    """The verification report: {ok, checks, step_s, sun_samples, problems}. The sun is
    checked every `step` s: by default 1 s, and always finer than the generation's step."""
    step = step or min(1.0, c.time_step / 2)
    problems: list[Problem] = []
    lo, hi = min(t0, t1), max(t0, t1)
    order = sorted(range(len(blocks)), key=lambda i: (blocks[i].t0, blocks[i].t1))
    prev: int | None = None
    for i in order:
        b = blocks[i]
        if b.t0 < lo - EPS or b.t1 > hi + EPS:
            problems.append(Problem("window", i, b.name, b.t0, "block outside [t0, t1]"))
        if b.t1 <= b.t0:
            problems.append(Problem("window", i, b.name, b.t0, "block of no length"))
        if prev is not None and b.t0 < blocks[prev].t1 - EPS:
            problems.append(
                Problem("overlap", i, b.name, b.t0, f"overlaps block {prev} ({blocks[prev].name})")
            )
        if prev is None or b.t1 > blocks[prev].t1:
            prev = i
    sun = _Sun(c.site) if c.site is not None else None
    checks = ["window", "overlap"]
    if sun is not None:
        checks += ["alt", "sun"]
        a_lo, a_hi = c.alt_range
        for i, b in enumerate(blocks):
            if b.az is None or b.alt is None:
                continue
            if not a_lo - EPS <= b.alt <= a_hi + EPS:
                problems.append(
                    Problem("alt", i, b.name, b.t0, f"elevation {b.alt:.2f} outside {c.alt_range}")
                )
            at = _sun_problem(b, sun, c, step)
            if at is not None:
                problems.append(Problem("sun", i, b.name, at, "within the sun-avoidance angles"))
    problems.sort(key=lambda p: (p.at, p.block))
    return {
        "ok": not problems,
        "checks": checks,
        "step_s": step,
        "sun_samples": sun.calls if sun else 0,
        "problems": [p.to_dict() for p in problems],
    }

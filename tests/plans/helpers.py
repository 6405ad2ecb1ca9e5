"""Helpers for the plans tests: the shared master schedule's path, times, and a brute-force
reference for the contract's sun-avoidance rule."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

from gnomon.plans.sky import Site, ephem_altaz

REPO = Path(__file__).resolve().parents[2]
SHARED_SCHEDULE = REPO.parent / "shared" / "data" / "toast_schedule_sat_2023.txt"


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def reference_safe_runs(
    site: Site,
    a: float,
    b: float,
    az: float,
    throw: float,
    el: float,
    *,
    min_az: float = 6.0,
    min_alt: float = 6.0,
    step: float = 10.0,
    n_buffer: int = 3,
) -> list[tuple[float, float]]:
    """The contract's rule, written out plainly with PyEphem at every sample."""
    n = max(0, math.ceil((b - a) / step))
    times = [a + k * step for k in range(n)] + [b]
    unsafe = []
    for t in times:
        alt_s, az_s = ephem_altaz("sun", site, t)
        d_az = abs((az - az_s + 180) % 360 - 180) - throw
        unsafe.append(d_az <= min_az and abs(el - alt_s) <= min_alt)
    bad = list(unsafe)
    for i, u in enumerate(unsafe):
        if u:
            for j in range(max(0, i - n_buffer), min(len(times), i + n_buffer + 1)):
                bad[j] = True
    runs, start = [], None
    for i in range(len(times) + 1):
        ok = i < len(times) and not bad[i]
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            if i - 1 > start:
                runs.append((times[start], times[i - 1]))
            start = None
    return runs

"""Helpers for the plans tests: where the shared files are, times, and a brute-force reference
for the original's survey sun-avoidance rule (PyEphem called at every sample)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import ephem

from gnomon.plans import toast
from gnomon.plans.sky import Site, wrap180

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
SHARED_SCHEDULE = SHARED_DATA / "toast_schedule_sat_2023.txt"
REFERENCE_DIR = SHARED_DATA / "schedule-api-ref"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def pyephem_altaz(body: str, site: Site, t: float) -> tuple[float, float]:
    """(alt, az) in degrees as the original got them: PyEphem's default atmosphere, the site
    as degree strings, the instant as a datetime."""
    obs = ephem.Observer()
    obs.lat, obs.lon, obs.elevation = str(site.lat), str(site.lon), site.elevation
    obs.date = ephem.Date(EPOCH + timedelta(microseconds=round(t * 1e6)))
    b = getattr(ephem, body.capitalize())(obs)
    return math.degrees(b.alt), math.degrees(b.az)


def reference_pieces(
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
    """The original's rule written out plainly: samples every `step` s from a (the end not
    sampled) at whole seconds; unsafe samples widened by `n_buffer` each side; the block
    whole if no sample is unsafe, else one piece per safe run, first to last sample."""
    n = math.floor((b - a) / step)
    times = [math.floor(a + k * step) for k in range(n)]
    unsafe = []
    for t in times:
        alt_s, az_s = pyephem_altaz("sun", site, t)
        unsafe.append(abs(wrap180(az - az_s)) - throw <= min_az and abs(el - alt_s) <= min_alt)
    if n and not any(unsafe):
        return [(a, b)]
    bad = [False] * n
    for i, u in enumerate(unsafe):
        if u:
            for j in range(max(0, i - n_buffer), min(n, i + n_buffer + 1)):
                bad[j] = True
    pieces, start = [], None
    for i in range(n + 1):
        ok = i < n and not bad[i]
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            pieces.append((float(times[start]), float(times[i - 1])))
            start = None
    return pieces


def reference_survey(
    path: str, t0: float, t1: float, **rule: Any
) -> list[tuple[toast.Scan, float, float]]:
    """Every master-schedule scan overlapping [t0, t1] trimmed to it, cut by the rule."""
    m = toast.load(path)
    want = []
    for s in m.overlapping(t0, t1):
        a, b = max(s.start, t0), min(s.stop, t1)
        throw = abs(s.az_max - s.az_min)
        for x, y in reference_pieces(m.site, a, b, s.az_min, throw, s.el, **rule):
            want.append((s, x, y))
    return want

"""Sun avoidance as the original scheduler did it, on a grid of whole-second samples.

A stretch [a, b] is sampled every `time_step` s from a (the end not sampled). A sample is
unsafe when the azimuth separation (less the scan's throw) is at most `min_angle_az` and the
elevation separation at most `min_angle_alt`. Runs of unsafe samples are widened by `n_buffer`
samples each side; what is left are the safe runs.

Checks say how long their verdict is known to hold, so most samples are never evaluated:
elevations change at most ALT_RATE (give or take a degree of refraction), azimuths at most
ALT_RATE * (|sin lat| + cos lat * tan alt).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from gnomon.plans.sky import ALT_RATE, ERR, US

# A sample's verdict (safe?) and for how many seconds after it the same verdict holds.
Check = Callable[[int], tuple[bool, float]]
HORIZON_S = 900.0  # how far ahead an azimuth margin is trusted
REFRACTION = 1.0  # deg: the most refraction can add to how far an elevation moves


@dataclass(frozen=True)
class Limits:
    """The avoidance angles (deg) and the site's latitude (for azimuth rates)."""

    min_az: float
    min_alt: float
    lat: float

    def verdict(self, d_az: float, d_alt: float, err: float = 2 * ERR) -> bool | None:
        """Safe, unsafe, or None when separations known to within `err` cannot tell."""
        if d_az > self.min_az + err or d_alt > self.min_alt + err:
            return True
        if d_az <= self.min_az - err and d_alt <= self.min_alt - err:
            return False
        return None

    def holds(self, safe: bool, d_az: float, d_alt: float, top: float, movers: int) -> float:
        """Seconds for which the verdict on separations (d_az, d_alt) stays the same, when
        `movers` bodies move (1: the sun against a fixed box, 2: a planet and the sun) and
        no elevation involved is above `top` (deg, absolute)."""
        alt_rate = movers * ALT_RATE
        top = abs(top) + ALT_RATE * HORIZON_S + REFRACTION
        if top < 85.0:
            slat, clat = abs(math.sin(math.radians(self.lat))), math.cos(math.radians(self.lat))
            az_rate = movers * ALT_RATE * (slat + clat * math.tan(math.radians(top)))
        else:
            az_rate = math.inf
        slack = 2 * ERR + movers * REFRACTION
        if safe:
            by_alt = (d_alt - self.min_alt - slack) / alt_rate
            by_az = min(HORIZON_S, (d_az - self.min_az - 2 * ERR) / az_rate)
            return max(0.0, by_alt, by_az)
        by_alt = (self.min_alt - d_alt - slack) / alt_rate
        by_az = min(HORIZON_S, (self.min_az - d_az - 2 * ERR) / az_rate)
        return max(0.0, min(by_alt, by_az))


def grid(a: int, b: int, step: int) -> list[int]:
    """Sample times (whole seconds) a, a+step, ... before b; instants in microseconds."""
    n = (b - a) // step if b > a else 0
    return [(a + k * step) // US for k in range(n)]


def runs(mask: list[bool]) -> list[tuple[int, int]]:
    """Maximal runs of True as half-open index pairs."""
    out, start = [], None
    for i, v in enumerate(mask):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(mask)))
    return out


def avoid(times: list[int], n_buffer: int, check: Check) -> list[tuple[int, int]] | None:
    """Safe index runs of the samples: None when every sample is safe, [] when none is
    (no samples included)."""
    n = len(times)
    if n == 0:
        return []
    bad: list[tuple[int, int]] = []
    i = 0
    while i < n:
        safe, ahead = check(times[i])
        limit = times[i] + ahead
        j = i + 1
        while j < n and times[j] <= limit:
            j += 1
        if not safe:
            lo, hi = max(0, i - n_buffer), min(n, j + n_buffer)
            if bad and bad[-1][1] >= lo:
                bad[-1] = (bad[-1][0], max(bad[-1][1], hi))
            else:
                bad.append((lo, hi))
        i = j
    if not bad:
        return None
    out, nxt = [], 0
    for lo, hi in bad:
        if lo > nxt:
            out.append((nxt, lo))
        nxt = hi
    if nxt < n:
        out.append((nxt, n))
    return out

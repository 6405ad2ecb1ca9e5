"""Where the sun and the planets are, seen from a site.

PyEphem gives apparent topocentric RA/Dec (no refraction) at hourly nodes; in between, RA/Dec
are interpolated linearly and turned into az/alt with the local sidereal time. Against PyEphem
called at every instant this is good to about 1e-4 degrees, at a few hundred times the speed.
Nodes are cached per (body, site, hour), so repeated windows cost no ephemeris calls at all.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass

import ephem

NODE_S = 3600.0
MOON_NODE_S = 600.0  # the moon's parallax turns with the earth: nodes closer together
SIDEREAL_RAD_S = 2 * math.pi * 1.00273790935 / 86400.0
TWO_PI = 2 * math.pi
DEG = 180.0 / math.pi
# Days from the Unix epoch to PyEphem's (Dublin Julian Date: 1899-12-31 12:00 UTC).
UNIX_TO_DJD = 25567.5
# A bound on how fast any body's altitude can change (the sky turns 360.99 deg/day).
ALT_RATE = 0.0042  # deg/s

BODIES: dict[str, type[ephem.Body]] = {
    "sun": ephem.Sun,
    "moon": ephem.Moon,
    "mercury": ephem.Mercury,
    "venus": ephem.Venus,
    "mars": ephem.Mars,
    "jupiter": ephem.Jupiter,
    "saturn": ephem.Saturn,
    "uranus": ephem.Uranus,
    "neptune": ephem.Neptune,
}
PLANETS = tuple(b for b in BODIES if b != "sun")


@dataclass(frozen=True)
class Site:
    """An observatory: latitude and longitude in degrees (east positive), elevation in m."""

    name: str
    lat: float
    lon: float
    elevation: float

    def observer(self, t: float) -> ephem.Observer:
        obs = ephem.Observer()
        obs.lat = math.radians(self.lat)
        obs.lon = math.radians(self.lon)
        obs.elevation = self.elevation
        obs.pressure = 0  # geometric positions: no refraction model
        obs.date = t / 86400.0 + UNIX_TO_DJD
        return obs


def ephem_altaz(body: str, site: Site, t: float) -> tuple[float, float]:
    """(alt, az) in degrees straight from PyEphem at Unix time `t`."""
    b = BODIES[body]()
    b.compute(site.observer(t))
    return float(b.alt) * DEG, float(b.az) * DEG


_NODES: OrderedDict[tuple[str, Site, int], tuple[float, float, float]] = OrderedDict()
_NODES_MAX = 50_000


def node_s(body: str) -> float:
    return MOON_NODE_S if body == "moon" else NODE_S


def _node(body: str, site: Site, k: int) -> tuple[float, float, float]:
    """(ra, dec, lst) in radians at node k (Unix time k * node_s(body))."""
    key = (body, site, k)
    hit = _NODES.get(key)
    if hit is not None:
        return hit
    obs = site.observer(k * node_s(body))
    b = BODIES[body]()
    b.compute(obs)
    hit = (float(b.ra), float(b.dec), float(obs.sidereal_time()))
    _NODES[key] = hit
    if len(_NODES) > _NODES_MAX:
        _NODES.popitem(last=False)
    return hit


class Track:
    """A body's apparent az/alt over a time range, from cached hourly nodes."""

    def __init__(self, body: str, site: Site, t0: float, t1: float):
        if body not in BODIES:
            raise KeyError(body)
        self.body, self.site = body, site
        self.node = node = node_s(body)
        self.k0 = math.floor(t0 / node)
        k1 = math.floor(t1 / node) + 1
        nodes = [_node(body, site, k) for k in range(self.k0, k1 + 1)]
        self._ra = [n[0] for n in nodes]
        self._dra = [_wrap_pi(b[0] - a[0]) for a, b in itertools.pairwise(nodes)]
        self._dec = [n[1] for n in nodes]
        self._ddec = [b[1] - a[1] for a, b in itertools.pairwise(nodes)]
        self._lst = [n[2] for n in nodes]
        self._sin_lat = math.sin(math.radians(site.lat))
        self._cos_lat = math.cos(math.radians(site.lat))

    def altaz(self, t: float) -> tuple[float, float]:
        """(alt, az) in degrees at Unix time `t` (inside the range given)."""
        i = min(max(int(t // self.node) - self.k0, 0), len(self._dra) - 1)
        dt = t - (self.k0 + i) * self.node
        f = dt / self.node
        ra = self._ra[i] + f * self._dra[i]
        dec = self._dec[i] + f * self._ddec[i]
        h = self._lst[i] + dt * SIDEREAL_RAD_S - ra
        sd, cd, ch = math.sin(dec), math.cos(dec), math.cos(h)
        sl, cl = self._sin_lat, self._cos_lat
        s = sl * sd + cl * cd * ch
        alt = math.asin(max(-1.0, min(1.0, s))) * DEG
        az = math.atan2(-cd * math.sin(h), sd * cl - cd * sl * ch) * DEG
        return alt, az % 360.0

    def alt(self, t: float) -> float:
        """Altitude alone (cheaper: no azimuth)."""
        i = min(max(int(t // self.node) - self.k0, 0), len(self._dra) - 1)
        dt = t - (self.k0 + i) * self.node
        f = dt / self.node
        dec = self._dec[i] + f * self._ddec[i]
        h = self._lst[i] + dt * SIDEREAL_RAD_S - self._ra[i] - f * self._dra[i]
        s = self._sin_lat * math.sin(dec) + self._cos_lat * math.cos(dec) * math.cos(h)
        return math.asin(max(-1.0, min(1.0, s))) * DEG


def _wrap_pi(x: float) -> float:
    return (x + math.pi) % TWO_PI - math.pi


def wrap180(x: float) -> float:
    """An angle in degrees folded into [-180, 180)."""
    return (x + 180.0) % 360.0 - 180.0

"""Where the sun and the planets are, seen from a site, as PyEphem reports it.

Positions are PyEphem's apparent az/alt for an observer with PyEphem's default atmosphere
(1010 mbar, 15 C, so refraction is applied), the site's latitude and longitude given as degree
strings. Instants are whole microseconds, turned into PyEphem dates the way PyEphem converts a
`datetime`; PyEphem hands az/alt back in single precision.

`Sky.exact` calls PyEphem. `Sky.altaz` gives the same numbers several times faster: PyEphem's
topocentric hour angle and declination at nodes every 30 minutes (5 for the moon), interpolated
(cubic), then PyEphem's own horizon transform and refraction, rounded to single precision as
PyEphem rounds. It agrees with `exact` bit for bit in all but a few samples in a thousand and
within `ERR` degrees always; callers that decide on a threshold ask `exact` when closer than
`ERR`. Node and exact values are kept between calls (bounded caches).
"""

from __future__ import annotations

import math
import struct
from collections import OrderedDict
from dataclasses import dataclass

import ephem

TWO_PI = 2 * math.pi
DEG = 180.0 / math.pi
# Days from the Unix epoch to PyEphem's (Dublin Julian Date: 1899-12-31 12:00 UTC).
UNIX_TO_DJD = 25567.5
US = 1_000_000
# A bound on how fast any body's true altitude can change (the sky turns 360.99 deg/day).
ALT_RATE = 0.0042  # deg/s
# Largest difference between `Sky.altaz` and `Sky.exact` (deg); a few single-precision steps.
ERR = 1e-4
# PyEphem's default atmosphere and its refraction tolerance (libastro refract.c).
PRESSURE, TEMPERATURE = 1010.0, 15.0
_MAXRERR = (0.1 / 3600.0) * math.pi / 180.0
_GE15 = 7.888888e-5 * PRESSURE
_SIDEREAL_RAD_DAY = TWO_PI * 1.00273790935
_F32 = struct.Struct("ff")
# Node spacing (s) of the fast model; the moon's parallax turns with the earth: closer nodes.
NODE_S, MOON_NODE_S = 1800, 300

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
        """A PyEphem observer without an atmosphere (geometric positions) at Unix time t."""
        obs = ephem.Observer()
        obs.lat = math.radians(self.lat)
        obs.lon = math.radians(self.lon)
        obs.elevation = self.elevation
        obs.pressure = 0
        obs.date = t / 86400.0 + UNIX_TO_DJD
        return obs

    def apparent_observer(self) -> ephem.Observer:
        """The observer the original scheduler used: degree strings, default atmosphere."""
        obs = ephem.Observer()
        obs.lat = str(self.lat)
        obs.lon = str(self.lon)
        obs.elevation = self.elevation
        return obs


def ephem_date(us: int) -> float:
    """PyEphem's date for a UTC instant in whole microseconds, as PyEphem converts the
    equivalent `datetime` (the last bit matters: it moves positions by ~1e-9 deg)."""
    s, micro = divmod(us, US)
    day, sod = divmod(s, 86400)
    m = day + UNIX_TO_DJD
    m += (sod // 3600) / 24.0
    m += (sod // 60 % 60) / (24.0 * 60.0)
    m += (sod % 60) / (24.0 * 60.0 * 60.0)
    m += micro / (24.0 * 60.0 * 60.0 * 1000000.0)
    return m


def ephem_altaz(body: str, site: Site, t: float) -> tuple[float, float]:
    """(alt, az) in degrees straight from PyEphem at Unix time `t`, without refraction."""
    b = BODIES[body]()
    b.compute(site.observer(t))
    return float(b.alt) * DEG, float(b.az) * DEG


# --- libastro's horizon transform and refraction, operation for operation -------------------


def _unrefract_lt15(aa: float) -> float:
    aadeg = aa * 180.0 / math.pi
    a = ((2e-5 * aadeg + 1.96e-2) * aadeg + 1.594e-1) * PRESSURE
    b = (273 + TEMPERATURE) * ((8.45e-2 * aadeg + 5.05e-1) * aadeg + 1)
    r = (a / b) * math.pi / 180.0
    return aa if (aa < 0 and r < 0) else aa - r


def _unrefract_ge15(aa: float) -> float:
    return aa - _GE15 / ((273 + TEMPERATURE) * math.tan(aa))


def _unrefract(aa: float) -> float:
    aadeg = aa * 180.0 / math.pi
    if aadeg < 14.5:
        return _unrefract_lt15(aa)
    if aadeg >= 15.5:
        return _unrefract_ge15(aa)
    lt, ge = _unrefract_lt15(aa), _unrefract_ge15(aa)
    p = (aadeg - 14.5) / (15.5 - 14.5)
    return lt + (ge - lt) * p


def refract(ta: float) -> float:
    """Apparent altitude (rad) for a true altitude `ta` (rad): libastro's secant iteration."""
    if ta * 180.0 / math.pi >= 16.0:  # the usual case, all in the tangent formula's range
        # (the same operations as _unrefract_ge15; 288 = 273 + TEMPERATURE)
        tan = math.tan
        t = ta - _GE15 / (288.0 * tan(ta))
        d = 0.8 * (ta - t)
        t0 = t
        a = ta
        for _ in range(100):
            a += d
            if a * 180.0 / math.pi < 15.5:
                break
            t = a - _GE15 / (288.0 * tan(a))
            if abs(ta - t) <= _MAXRERR or t0 == t:
                return a
            d *= -(ta - t) / (t0 - t)
            t0 = t
    t = _unrefract(ta)
    d = 0.8 * (ta - t)
    t0 = t
    a = ta
    for _ in range(100):
        a += d
        t = _unrefract(a)
        if abs(ta - t) <= _MAXRERR or t0 == t:
            break
        d *= -(ta - t) / (t0 - t)
        t0 = t
    return a


def hadec_aa(slt: float, clt: float, ha: float, dec: float) -> tuple[float, float]:
    """(alt, az) in radians from hour angle and declination (libastro's solve_sphere)."""
    big_a = -ha
    b = math.pi / 2 - dec
    cb, sb = math.cos(b), math.sin(b)
    ca = cb * slt + sb * clt * math.cos(big_a)
    ca = min(1.0, max(-1.0, ca))
    if clt < 1e-7:
        az = big_a if slt < 0 else math.pi - big_a
    else:
        y = math.sin(big_a) * sb * clt
        x = cb - ca * slt
        if y:
            az = math.atan2(y, x) if x else (math.pi / 2 if y > 0 else -math.pi / 2)
        else:
            az = 0.0 if x >= 0 else math.pi
    az -= TWO_PI * math.floor(az / TWO_PI)
    return math.pi / 2 - math.acos(ca), az


# --- nodes and the sky model ----------------------------------------------------------------

_NODES: OrderedDict[tuple[str, Site, int], tuple[float, float]] = OrderedDict()
_NODES_MAX = 100_000
_EXACT: OrderedDict[tuple[str, Site, int], tuple[float, float]] = OrderedDict()
_EXACT_MAX = 50_000


class Sky:
    """One body's apparent az/alt (degrees) from one site; instants in microseconds."""

    def __init__(self, body: str, site: Site):
        if body not in BODIES:
            raise KeyError(body)
        self.body, self.site = body, site
        self._obs = site.apparent_observer()
        self._b = BODIES[body]()
        lat = float(self._obs.lat)
        self._slt, self._clt = math.sin(lat), math.cos(lat)
        self._node_s = MOON_NODE_S if body == "moon" else NODE_S
        self._cubics: dict[int, tuple[float, tuple[float, ...], tuple[float, ...]]] = {}

    def exact(self, us: int) -> tuple[float, float]:
        """(alt, az) from PyEphem itself (kept: windows asked for again reuse them)."""
        key = (self.body, self.site, us)
        hit = _EXACT.get(key)
        if hit is None:
            self._obs.date = ephem_date(us)
            self._b.compute(self._obs)
            hit = _EXACT[key] = (float(self._b.alt) * DEG, float(self._b.az) * DEG)
            if len(_EXACT) > _EXACT_MAX:
                _EXACT.popitem(last=False)
        return hit

    def _node(self, k: int) -> tuple[float, float]:
        """PyEphem's topocentric (hour angle, declination) in radians at node k."""
        key = (self.body, self.site, k)
        hit = _NODES.get(key)
        if hit is None:
            self._obs.date = ephem_date(k * self._node_s * US)
            self._b.compute(self._obs)
            hit = _NODES[key] = (float(self._b.ha), float(self._b.dec))
            if len(_NODES) > _NODES_MAX:
                _NODES.popitem(last=False)
        return hit

    def _cubic(self, k: int) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
        """Newton forms, in days from node k, of (hour angle less the sidereal turn) and
        declination through nodes k-1 .. k+2."""
        hit = self._cubics.get(k)
        if hit is not None:
            return hit
        step = self._node_s * US
        ref = ephem_date(k * step)
        xs, ps, ds = [], [], []
        for j in range(k - 1, k + 3):
            x = ephem_date(j * step) - ref
            ha, dec = self._node(j)
            p = ha - _SIDEREAL_RAD_DAY * x
            if ps:
                p += TWO_PI * round((ps[-1] - p) / TWO_PI)
            xs.append(x)
            ps.append(p)
            ds.append(dec)
        hit = self._cubics[k] = (ref, _newton(xs, ps), _newton(xs, ds))
        return hit

    def altaz(self, us: int) -> tuple[float, float]:
        """(alt, az) from the interpolated nodes (see the module docstring)."""
        k = us // (self._node_s * US)
        ref, p, d = self._cubic(k)
        x = ephem_date(us) - ref
        ha = _newton_at(p, x) + _SIDEREAL_RAD_DAY * x
        dec = _newton_at(d, x)
        alt, az = hadec_aa(self._slt, self._clt, ha, dec)
        alt, az = _F32.unpack(_F32.pack(refract(alt), az))
        return alt * DEG, az * DEG

    def alts(self, times: list[int]) -> list[float]:
        """Altitudes (deg) at whole-second times as `altaz` computes them (`ephem_date` and
        `hadec_aa` inlined), without the final single-precision rounding: for decisions,
        many at once."""
        out: list[float] = []
        node, slt, clt, sid = self._node_s, self._slt, self._clt, _SIDEREAL_RAD_DAY
        cos, sin, acos, half_pi = math.cos, math.sin, math.acos, math.pi / 2
        k_cur = None
        ref = x0 = x1 = x2 = p0 = pa = pb = pd = d0 = da = db = dd = 0.0
        for t in times:
            k = t // node
            if k != k_cur:
                ref, p, d = self._cubic(k)
                x0, x1, x2, p0, pa, pb, pd = p
                d0, da, db, dd = d[3:]
                k_cur = k
            day, sod = divmod(t, 86400)
            m = day + UNIX_TO_DJD
            m += (sod // 3600) / 24.0
            m += (sod // 60 % 60) / (24.0 * 60.0)
            m += (sod % 60) / (24.0 * 60.0 * 60.0)
            x = m - ref
            u0, u1, u2 = x - x0, x - x1, x - x2
            ha = p0 + u0 * (pa + u1 * (pb + u2 * pd)) + sid * x
            b = half_pi - (d0 + u0 * (da + u1 * (db + u2 * dd)))
            ca = cos(b) * slt + sin(b) * clt * cos(-ha)
            out.append(refract(half_pi - acos(min(1.0, max(-1.0, ca)))) * DEG)
        return out


def _newton(xs: list[float], ys: list[float]) -> tuple[float, ...]:
    """Nodes and divided differences of the cubic through four points."""
    x0, x1, x2, x3 = xs
    y0, y1, y2, y3 = ys
    d01, d12, d23 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1), (y3 - y2) / (x3 - x2)
    d012, d123 = (d12 - d01) / (x2 - x0), (d23 - d12) / (x3 - x1)
    return (x0, x1, x2, y0, d01, d012, (d123 - d012) / (x3 - x0))


def _newton_at(c: tuple[float, ...], x: float) -> float:
    x0, x1, x2, y0, a, b, d = c
    return y0 + (x - x0) * (a + (x - x1) * (b + (x - x2) * d))


def wrap180(x: float) -> float:
    """An angle in degrees folded into [-180, 180)."""
    return (x + 180.0) % 360.0 - 180.0

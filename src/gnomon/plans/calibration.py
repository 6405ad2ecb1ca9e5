"""Planet calibration scans of the `basic` policy, as the original scheduler made them.

For each target (names sorted, duplicates dropped):

1. Passes: from the rising before t0, rising -> transit ("rising" half) and transit -> setting
   ("setting" half), each from the setting before; halves trimmed to [t0, t1].
2. Sun avoidance on each half with the planet's own position (no throw).
3. One observing window per piece: on a 30 s grid, where the planet would take at most
   `MAX_OBS_S` to drift one degree in elevation (rising: up, setting: down) within the piece;
   pieces where that holds on no stretch, or on several, are dropped.
4. Windows on the days `day-mod` selects (sidereal days), at least `min_duration` long, split
   where the planet leaves `alt_range`.
5. One scan per piece: it starts at a random point (the same draw for all pieces of a target,
   seeded by the date of the first piece and the target's place in the sorted list) leaving at
   least `preferred_length` of the piece after it, lasts one 1-degree drift, points at the
   planet's azimuth half-way through the drift and half a degree into it, and is 1/cos(alt)
   wide.

Positions: the planet's az/alt come from a not-a-knot cubic spline through PyEphem values
every 30 s from t0 (as the original's interpolator), the sun's straight from PyEphem at each
sample. Decisions on a threshold use the fast sky model (`gnomon.plans.sky`) and PyEphem
itself when closer to the threshold than the model's error; a scan's numbers come from
PyEphem itself around the instants they depend on.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ephem

from gnomon.plans import spline
from gnomon.plans.avoidance import Check, Limits, avoid, grid, runs
from gnomon.plans.sky import BODIES, ERR, US, Site, Sky, ephem_date, wrap180

DAY_US = 86400 * US
NODE_US = 30 * US  # the planet interpolator's node spacing and the windows' sample step
SIDEREAL_DAY_S = 0.997269566 * 86400
COARSE = 4  # samples between the altitudes first computed for a window test
STEADY = 0.05  # deg: a rise between those beyond which no sample can turn back
EXACT_NODES = 8  # nodes each side of an instant that matters taken from PyEphem itself
MAX_OBS_S = 6000.0  # longest 1-degree drift a window may ask for
HALF_HEIGHT = 0.5  # half the footprint in elevation (deg); the default spec's bounds
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Piece:
    """A stretch [t0, t1] (microseconds) of one target's pass half (sign +1 rising)."""

    t0: int
    t1: int
    sign: int


@dataclass(frozen=True)
class Scan:
    """A calibration scan: from t0 to t1 (microseconds), az/alt/throw in degrees."""

    name: str
    t0: int  # microseconds
    t1: int
    az: float
    alt: float
    throw: float


@dataclass(frozen=True)
class Rules:
    """The config rules that act on calibration (times in microseconds)."""

    limits: Limits
    time_step_us: int
    n_buffer: int
    alt_range: tuple[float, float]
    min_duration: float
    preferred_length: float
    day: int
    day_mod: int
    day_ref_us: int


# --- passes and sun avoidance ------------------------------------------------------------------


def point_check(planet: Sky, sun: Sky, limits: Limits) -> Check:
    """Sun avoidance on the planet's own position (no throw)."""

    def check(t: int) -> tuple[bool, float]:
        alt_p, az_p = planet.altaz(t * US)
        alt_s, az_s = sun.altaz(t * US)
        d_az, d_alt = abs(wrap180(az_p - az_s)), abs(alt_p - alt_s)
        safe = limits.verdict(d_az, d_alt)
        if safe is None:
            alt_p, az_p = planet.exact(t * US)
            alt_s, az_s = sun.exact(t * US)
            d_az, d_alt = abs(wrap180(az_p - az_s)), abs(alt_p - alt_s)
            safe = d_az > limits.min_az or d_alt > limits.min_alt
        return safe, limits.holds(safe, d_az, d_alt, max(abs(alt_p), abs(alt_s)), 2)

    return check


def passes(body: str, site: Site, t0: int, t1: int) -> list[Piece]:
    """The body's rising and setting halves trimmed to [t0, t1] (microseconds). (The
    original goes on to a setting a day past t1; those passes start after t1.)"""
    halves: list[Piece] = []
    try:
        rise = _riset(body, site, "previous_rising", t0)
        mid = _riset(body, site, "next_transit", rise)
        end = _riset(body, site, "next_setting", mid)
        halves += [Piece(rise, mid, 1), Piece(mid, end, -1)]
        while end < t1:
            rise = _riset(body, site, "next_rising", end)
            mid = _riset(body, site, "next_transit", rise)
            end = _riset(body, site, "next_setting", mid)
            halves += [Piece(rise, mid, 1), Piece(mid, end, -1)]
    except ephem.CircumpolarError:
        return []
    return [Piece(max(h.t0, t0), min(h.t1, t1), h.sign) for h in halves if h.t1 > t0 and h.t0 < t1]


_RISET: OrderedDict[tuple[str, Site, str, int], int] = OrderedDict()


def _riset(body: str, site: Site, event: str, us: int) -> int:
    """PyEphem's rising, transit or setting from instant `us`, as an aware datetime's
    microseconds (kept: passes repeat from one window to the next)."""
    key = (body, site, event, us)
    hit = _RISET.get(key)
    if hit is None:
        obs = site.apparent_observer()
        obs.date = ephem_date(us)
        when = getattr(obs, event)(BODIES[body]())
        hit = _RISET[key] = (ephem.to_timezone(when, UTC) - EPOCH) // _ONE_US
        if len(_RISET) > 10_000:
            _RISET.popitem(last=False)
    return hit


# --- the planet as the original's interpolator gives it ---------------------------------------


class Track:
    """A target's az/alt as the original's interpolator gives them: a spline through PyEphem
    values every 30 s from the window's start. Values far from the instants that matter are
    taken from the fast sky model (far nodes barely move the spline); `fast_alts` is the fast
    model at the samples themselves, for decisions."""

    def __init__(self, sky: Sky, t0: int, t1: int):
        self.sky = sky
        self.start = t0
        self.nodes = (t1 + DAY_US - t0) // NODE_US
        self._exact: dict[int, tuple[float, float]] = {}
        self._fast: dict[int, tuple[float, float]] = {}

    def fast_alts(self, times: list[int]) -> list[float]:
        return self.sky.alts(times)

    def _node(self, k: int, exact: bool) -> tuple[float, float]:
        cache = self._exact if exact else self._fast
        hit = cache.get(k)
        if hit is None:
            at = self.start + k * NODE_US
            hit = cache[k] = self.sky.exact(at) if exact else self.sky.altaz(at)
        return hit

    def values(self, times: list[int], focus: tuple[int, int] | None) -> list[tuple[float, float]]:
        """(alt, az) at increasing whole-second times; PyEphem itself at the nodes within
        EXACT_NODES of the focus stretch [a, b] (whole seconds), if any."""
        first = self.start // US
        near = range(0)
        if focus is not None:
            k_a = (focus[0] * US - self.start) // NODE_US
            k_b = (focus[1] * US - self.start) // NODE_US
            near = range(k_a - EXACT_NODES, k_b + EXACT_NODES + 2)
        if self.start % US == 0 and all((t - first) % 30 == 0 for t in times):
            return [self._node(k, k in near) for k in ((t - first) // 30 for t in times)]
        k_lo = max(0, (times[0] * US - self.start) // NODE_US)
        k_hi = min(self.nodes - 1, (times[-1] * US - self.start) // NODE_US + 1)
        a, b = spline.window(self.nodes, k_lo, k_hi)
        xs = [(self.start + k * NODE_US) // US - first for k in range(a, b)]
        vals = [self._node(k, k in near) for k in range(a, b)]
        alt = spline.Spline(xs, [v[0] for v in vals])
        az = spline.Spline(xs, [v[1] for v in vals])
        return [(alt(t - first), az(t - first)) for t in times]


# --- observing windows --------------------------------------------------------------------------


class Window:
    """A piece's samples (whole-second times `ts`, 30 s apart) and its observing window, the
    samples [lo, hi). Fast altitudes are computed as needed; see `steady`."""

    def __init__(self, track: Track, sign: int, ts: list[int]):
        self.track, self.sign, self.ts = track, sign, ts
        self.lo, self.hi = 0, len(ts)
        self._alts = [math.nan] * len(ts)
        self.marks: list[int] = []  # samples bracketing stretches known to be monotone
        self._mark_keys: list[float] = []

    @property
    def t0(self) -> int:
        return self.ts[self.lo] * US

    @property
    def t1(self) -> int:
        return self.ts[self.hi - 1] * US

    def fill(self, idx: Iterable[int]) -> None:
        """Compute the fast altitudes of these samples, where not known yet."""
        alts = self._alts
        todo = [i for i in idx if alts[i] != alts[i]]
        if todo:
            for i, v in zip(todo, self.track.fast_alts([self.ts[i] for i in todo]), strict=True):
                alts[i] = v

    def alt(self, i: int) -> float:
        if self._alts[i] != self._alts[i]:
            self.fill((i,))
        return self._alts[i]

    def key(self, i: int) -> float:
        """The altitude times the sign: increasing when the planet moves one way."""
        return self.sign * self.alt(i)

    def alts(self) -> list[float]:
        self.fill(range(len(self.ts)))
        return self._alts

    def steady(self) -> bool:
        """Whether the planet moves one way over the piece, found from every COARSE-th
        sample: between two whose keys rise by STEADY or more, both below 75 deg, no sample
        can break the order (turning back would take a curvature in elevation of at least
        2 * STEADY / (COARSE * 30 s)**2, over three times what the sky has below 76 deg);
        other brackets are computed in full and checked."""
        n = len(self.ts)
        marks = [*range(0, n - 1, COARSE), n - 1]
        self.fill(marks)
        for a, b in itertools.pairwise(marks):
            ka, kb = self.key(a), self.key(b)
            if kb <= ka:
                return False
            if kb - ka < STEADY or max(abs(self.alt(a)), abs(self.alt(b))) > 75.0:
                self.fill(range(a, b))
                if any(self.key(j + 1) <= self.key(j) for j in range(a, b)):
                    return False
        self.marks, self._mark_keys = marks, [self.key(m) for m in marks]
        return True

    def bracket(self, i: int) -> tuple[int, int]:
        """The marks around sample i (of a steady piece)."""
        j = bisect.bisect_right(self.marks, i)
        return self.marks[max(j - 1, 0)], self.marks[min(j, len(self.marks) - 1)]

    def crossing(self, alt: float) -> int:
        """Index of the first sample at or beyond where the (fast) altitude passes `alt`."""
        x, n = self.sign * alt, len(self.ts)
        a, b = 0, n - 1
        if self.marks:
            j = bisect.bisect_left(self._mark_keys, x)
            if j == 0:
                return 0
            if j == len(self.marks):
                return n - 1
            a, b = self.marks[j - 1], self.marks[j]
        return next((i for i in range(a, b + 1) if self.key(i) >= x), b)

    def focus(self, i: int) -> tuple[int, int]:
        """The stretch whose values decide sample i's arrays: from i to where the planet has
        drifted one degree."""
        c = self.crossing(self.alt(i) + self.sign)
        return self.ts[min(i, c)], self.ts[max(i, c)]

    def exact_alt(self, i: int) -> float:
        a, b = spline.window(len(self.ts), i, i)
        return self.track.values(self.ts[a:b], (self.ts[i], self.ts[i]))[i - a][0]


def observing_window(track: Track, piece: Piece) -> Window | None:
    """The piece's observing window (step 3 of the module docstring), or None."""
    ts = grid(piece.t0, piece.t1, NODE_US)
    if len(ts) < 2:
        return None
    w = Window(track, piece.sign, ts)
    spans = runs(_ok_steady(w) if w.steady() else _ok_any(w))
    if len(spans) != 1:
        return None
    w.lo, w.hi = spans[0]
    return w


def _ok_any(w: Window) -> list[bool]:
    """The window test for every sample: the drift's end inside the piece's elevations,
    reached within MAX_OBS_S (t as a spline of elevation through all samples)."""
    alts = w.alts()
    lo_alt, hi_alt = min(alts), max(alts)
    t_of = _inverse(w.ts, alts)
    ok = []
    for i, alt in enumerate(alts):
        stop = alt + w.sign
        obs = t_of(stop) - w.ts[i]
        near = min(abs(stop - lo_alt), abs(stop - hi_alt)) <= 2 * ERR
        if near or abs(obs - MAX_OBS_S) <= 1.0:
            ok.append(_exact_ok(w, i))
        else:
            ok.append(lo_alt <= stop <= hi_alt and obs <= MAX_OBS_S)
    return ok


def _ok_steady(w: Window) -> list[bool]:
    """The same test when the planet moves one way. With keys (elevation times the sign)
    increasing, the drift's end is inside the piece while key + 1 <= the last key, and is
    reached within MAX_OBS_S when the key MAX_OBS_S later is beyond it: a margin of 0.01 deg
    is over 2 s, far more than the spline's wiggle, so only samples inside it need the
    spline. A bracket between marks is decided at once when the keys at the marks settle
    it for every sample in it."""
    n = len(w.ts)
    top = w.key(n - 1)
    span = round(MAX_OBS_S / 30)
    marks = set(w.marks)
    ok = [False] * n

    def one(i: int) -> bool:
        stop = w.key(i) + 1.0
        if abs(stop - top) <= 2 * ERR:
            return _exact_ok(w, i)
        if stop > top:
            return False
        if i + span >= n:
            return True
        later = w.key(i + span)
        if abs(later - stop) >= 0.01:
            return later > stop
        obs = _arrays(w, i, i, i + 1, False)["obs"][0]
        return _exact_ok(w, i) if abs(obs - MAX_OBS_S) <= 1.0 else obs <= MAX_OBS_S

    for a, b in itertools.pairwise(w.marks):
        kl, kr = w.key(a), w.key(b)
        if kl + 1.0 > top + 2 * ERR:
            continue  # the drift's end is past the piece throughout
        inside = kr + 1.0 < top - 2 * ERR
        if inside and a + span >= n:
            ok[a:b] = [True] * (b - a)
            continue
        if inside and b + span < n and a + span in marks and b + span in marks:
            gain_lo = w.key(a + span) - kr - 1.0  # bounds of key(i + span) - (key(i) + 1)
            gain_hi = w.key(b + span) - kl - 1.0
            if gain_lo >= 0.01 or gain_hi <= -0.01:
                ok[a:b] = [gain_lo >= 0.01] * (b - a)
                continue
        ok[a:b] = [one(i) for i in range(a, b)]
    ok[n - 1] = one(n - 1)
    return ok


def _inverse(ts: list[int], alts: list[float]) -> Callable[[float], float]:
    """t as a spline function of alt through the samples (alt sorted, duplicates dropped)."""
    pairs = sorted(zip(alts, ts, strict=True))
    xs: list[float] = []
    ys: list[float] = []
    for a, t in pairs:
        if not xs or a > xs[-1]:
            xs.append(a)
            ys.append(float(t - ts[0]))
    s = spline.Spline(xs, ys)
    return lambda x: s(x) + ts[0]


def _arrays(w: Window, i: int, a: int, b: int, exact: bool) -> dict[str, list[float]]:
    """obs_length, az_bore, alt_bore and throw at samples [a, b), as accurate as the spline
    through all samples at sample i and less so away from it (where the spline weights of
    a later interpolation at i make up for it). Exact values near i when `exact`."""
    c = w.crossing(w.alt(i) + w.sign)
    lo, hi = spline.window(len(w.ts), min(i, c), max(i, c))
    lo, hi = min(lo, a), max(hi, b)
    ts = w.ts[lo:hi]
    vals = w.track.values(ts, w.focus(i) if exact else None)
    alts = [v[0] for v in vals]
    t_of = _inverse(ts, alts)
    az_of = spline.Spline([float(t - ts[0]) for t in ts], [v[1] for v in vals])
    out: dict[str, list[float]] = {"obs": [], "az": [], "alt": [], "throw": []}
    for j in range(a, b):
        alt = alts[j - lo]
        center = alt + HALF_HEIGHT * w.sign
        out["obs"].append(t_of(alt + 2 * HALF_HEIGHT * w.sign) - w.ts[j])
        out["az"].append(az_of(t_of(center) - ts[0]))
        out["alt"].append(center)
        out["throw"].append(1 / math.cos(math.radians(center)))
    return out


def _exact_ok(w: Window, i: int) -> bool:
    """The window test for sample i with exact values."""
    if w.marks:  # steady: the extremes are the ends
        ends = [0, len(w.ts) - 1]
    else:
        alts = w.alts()
        lo_alt, hi_alt = min(alts), max(alts)
        ends = [j for j, x in enumerate(alts) if min(abs(x - lo_alt), abs(x - hi_alt)) <= 4 * ERR]
    extremes = [w.exact_alt(j) for j in ends]
    stop = w.exact_alt(i) + w.sign
    if not min(extremes) <= stop <= max(extremes):
        return False
    return _arrays(w, i, i, i + 1, True)["obs"][0] <= MAX_OBS_S


def in_range(w: Window, alt_range: tuple[float, float]) -> list[tuple[int, int]]:
    """Sample runs of the window inside the altitude range, its last sample not counted.
    In a steady piece a bracket whose ends are both inside (or both beyond the same bound)
    is so throughout."""
    lo, hi = alt_range

    def inside(i: int) -> bool:
        alt = w.alt(i)
        if min(abs(alt - lo), abs(alt - hi)) <= 2 * ERR:
            alt = w.exact_alt(i)
        return lo <= alt <= hi

    first, last = w.lo, w.hi - 1
    mask: list[bool] = []
    i = first
    while i < last:
        b = min(w.bracket(i)[1], last) if w.marks else i
        if b > i:
            ends = (w.alt(i), w.alt(b))
            if all(lo + 2 * ERR < x < hi - 2 * ERR for x in ends):
                mask += [True] * (b - i)
                i = b
                continue
            if all(x < lo - 2 * ERR for x in ends) or all(x > hi + 2 * ERR for x in ends):
                mask += [False] * (b - i)
                i = b
                continue
        mask.append(inside(i))
        i += 1
    return [(first + a, first + b) for a, b in runs(mask)]


# --- the random start ---------------------------------------------------------------------------


def first_draw(seed: int) -> float:
    """The first double of MT19937 seeded by init_genrand(seed) (numpy's seed(int))."""
    mt = [seed & 0xFFFFFFFF]
    for i in range(1, 624):
        prev = mt[-1]
        mt.append((1812433253 * (prev ^ (prev >> 30)) + i) & 0xFFFFFFFF)
    rng = random.Random()
    rng.setstate((3, (*mt, 624), None))
    return rng.random()


def daily_draw(when: int, index: int) -> float:
    """The draw for the target at `index` (sorted names) on the UTC date of `when` (us)."""
    d = datetime.fromtimestamp(when // US, UTC)
    return first_draw(hash(((d.year, d.month, d.day), index)) % 4294967295)


# --- the whole step -----------------------------------------------------------------------------


def scans(targets: list[str], site: Site, sun: Sky, t0: int, t1: int, rules: Rules) -> list[Scan]:
    """Calibration scans for the window [t0, t1] (microseconds), in target order (sorted
    names), each target's in time order."""
    names = sorted(set(targets))
    found: list[list[tuple[Window, int, int]]] = []
    for name in names:
        track = Track(Sky(name, site), t0, t1)
        pieces: list[tuple[Window, int, int]] = []
        check = point_check(track.sky, sun, rules.limits)
        for half in passes(name, site, t0, t1):
            times = grid(half.t0, half.t1, rules.time_step_us)
            safe = avoid(times, rules.n_buffer, check)
            parts = (
                [half]
                if safe is None
                else [Piece(times[a] * US, times[b - 1] * US, half.sign) for a, b in safe]
            )
            for part in parts:
                w = observing_window(track, part)
                if w is None or not _day_selected(w.t0, rules):
                    continue
                if w.t1 - w.t0 < timedelta(seconds=rules.min_duration) // _ONE_US:
                    continue
                for a, b in in_range(w, rules.alt_range):
                    pieces.append((w, w.ts[a] * US, w.ts[b - 1] * US))
        found.append(pieces)
    starts = [p[1] for ps in found for p in ps]
    if not starts:
        return []
    first = min(starts)
    out: list[Scan] = []
    for index, (name, pieces) in enumerate(zip(names, found, strict=True)):
        u = daily_draw(first, index)
        for w, a, b in pieces:
            out.append(_scan(name, w, a, b, u, rules.preferred_length))
    return out


def _day_selected(t: int, rules: Rules) -> bool:
    day = math.floor(((t - rules.day_ref_us) / US) / SIDEREAL_DAY_S)
    return day % rules.day_mod == rules.day


def _scan(name: str, w: Window, a: int, b: int, u: float, preferred: float) -> Scan:
    """The scan for piece [a, b] of window w with draw u."""
    duration = (b - a) / US
    allowance = duration - min(preferred, duration)
    start = a + timedelta(seconds=allowance * u) // _ONE_US
    t_req = start // US
    i = min(max(bisect.bisect_right(w.ts, t_req, w.lo, w.hi) - 1, w.lo), w.hi - 1)
    lo, hi = max(w.lo, i - spline.WINDOW), min(w.hi, i + spline.WINDOW + 2)
    arrays = _arrays(w, i, lo, hi, True)
    xs = [float(t - w.ts[lo]) for t in w.ts[lo:hi]]
    x = float(t_req - w.ts[lo])

    def at(key: str) -> float:
        ys = arrays[key]
        if x <= xs[0] or x >= xs[-1]:  # outside the window's samples: the end value
            return ys[0] if x <= xs[0] else ys[-1]
        return spline.Spline(xs, ys)(x)

    end = start + timedelta(seconds=at("obs")) // _ONE_US
    return Scan(name, start, end, at("az"), at("alt"), at("throw"))

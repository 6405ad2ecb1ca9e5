"""`basic`: survey scans from a TOAST master schedule, planet calibration scans, sun avoidance.

1. The master schedule's scans that overlap [t0, t1], trimmed to it (and kept only on the days
   `day-mod` selects, and only at elevations inside `alt-range`).
2. For each calibration target, in the order given (earlier ones win over later ones): the
   stretches in which it is inside `alt-range` (sampled every `time_step` s from t0), cut by
   sun avoidance on the source's own position, split into parts of about `preferred_length`;
   each part a block at the source's az (min over the part, throw covering its drift) and its
   altitude at mid-part.
3. Sun avoidance on every block's az/alt box (see `safe_runs`); calibration blocks win where
   they overlap the survey; blocks shorter than `min_duration` are dropped; all sorted by time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gnomon.plans import toast
from gnomon.plans.policy import Block, Constraints, Context, Outcome, Policy, PolicyError, register
from gnomon.plans.script import sorunlib
from gnomon.plans.sky import ALT_RATE, PLANETS, Track, wrap180

MAX_WINDOW_S = 31 * 86400
MAX_STEPS = 1_000_000
Interval = tuple[float, float]
_STRICT = ConfigDict(extra="forbid")


class SunAvoidance(BaseModel):
    model_config = _STRICT
    min_angle_az: float = Field(default=6.0, ge=0, le=180)
    min_angle_alt: float = Field(default=6.0, ge=0, le=180)
    time_step: float = Field(default=10.0, ge=1, le=3600)
    n_buffer: int = Field(default=3, ge=0, le=1000)


class AltRange(BaseModel):
    model_config = _STRICT
    alt_range: tuple[float, float] = (20.0, 90.0)

    @field_validator("alt_range")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not -90 <= v[0] <= v[1] <= 90:
            raise ValueError("needs [low, high] with -90 <= low <= high <= 90")
        return v


class MinDuration(BaseModel):
    model_config = _STRICT
    min_duration: float = Field(default=300.0, ge=0, le=86400)


class SourceScan(BaseModel):
    model_config = _STRICT
    preferred_length: float = Field(default=1800.0, ge=60, le=86400)


class DayMod(BaseModel):
    """Keep survey scans starting on days d with (d - day_ref) mod day_mod == day."""

    model_config = _STRICT
    day: int = Field(default=0, ge=0)
    day_mod: int = Field(default=1, ge=1, le=3650)
    day_ref: datetime = datetime(2014, 1, 1, tzinfo=UTC)

    @model_validator(mode="after")
    def _day_in_range(self) -> DayMod:
        if self.day >= self.day_mod:
            raise ValueError("day must be less than day_mod")
        if self.day_ref.tzinfo is None:
            self.day_ref = self.day_ref.replace(tzinfo=UTC)
        return self


class Rules(BaseModel):
    model_config = _STRICT
    sun_avoidance: SunAvoidance = Field(default_factory=SunAvoidance, alias="sun-avoidance")
    alt_range: AltRange = Field(default_factory=AltRange, alias="alt-range")
    calibration_min_duration: MinDuration = Field(
        default_factory=MinDuration, alias="calibration-min-duration"
    )
    make_source_scan: SourceScan = Field(default_factory=SourceScan, alias="make-source-scan")
    day_mod: DayMod = Field(default_factory=DayMod, alias="day-mod")


class BasicConfig(BaseModel):
    model_config = _STRICT
    master_schedule: str = Field(
        default=toast.SAMPLE,
        description="'sample' (bundled), a file path, or the schedule's text inline.",
    )
    rules: Rules = Field(default_factory=Rules)
    calibration_targets: list[str] = Field(default_factory=lambda: ["uranus", "saturn"])

    @field_validator("calibration_targets")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        out = [t.lower() for t in v]
        for t in out:
            if t not in PLANETS:
                raise ValueError(f"unknown target '{t}'; known: {', '.join(PLANETS)}")
        return out


# --- building blocks ----------------------------------------------------------------------


def samples(a: float, b: float, step: float) -> list[float]:
    """a, a+step, … (before b), then b."""
    n = max(0, math.ceil((b - a) / step))
    out = [a + k * step for k in range(n)]
    out.append(b)
    return out


# Checks return how long (s) the answer is known to hold from t: -1 for "unsafe now".
Check = Callable[[float], float]


class Grid:
    """Sample times a, a+step, … (before b), then b — by index, without a list."""

    def __init__(self, a: float, b: float, step: float):
        self.a, self.b, self.step = a, b, step
        self.n = max(0, math.ceil((b - a) / step)) + 1

    def __getitem__(self, i: int) -> float:
        return self.b if i >= self.n - 1 else self.a + i * self.step

    def runs(self, spans: list[tuple[int, int]]) -> list[Interval]:
        """Index spans [i, j] as time intervals, dropping single samples."""
        return [(self[i], self[j]) for i, j in spans if j > i]


def safe_runs(a: float, b: float, step: float, n_buffer: int, check: Check) -> list[Interval]:
    """[a, b] sampled every `step` s; unsafe samples widened by `n_buffer` samples each side;
    the safe runs left, each from its first to its last sample time. Samples that `check`
    vouches for ahead of time are not evaluated again (same answer, less work)."""
    grid = Grid(a, b, step)
    n = grid.n
    bad: list[tuple[int, int]] = []  # merged index spans, widened
    i = 0
    while i < n:
        ahead = check(grid[i])
        if ahead < 0:
            lo, hi = max(0, i - n_buffer), min(n - 1, i + n_buffer)
            if bad and lo <= bad[-1][1] + 1:
                bad[-1] = (bad[-1][0], hi)
            else:
                bad.append((lo, hi))
            i += 1
        else:
            i += max(1, int(ahead // step))
    if not bad:
        return [(a, b)]
    spans, nxt = [], 0
    for lo, hi in bad:
        spans.append((nxt, lo - 1))
        nxt = hi + 1
    spans.append((nxt, n - 1))
    return grid.runs(spans)


def in_range_runs(
    track: Track, a: float, b: float, step: float, lo: float, hi: float
) -> list[Interval]:
    """Stretches of [a, b] in which the body's altitude is inside [lo, hi], sampled every
    `step` s from a; each from its first to its last sample inside."""
    grid = Grid(a, b, step)
    n = grid.n
    spans: list[tuple[int, int]] = []
    i = 0
    while i < n:
        alt = track.alt(grid[i])
        margin = min(alt - lo, hi - alt)  # > 0 inside, < 0 outside
        same = max(1, int(abs(margin) / ALT_RATE // step))
        if margin >= 0:
            last = min(n, i + same) - 1
            if spans and spans[-1][1] == i - 1:
                spans[-1] = (spans[-1][0], last)
            else:
                spans.append((i, last))
        i += same
    return grid.runs(spans)


def subtract(spans: list[Interval], holes: list[Interval]) -> list[Interval]:
    """The parts of `spans` outside every hole."""
    out = []
    holes = sorted(holes)
    for a, b in spans:
        cur = a
        for h0, h1 in holes:
            if h1 <= cur or h0 >= b:
                continue
            if h0 > cur:
                out.append((cur, h0))
            cur = max(cur, h1)
            if cur >= b:
                break
        if cur < b:
            out.append((cur, b))
    return out


def parts(a: float, b: float, preferred: float) -> list[Interval]:
    """[a, b] in equal parts of about `preferred` seconds."""
    n = max(1, round((b - a) / preferred))
    size = (b - a) / n
    return [(a + i * size, b if i == n - 1 else a + (i + 1) * size) for i in range(n)]


def source_block(
    target: str, track: Track, a: float, b: float, alt_range: tuple[float, float]
) -> Block:
    """A block following `target` over [a, b]: az from its min over the part (sampled each
    minute and at the ends), throw covering its drift, at its altitude at mid-part."""
    first = track.altaz(a)[1]
    lo = hi = 0.0
    for t in samples(a, b, 60.0):
        d = wrap180(track.altaz(t)[1] - first)
        lo, hi = min(lo, d), max(hi, d)
    alt = track.altaz((a + b) / 2)[0]
    alt = min(max(alt, alt_range[0]), alt_range[1])
    return Block(target, "calibration", a, b, (first + lo) % 360.0, alt, hi - lo)


def box_check(sun: Track, az: float, throw: float, alt: float, sa: SunAvoidance) -> Check:
    """The contract's test for a scan box: unsafe when |wrap180(az - az_sun)| - throw <=
    min_angle_az and |alt - alt_sun| <= min_angle_alt."""
    min_az, min_alt = sa.min_angle_az, sa.min_angle_alt

    def check(t: float) -> float:
        alt_s, az_s = sun.altaz(t)
        margin = abs(alt - alt_s) - min_alt
        if margin > 0:
            return margin / ALT_RATE
        return -1.0 if abs(wrap180(az - az_s)) - throw <= min_az else 0.0

    return check


def point_check(sun: Track, body: Track, sa: SunAvoidance) -> Check:
    """The same test on a source's own position (no throw)."""

    def check(t: float) -> float:
        alt_b, az_b = body.altaz(t)
        alt_s, az_s = sun.altaz(t)
        margin = abs(alt_b - alt_s) - sa.min_angle_alt
        if margin > 0:
            return margin / (2 * ALT_RATE)
        return -1.0 if abs(wrap180(az_b - az_s)) <= sa.min_angle_az else 0.0

    return check


def day_selected(t: float, dm: DayMod) -> bool:
    day = math.floor((t - dm.day_ref.timestamp()) / 86400)
    return day % dm.day_mod == dm.day


# --- the policy -----------------------------------------------------------------------------


@register
class Basic(Policy):
    name = "basic"
    Config = BasicConfig
    order = 1

    def generate(self, t0: float, t1: float, config: Any, ctx: Context) -> Outcome:
        cfg: BasicConfig = config
        if t1 <= t0:
            raise PolicyError("Invalid time window: t1 must be after t0")
        if t1 - t0 > MAX_WINDOW_S:
            raise PolicyError("Invalid time window: at most 31 days")
        if (t1 - t0) / cfg.rules.sun_avoidance.time_step > MAX_STEPS:
            raise PolicyError(f"Invalid time window: at most {MAX_STEPS:,} time steps")
        try:
            master = toast.load(cfg.master_schedule, ctx.schedule_dirs)
        except toast.ScheduleError as exc:
            raise PolicyError(str(exc)) from exc
        rules = cfg.rules
        sa = rules.sun_avoidance
        step, nbuf = sa.time_step, sa.n_buffer
        alt_range = rules.alt_range.alt_range
        min_dur = rules.calibration_min_duration.min_duration
        pad = 2 * step + 60
        sun = Track("sun", master.site, t0 - pad, t1 + pad)

        survey: list[Block] = []
        for scan in master.overlapping(t0, t1):
            a, b = max(scan.start, t0), min(scan.stop, t1)
            if b <= a or not day_selected(scan.start, rules.day_mod):
                continue
            if not alt_range[0] <= scan.el <= alt_range[1]:
                continue
            throw = scan.az_max - scan.az_min
            check = box_check(sun, scan.az_min, throw, scan.el, sa)
            for x, y in safe_runs(a, b, step, nbuf, check):
                survey.append(Block(scan.patch, "survey", x, y, scan.az_min, scan.el, throw))

        calibration: list[Block] = []
        for target in cfg.calibration_targets:
            track = Track(target, master.site, t0 - pad, t1 + pad)
            taken = [(c.t0, c.t1) for c in calibration]
            for a, b in in_range_runs(track, t0, t1, step, *alt_range):
                for x, y in safe_runs(a, b, step, nbuf, point_check(sun, track, sa)):
                    for p, q in subtract([(x, y)], taken):
                        if q - p < min_dur:
                            continue
                        for c0, c1 in parts(p, q, rules.make_source_scan.preferred_length):
                            blk = source_block(target, track, c0, c1, alt_range)
                            check = box_check(sun, blk.az, blk.throw, blk.alt, sa)
                            for u, v in safe_runs(c0, c1, step, nbuf, check):
                                calibration.append(_moved(blk, u, v))

        held = [(c.t0, c.t1) for c in calibration]
        blocks = list(calibration)
        last_end = -math.inf
        for s in sorted(survey, key=lambda b: b.t0):
            for x, y in subtract([(max(s.t0, last_end), s.t1)], held):
                blocks.append(_moved(s, x, y))
            last_end = max(last_end, s.t1)
        blocks = sorted((b for b in blocks if b.duration >= min_dur and b.duration > 0), key=_t0)
        constraints = Constraints(
            site=master.site,
            min_angle_az=sa.min_angle_az,
            min_angle_alt=sa.min_angle_alt,
            alt_range=alt_range,
            time_step=step,
        )
        return Outcome(blocks, sorunlib(blocks), constraints)


def _moved(b: Block, t0: float, t1: float) -> Block:
    return Block(b.name, b.kind, t0, t1, b.az, b.alt, b.throw)


def _t0(b: Block) -> float:
    return b.t0

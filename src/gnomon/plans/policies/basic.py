"""`basic`: survey scans from a TOAST master schedule and planet calibration scans, as the
original scheduler's `basic` policy made them.

1. Survey: the master schedule's scans that overlap [t0, t1] (touching is not overlapping),
   trimmed to it, each cut by sun avoidance (`gnomon.plans.avoidance`). Neither `day-mod` nor
   `alt-range` nor any minimum duration applies to them.
2. Calibration: `gnomon.plans.calibration` (`day-mod`, `calibration-min-duration`, `alt-range`
   and `make-source-scan` apply there).
3. Merge: each calibration scan, targets in sorted name order, carves its interval out of
   everything before it (so a later target wins over an earlier one); the result is sorted
   by start. Pieces of any length are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gnomon.plans import calibration, toast
from gnomon.plans.avoidance import Check, Limits, avoid, grid
from gnomon.plans.policy import Block, Constraints, Context, Draft, Policy, PolicyError, register
from gnomon.plans.script import sorunlib
from gnomon.plans.sky import PLANETS, US, Sky, wrap180

MAX_WINDOW_S = 31 * 86400
MAX_STEPS = 1_000_000
_STRICT = ConfigDict(extra="forbid")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SunAvoidance(BaseModel):
    """Sun avoidance for survey scans (their az/alt box) and calibration targets (their own
    position), sampled every `time_step` s; unsafe samples widened by `n_buffer`."""

    model_config = _STRICT
    min_angle_az: float = Field(default=6.0, ge=0, le=180)
    min_angle_alt: float = Field(default=6.0, ge=0, le=180)
    time_step: float = Field(default=10.0, ge=1, le=3600)
    n_buffer: int = Field(default=3, ge=0, le=1000)


class AltRange(BaseModel):
    """Calibration windows are cut to where the target's elevation is inside this range."""

    model_config = _STRICT
    alt_range: tuple[float, float] = (20.0, 90.0)

    @field_validator("alt_range")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not -90 <= v[0] <= v[1] <= 90:
            raise ValueError("needs [low, high] with -90 <= low <= high <= 90")
        return v


class MinDuration(BaseModel):
    """Observing windows shorter than this are dropped (calibration only)."""

    model_config = _STRICT
    min_duration: float = Field(default=300.0, ge=0, le=86400)


class SourceScan(BaseModel):
    """A calibration scan starts early enough to leave this much of its piece after it."""

    model_config = _STRICT
    preferred_length: float = Field(default=1800.0, ge=60, le=86400)


class DayMod(BaseModel):
    """Keep calibration windows starting on sidereal day d (counted from day_ref) with
    d mod day_mod == day."""

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
    calibration_targets: list[str] = Field(
        default_factory=lambda: ["uranus", "saturn"],
        description="Planets to calibrate on; taken in sorted name order.",
    )

    @field_validator("calibration_targets")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        out = [t.lower() for t in v]
        for t in out:
            if t not in PLANETS:
                raise ValueError(f"unknown target '{t}'; known: {', '.join(PLANETS)}")
        return out


# --- survey and merge ----------------------------------------------------------------------


def box_check(sun: Sky, az: float, throw: float, alt: float, limits: Limits) -> Check:
    """Sun avoidance for a scan box: unsafe when |wrap180(az - az_sun)| - throw <=
    min_angle_az and |alt - alt_sun| <= min_angle_alt."""

    def check(t: int) -> tuple[bool, float]:
        alt_s, az_s = sun.altaz(t * US)
        d_az, d_alt = abs(wrap180(az - az_s)) - throw, abs(alt - alt_s)
        safe = limits.verdict(d_az, d_alt)
        if safe is None:
            alt_s, az_s = sun.exact(t * US)
            d_az, d_alt = abs(wrap180(az - az_s)) - throw, abs(alt - alt_s)
            safe = d_az > limits.min_az or d_alt > limits.min_alt
        return safe, limits.holds(safe, d_az, d_alt, alt_s, 1)

    return check


def survey(
    master: toast.MasterSchedule, sun: Sky, t0: int, t1: int, sa: SunAvoidance
) -> list[Block]:
    """The master schedule's scans in [t0, t1] (microseconds), cut by sun avoidance: sampled
    every `time_step` s from the start, the end not sampled; a scan with no unsafe sample is
    kept whole, otherwise each safe run of samples is a piece from its first to its last
    sample (one sample: a piece of no length); a scan with no safe run is dropped."""
    step = round(sa.time_step * US)
    limits = Limits(sa.min_angle_az, sa.min_angle_alt, master.site.lat)
    out: list[Block] = []
    for scan in master.overlapping(t0 / US, t1 / US):
        a, b = max(round(scan.start * US), t0), min(round(scan.stop * US), t1)
        throw = abs(scan.az_max - scan.az_min)
        times = grid(a, b, step)
        safe = avoid(times, sa.n_buffer, box_check(sun, scan.az_min, throw, scan.el, limits))
        spans = [(a, b)] if safe is None else [(times[i] * US, times[j - 1] * US) for i, j in safe]
        for x, y in spans:
            out.append(Block(scan.patch, "survey", x / US, y / US, scan.az_min, scan.el, throw))
    return out


def merge(seq: list[Block], scans: Iterable[Block]) -> list[Block]:
    """Each scan in turn carves its interval out of the blocks before it (touching is not
    overlapping); sorted by start."""
    out = sorted(seq, key=_t0)
    for c in scans:
        hit = [(b.t0 - c.t1) * (b.t1 - c.t0) < 0 for b in out]
        if not any(hit):
            out = sorted([*out, c], key=_t0)
            continue
        parts: list[Block] = []
        for b, overlaps in zip(out, hit, strict=True):
            if not overlaps:
                parts.append(b)
                continue
            if c.t0 > b.t0:
                parts.append(_moved(b, b.t0, c.t0))
            parts.append(c)
            if c.t1 < b.t1:
                parts.append(_moved(b, c.t1, b.t1))
        out = sorted(dict.fromkeys(parts), key=_t0)
    return out


# --- the policy -----------------------------------------------------------------------------


@register
class Basic(Policy):
    name = "basic"
    Config = BasicConfig
    order = 1

    def generate(self, t0: float, t1: float, config: Any, ctx: Context) -> Draft:
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
        a, b = round(t0 * US), round(t1 * US)
        sun = Sky("sun", master.site)
        blocks = survey(master, sun, a, b, sa)
        dm = rules.day_mod
        cal_rules = calibration.Rules(
            limits=Limits(sa.min_angle_az, sa.min_angle_alt, master.site.lat),
            time_step_us=round(sa.time_step * US),
            n_buffer=sa.n_buffer,
            alt_range=rules.alt_range.alt_range,
            min_duration=rules.calibration_min_duration.min_duration,
            preferred_length=rules.make_source_scan.preferred_length,
            day=dm.day,
            day_mod=dm.day_mod,
            day_ref_us=(dm.day_ref - _EPOCH) // timedelta(microseconds=1),
        )
        found = calibration.scans(cfg.calibration_targets, master.site, sun, a, b, cal_rules)
        blocks = merge(
            blocks,
            (
                Block(s.name, "calibration", s.t0 / US, s.t1 / US, s.az, s.alt, s.throw)
                for s in found
            ),
        )
        constraints = Constraints(
            site=master.site,
            min_angle_az=sa.min_angle_az,
            min_angle_alt=sa.min_angle_alt,
            alt_range=rules.alt_range.alt_range,
            time_step=sa.time_step,
        )
        return Draft(blocks, sorunlib(blocks), constraints)


def _moved(b: Block, t0: float, t1: float) -> Block:
    return Block(b.name, b.kind, t0, t1, b.az, b.alt, b.throw)


def _t0(b: Block) -> float:
    return b.t0

"""`basic` on windows of the real master schedule: survey scans where the file puts them,
except where the sun or the window cuts them, calibration scans carving them, the config's
meaning, and the script's format."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

import pytest

from gnomon.plans import policy, toast
from gnomon.plans.policies.basic import merge
from gnomon.plans.policy import Block, Context, Draft, PolicyError
from gnomon.plans.sky import wrap180
from gnomon.plans.verify import verify
from tests.plans.helpers import pyephem_altaz, reference_survey, ts

YEAR = datetime(2023, 1, 1, tzinfo=UTC)
WINDOWS = [(YEAR + timedelta(days=d)).timestamp() for d in (2, 45, 102, 256, 324)]
EDGE_WINDOWS = [
    (ts("2023-01-01 00:40:00"), ts("2023-01-01 18:10:00")),
    (ts("2023-07-14 03:33:33"), ts("2023-07-14 09:00:01")),
]


def run(t0: float, t1: float, **config: object) -> Draft:
    p = policy.get("basic")
    return p.generate(t0, t1, p.config(config), Context())


def assert_same_geometry(b: Block, s: toast.Scan) -> None:
    assert b.name == s.patch
    assert (b.az, b.alt, b.throw) == (s.az_min, s.el, abs(s.az_max - s.az_min))


@pytest.mark.parametrize("t0", WINDOWS)
def test_survey_scans_come_out_where_the_file_puts_them(shared_schedule: str, t0: float) -> None:
    t1 = t0 + 86400
    out = run(t0, t1, master_schedule=shared_schedule, calibration_targets=[])
    want = reference_survey(shared_schedule, t0, t1)
    assert [(b.t0, b.t1) for b in out.blocks] == [(x, y) for _, x, y in want]
    for b, (scan, _, _) in zip(out.blocks, want, strict=True):
        assert_same_geometry(b, scan)
    assert verify(out.blocks, t0, t1, out.constraints)["ok"]


@pytest.mark.parametrize("t0", WINDOWS[:3])
def test_the_sun_cuts_survey_scans_as_the_original_did(shared_schedule: str, t0: float) -> None:
    """The file keeps its scans far from the sun (the default angles cut nothing in these
    windows); much wider ones cut them near twilight."""
    t1 = t0 + 86400
    rule = {"min_az": 120.0, "min_alt": 60.0, "step": 15.0, "n_buffer": 2}
    sa = {"min_angle_az": 120, "min_angle_alt": 60, "time_step": 15, "n_buffer": 2}
    config = {"calibration_targets": [], "rules": {"sun-avoidance": sa}}
    out = run(t0, t1, master_schedule=shared_schedule, **config)
    want = reference_survey(shared_schedule, t0, t1, **rule)
    assert [(b.name, b.t0, b.t1) for b in out.blocks] == [(s.patch, x, y) for s, x, y in want]
    planned = sum(
        min(s.stop, t1) - max(s.start, t0)
        for s in toast.load(shared_schedule).scans
        if s.stop > t0 and s.start < t1
    )
    assert sum(b.duration for b in out.blocks) < planned


@pytest.mark.parametrize(("t0", "t1"), EDGE_WINDOWS)
def test_the_window_trims_scans(shared_schedule: str, t0: float, t1: float) -> None:
    out = run(t0, t1, master_schedule=shared_schedule, calibration_targets=[])
    want = reference_survey(shared_schedule, t0, t1)
    assert [(b.t0, b.t1) for b in out.blocks] == [(x, y) for _, x, y in want]
    assert out.blocks[0].t0 == t0 and out.blocks[-1].t1 <= t1


def test_pieces_of_any_length_are_kept(shared_schedule: str) -> None:
    """A window that ends 2 minutes into a scan keeps those 2 minutes (no duration filter);
    one that starts 5 s before a scan's end keeps nothing of it (no sample)."""
    out = run(
        ts("2023-01-01 00:20:00"),
        ts("2023-01-01 00:24:00"),
        master_schedule=shared_schedule,
        calibration_targets=[],
    )
    assert [(b.t0, b.t1) for b in out.blocks] == [
        (ts("2023-01-01 00:22:00"), ts("2023-01-01 00:24:00"))
    ]
    out = run(
        ts("2023-01-01 01:09:25"),
        ts("2023-01-01 01:10:00"),
        master_schedule=shared_schedule,
        calibration_targets=[],
    )
    assert [(b.t0, b.t1) for b in out.blocks] == [
        (ts("2023-01-01 01:09:30"), ts("2023-01-01 01:10:00"))
    ]
    out = run(
        ts("2023-01-01 01:09:25"),
        ts("2023-01-01 01:09:30"),
        master_schedule=shared_schedule,
        calibration_targets=[],
    )
    assert out.blocks == []


@pytest.mark.parametrize("t0", WINDOWS[:3])
def test_calibration_scans_carve_the_survey(shared_schedule: str, t0: float) -> None:
    t1 = t0 + 86400
    out = run(t0, t1, master_schedule=shared_schedule)
    cal = [b for b in out.blocks if b.kind == "calibration"]
    survey = [b for b in out.blocks if b.kind == "survey"]
    assert cal and survey and {b.name for b in cal} <= {"uranus", "saturn"}
    assert [b.t0 for b in out.blocks] == sorted(b.t0 for b in out.blocks)
    # the survey is what the original rule gives, less the calibration scans' intervals
    want = []
    for scan, x, y in reference_survey(shared_schedule, t0, t1):
        parts = [(x, y)]
        for c in cal:
            parts = [part for a, b in parts for part in carve(a, b, c)]
        want += [(scan.patch, a, b) for a, b in parts]
    assert sorted((b.name, b.t0, b.t1) for b in survey) == sorted(want)
    # the verifier holds survey blocks to the sun rule; it only reports calibration scans
    report = verify(out.blocks, t0, t1, out.constraints)
    assert all(out.blocks[p["block"]].kind == "calibration" for p in report["problems"])


def carve(a: float, b: float, c: Block) -> list[tuple[float, float]]:
    """What is left of [a, b] when scan c takes its interval (touching is not overlapping)."""
    if not (a - c.t1) * (b - c.t0) < 0:
        return [(a, b)]
    return [p for p in ((a, c.t0), (c.t1, b)) if p[1] > p[0]]


def test_a_later_scan_carves_an_earlier_one() -> None:
    survey = [Block("s", "survey", 0, 100, 1, 50, 10), Block("z", "survey", 100, 100, 1, 50, 10)]
    first = Block("saturn", "calibration", 10, 40, 2, 30, 1)
    second = Block("uranus", "calibration", 30, 60, 3, 40, 1)
    got = merge(survey, [first, second])
    assert [(b.name, b.t0, b.t1) for b in got] == [
        ("s", 0, 10),
        ("saturn", 10, 30),
        ("uranus", 30, 60),
        ("s", 60, 100),
        ("z", 100, 100),  # touching is not overlapping
    ]
    assert merge([], [first]) == [first]
    assert merge([survey[0]], [Block("x", "calibration", 200, 210)])[-1].t0 == 200


def test_source_scans_follow_the_planet(shared_schedule: str) -> None:
    """A scan lasts while the planet drifts one degree in elevation, sits half a degree into
    the drift at the planet's azimuth half-way through it, and is 1/cos(alt) wide."""
    t0 = ts("2023-01-01 00:00")
    out = run(t0, t0 + 86400, master_schedule=shared_schedule, calibration_targets=["saturn"])
    site = toast.load(shared_schedule).site
    cal = [b for b in out.blocks if b.kind == "calibration"]
    assert len(cal) == 3
    for b in cal:
        start = pyephem_altaz("saturn", site, math.floor(b.t0))[0]
        end = pyephem_altaz("saturn", site, b.t1)[0]
        sign = 1 if end > start else -1
        assert abs(end - start) == pytest.approx(1.0, abs=5e-3)
        assert b.alt == pytest.approx(start + 0.5 * sign, abs=2e-3)
        assert b.throw == pytest.approx(1 / math.cos(math.radians(b.alt)), rel=1e-6)
        mid = pyephem_altaz("saturn", site, (b.t0 + b.t1) / 2)[1]
        assert abs(wrap180(mid - b.az)) < 0.05
        assert 200 < b.duration < 6000


def test_script_format() -> None:
    t0 = ts("2026-01-02 00:00")
    out = run(t0, t0 + 86400)
    text = out.commands
    assert text.startswith(
        "from sorunlib import *\nfrom nextline import disable_trace\n\n"
        "with disable_trace():\n    initialize(test_mode=True)\n\n"
        "smurf.uxm_setup()\nsmurf.iv_curve()\n\n"
    )
    assert text.endswith("smurf.bias_step()\n") and not text.endswith("\n\n")
    chunks = text[:-1].split("\n\n")[3:]
    assert len(chunks) == len(out.blocks) > 0
    pattern = re.compile(
        r"# (?P<name>\S+)\n"
        r"acu\.move_to\((?P<az>\d+\.\d\d), (?P<alt>\d+\.\d\d)\)\n"
        r"smurf\.bias_dets\(\)\n"
        r"wait_until\('(?P<start>[^']+)'\)\n"
        r"smurf\.bias_step\(\)\n"
        r"seq\.scan\(description='(?P=name)', stop_time='(?P<stop>[^']+)', "
        r"width=(?P<width>\d+\.\d\d)\)\n"
        r"smurf\.bias_step\(\)"
    )
    for chunk, b in zip(chunks, out.blocks, strict=True):
        got = pattern.fullmatch(chunk)
        assert got, chunk
        assert got["name"] == b.name
        assert got["az"] == f"{b.az:.2f}" and got["width"] == f"{b.throw:.2f}"
        assert got["start"].endswith("+00:00") and got["stop"].endswith("+00:00")
        assert datetime.fromisoformat(got["start"]).timestamp() == pytest.approx(b.t0)
        assert datetime.fromisoformat(got["stop"]).timestamp() == pytest.approx(b.t1)


def test_an_empty_plan_is_the_preamble_with_one_newline() -> None:
    t0 = ts("2020-01-01 00:00")  # before the sample schedule, no calibration
    out = run(t0, t0 + 3600, calibration_targets=[])
    assert out.blocks == []
    assert out.commands.endswith("smurf.iv_curve()\n") and not out.commands.endswith("\n\n")


def test_sample_schedule_is_the_default() -> None:
    t0 = ts("2026-01-03 00:00")
    out = run(t0, t0 + 86400)
    assert any(b.kind == "survey" for b in out.blocks)
    assert any(b.kind == "calibration" for b in out.blocks)


def test_rules_change_the_outcome() -> None:
    """`calibration-min-duration`, `day-mod` and `alt-range` act on calibration only."""
    t0 = ts("2026-01-03 00:00")
    base = run(t0, t0 + 86400)
    no_cal = run(t0, t0 + 86400, calibration_targets=[])
    assert all(b.kind == "survey" for b in no_cal.blocks)
    assert len(no_cal.blocks) != len(base.blocks)

    def survey_of(out: Draft) -> list[tuple[str, float, float]]:
        return [(b.name, b.t0, b.t1) for b in out.blocks if b.kind == "survey"]

    def cal_of(out: Draft) -> list[Block]:
        return [b for b in out.blocks if b.kind == "calibration"]

    long_min = run(t0, t0 + 86400, rules={"calibration-min-duration": {"min_duration": 86400}})
    assert not cal_of(long_min) and survey_of(long_min) == survey_of(no_cal)
    high = run(t0, t0 + 86400, rules={"alt-range": {"alt_range": [89, 90]}})
    assert not cal_of(high) and survey_of(high) == survey_of(no_cal)
    # day-mod counts sidereal days from day_ref; the two halves of day_mod 2 split the scans
    even = run(t0, t0 + 3 * 86400, rules={"day-mod": {"day_mod": 2}})
    odd = run(t0, t0 + 3 * 86400, rules={"day-mod": {"day_mod": 2, "day": 1}})
    every = run(t0, t0 + 3 * 86400)
    assert cal_of(even) and cal_of(odd)
    assert len(cal_of(even)) + len(cal_of(odd)) == len(cal_of(every))
    assert {(b.name, b.t0) for b in cal_of(even)}.isdisjoint((b.name, b.t0) for b in cal_of(odd))
    # a longer preferred length leaves less room for the random start: earlier scans
    short = run(t0, t0 + 86400, rules={"make-source-scan": {"preferred_length": 600}})
    assert [b.t0 for b in cal_of(short)] != [b.t0 for b in cal_of(base)]


def test_config_isolation_and_validation() -> None:
    p = policy.get("basic")
    before = p.defaults()
    cfg = p.config({"rules": {"sun-avoidance": {"min_angle_az": 30}}})
    assert cfg.rules.sun_avoidance.min_angle_az == 30
    assert cfg.rules.sun_avoidance.min_angle_alt == 6  # the other keys keep their defaults
    assert p.defaults() == before
    assert p.config(None).rules.sun_avoidance.min_angle_az == 6
    with pytest.raises(PolicyError, match=r"'rules\.sun-avoidance\.min_angel_az'"):
        p.config({"rules": {"sun-avoidance": {"min_angel_az": 3}}})
    with pytest.raises(PolicyError, match="'bogus'"):
        p.config({"bogus": 1})
    with pytest.raises(PolicyError, match="unknown target 'pluto'"):
        p.config({"calibration_targets": ["pluto"]})
    with pytest.raises(PolicyError, match="alt_range"):
        p.config({"rules": {"alt-range": {"alt_range": [60, 20]}}})
    with pytest.raises(PolicyError, match="t1 must be after t0"):
        run(100.0, 50.0)
    with pytest.raises(PolicyError, match="not found"):
        run(0.0, 3600.0, master_schedule="/nonexistent/schedule.txt")

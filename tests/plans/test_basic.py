"""`basic` on windows of the real master schedule: survey scans where the file puts them,
except where the sun or the window cuts them; the verifier passes; the script's format."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from gnomon.plans import policy, toast
from gnomon.plans.policy import Block, Context, PolicyError
from gnomon.plans.sky import ephem_altaz, wrap180
from gnomon.plans.verify import verify
from tests.plans.helpers import reference_safe_runs, ts

YEAR = datetime(2023, 1, 1, tzinfo=UTC)
# Days of 2023 on which the sun cuts survey scans, and windows that start and end mid-scan.
WINDOWS = [(YEAR + timedelta(days=d)).timestamp() for d in (2, 45, 102, 256, 324)]
EDGE_WINDOWS = [
    (ts("2023-01-01 00:40:00"), ts("2023-01-01 18:10:00")),
    (ts("2023-07-14 03:33:33"), ts("2023-07-14 09:00:01")),
]


def run(t0: float, t1: float, **config: object):
    p = policy.get("basic")
    out = p.generate(t0, t1, p.config(config), Context())
    return out


def expected_survey(path: str, t0: float, t1: float, min_duration: float = 300.0):
    m = toast.load(path)
    want = []
    for s in m.overlapping(t0, t1):
        a, b = max(s.start, t0), min(s.stop, t1)
        if b <= a:
            continue
        for x, y in reference_safe_runs(m.site, a, b, s.az_min, s.az_max - s.az_min, s.el):
            if y - x >= min_duration:
                want.append((s, x, y))
    return want


def assert_same_geometry(b: Block, s: toast.Scan) -> None:
    assert b.name == s.patch
    assert b.az == pytest.approx(s.az_min, abs=0.01)
    assert b.alt == pytest.approx(s.el, abs=0.01)
    assert b.throw == pytest.approx(s.az_max - s.az_min, abs=0.01)


@pytest.mark.parametrize("t0", WINDOWS)
def test_survey_scans_come_out_where_the_file_puts_them(shared_schedule: str, t0: float) -> None:
    t1 = t0 + 86400
    out = run(t0, t1, master_schedule=shared_schedule, calibration_targets=[])
    want = expected_survey(shared_schedule, t0, t1)
    assert len(out.blocks) == len(want)
    for b, (scan, x, y) in zip(out.blocks, want, strict=True):
        assert_same_geometry(b, scan)
        assert abs(b.t0 - x) <= 60 and abs(b.t1 - y) <= 60
    assert verify(out.blocks, t0, t1, out.constraints)["ok"]


def test_the_sun_does_cut_those_windows(shared_schedule: str) -> None:
    """The windows above are worth testing: on each, the sun takes some survey time."""
    m = toast.load(shared_schedule)
    for t0 in WINDOWS:
        t1 = t0 + 86400
        out = run(t0, t1, master_schedule=shared_schedule, calibration_targets=[])
        planned = sum(min(s.stop, t1) - max(s.start, t0) for s in m.overlapping(t0, t1))
        assert sum(b.duration for b in out.blocks) < planned - 30


@pytest.mark.parametrize(("t0", "t1"), EDGE_WINDOWS)
def test_the_window_trims_scans(shared_schedule: str, t0: float, t1: float) -> None:
    out = run(t0, t1, master_schedule=shared_schedule, calibration_targets=[])
    want = expected_survey(shared_schedule, t0, t1)
    assert [(round(b.t0), round(b.t1)) for b in out.blocks] == [
        (round(x), round(y)) for _, x, y in want
    ]
    assert out.blocks[0].t0 >= t0 and out.blocks[-1].t1 <= t1
    assert verify(out.blocks, t0, t1, out.constraints)["ok"]


@pytest.mark.parametrize("t0", WINDOWS[:3])
def test_calibration_wins_over_survey(shared_schedule: str, t0: float) -> None:
    t1 = t0 + 86400
    out = run(t0, t1, master_schedule=shared_schedule)
    cal = [b for b in out.blocks if b.kind == "calibration"]
    survey = [b for b in out.blocks if b.kind == "survey"]
    assert cal and survey
    assert {b.name for b in cal} <= {"uranus", "saturn"}
    m = toast.load(shared_schedule)
    for b in survey:  # every survey block is a piece of a master scan, same pointing
        (scan,) = [s for s in m.overlapping(b.t0, b.t1) if s.patch == b.name]
        assert_same_geometry(b, scan)
        assert b.t0 >= scan.start - 60 and b.t1 <= scan.stop + 60
    # and the survey is there wherever no calibration block or the sun took its place
    for scan, x, y in expected_survey(shared_schedule, t0, t1):
        free = [(x, y)]
        for c in cal:
            free = [
                part
                for a, b in free
                for part in ((a, min(b, c.t0)), (max(a, c.t1), b))
                if part[1] - part[0] > 0
            ]
        for a, b in free:
            if b - a < 300 + 120:
                continue
            mid = (a + b) / 2
            assert any(s.t0 <= mid <= s.t1 and s.name == scan.patch for s in survey)
    for c in cal:
        assert c.duration >= 300
        assert 20 <= c.alt <= 90
    report = verify(out.blocks, t0, t1, out.constraints)
    assert report["ok"], report["problems"]


def test_source_scans_follow_the_planet(shared_schedule: str) -> None:
    t0 = ts("2023-01-01 00:00")
    out = run(t0, t0 + 86400, master_schedule=shared_schedule, calibration_targets=["saturn"])
    m = toast.load(shared_schedule)
    cal = [b for b in out.blocks if b.kind == "calibration"]
    assert cal
    for b in cal:
        assert b.duration <= 1800 * 1.5 + 1
        for t in (b.t0, (b.t0 + b.t1) / 2, b.t1):
            alt, az = ephem_altaz("saturn", m.site, t)
            assert 20 - 0.01 <= alt <= 90
            assert -0.05 <= wrap180(az - b.az) <= b.throw + 0.05
        assert abs(ephem_altaz("saturn", m.site, (b.t0 + b.t1) / 2)[0] - b.alt) < 0.01


def test_script_format() -> None:
    t0 = ts("2026-01-02 00:00")
    out = run(t0, t0 + 86400)
    text = out.commands
    assert text.startswith(
        "from sorunlib import *\nfrom nextline import disable_trace\n\n"
        "with disable_trace():\n    initialize(test_mode=True)\n\n"
        "smurf.uxm_setup()\nsmurf.iv_curve()\n\n"
    )
    assert text.endswith("smurf.bias_step()\n\n")
    chunks = text.split("\n\n")[3:-1]
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


def test_sample_schedule_is_the_default() -> None:
    t0 = ts("2026-01-03 00:00")
    out = run(t0, t0 + 86400)
    assert any(b.kind == "survey" for b in out.blocks)
    assert verify(out.blocks, t0, t0 + 86400, out.constraints)["ok"]


def test_rules_change_the_outcome() -> None:
    t0 = ts("2026-01-03 00:00")
    base = run(t0, t0 + 86400)
    no_cal = run(t0, t0 + 86400, calibration_targets=[])
    assert all(b.kind == "survey" for b in no_cal.blocks)
    assert len(no_cal.blocks) != len(base.blocks)
    long_min = run(t0, t0 + 86400, rules={"calibration-min-duration": {"min_duration": 3000}})
    assert all(b.duration >= 3000 for b in long_min.blocks)
    every_other = run(t0, t0 + 86400, calibration_targets=[], rules={"day-mod": {"day_mod": 2}})
    other = run(t0, t0 + 86400, calibration_targets=[], rules={"day-mod": {"day_mod": 2, "day": 1}})
    even = {(b.name, b.t0) for b in every_other.blocks}
    odd = {(b.name, b.t0) for b in other.blocks}
    assert even and odd and not even & odd
    assert len(even) + len(odd) == len(no_cal.blocks)


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

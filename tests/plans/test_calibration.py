"""Calibration scans step by step, against the worked examples of the calibration contract
(../shared/compat/schedule-api-calibration.md, section 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gnomon.plans import policy, toast
from gnomon.plans.avoidance import Limits, avoid, grid
from gnomon.plans.calibration import (
    Piece,
    Rules,
    Track,
    daily_draw,
    first_draw,
    in_range,
    observing_window,
    passes,
    point_check,
)
from gnomon.plans.policy import Block, Context
from gnomon.plans.sky import US, Sky
from tests.plans.helpers import EPOCH, ts


def us(text: str) -> int:
    """Microseconds of `2023-01-01 00:40:38.505632` (UTC)."""
    return (datetime.fromisoformat(text).replace(tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)


def hms(t: int) -> str:
    return datetime.fromtimestamp(t // US, UTC).strftime("%m-%d %H:%M:%S")


def rules(site_lat: float) -> Rules:
    return Rules(
        limits=Limits(6.0, 6.0, site_lat),
        time_step_us=10 * US,
        n_buffer=3,
        alt_range=(20.0, 90.0),
        min_duration=300.0,
        preferred_length=1800.0,
        day=0,
        day_mod=1,
        day_ref_us=round(ts("2014-01-01") * US),
    )


@pytest.mark.parametrize(
    ("day", "index", "seed", "u"),
    [
        ((2023, 1, 1), 0, 71158470, 0.5315581032293439),
        ((2023, 1, 1), 1, 1205730024, 0.8493800493702891),
        ((2023, 10, 3), 0, 3502631374, 0.4726269920210354),
        ((2023, 10, 3), 1, 1465646901, 0.6808792296937384),
        ((2023, 5, 30), 0, 3341503209, 0.8120974368379452),
    ],
)
def test_daily_draw(day: tuple[int, int, int], index: int, seed: int, u: float) -> None:
    assert hash((day, index)) % 4294967295 == seed
    assert first_draw(seed) == u
    assert daily_draw(round(datetime(*day, 12, tzinfo=UTC).timestamp()) * US, index) == u


def test_passes(shared_schedule: str) -> None:
    site = toast.load(shared_schedule).site
    t0, t1 = us("2023-01-01 00:00:00"), us("2023-01-02 00:00:00")
    got = {name: passes(name, site, t0, t1) for name in ("saturn", "uranus")}
    assert got["saturn"] == [
        Piece(t0, us("2023-01-01 01:59:04.435186"), -1),
        Piece(us("2023-01-01 12:59:27.927164"), us("2023-01-01 19:27:29.094205"), 1),
        Piece(us("2023-01-01 19:27:29.094205"), t1, -1),
    ]
    assert got["uranus"] == [
        Piece(t0, us("2023-01-01 00:40:38.505632"), 1),
        Piece(us("2023-01-01 00:40:38.505632"), us("2023-01-01 06:14:17.034180"), -1),
        Piece(us("2023-01-01 19:02:59.424576"), t1, 1),
    ]


def windows(path: str, t0: str, t1: str) -> dict[str, list[tuple[str, str, list[tuple[str, str]]]]]:
    """Each target's observing windows and their stretches inside the altitude range."""
    site = toast.load(path).site
    a, b = us(t0), us(t1)
    r = rules(site.lat)
    sun = Sky("sun", site)
    out: dict[str, list[tuple[str, str, list[tuple[str, str]]]]] = {}
    for name in ("saturn", "uranus"):
        track = Track(Sky(name, site), a, b)
        check = point_check(track.sky, sun, r.limits)
        found = out.setdefault(name, [])
        for half in passes(name, site, a, b):
            times = grid(half.t0, half.t1, r.time_step_us)
            safe = avoid(times, r.n_buffer, check)
            assert safe is None  # the sun is nowhere near in these windows
            w = observing_window(track, half)
            if w is not None:
                stretches = [
                    (hms(w.ts[i] * US), hms(w.ts[j - 1] * US)) for i, j in in_range(w, r.alt_range)
                ]
                found.append((hms(w.t0), hms(w.t1), stretches))
    return out


def test_observing_windows_in_january(shared_schedule: str) -> None:
    got = windows(shared_schedule, "2023-01-01 00:00", "2023-01-02 00:00")
    assert got["saturn"] == [
        ("01-01 00:00:00", "01-01 01:53:00", [("01-01 00:00:00", "01-01 00:27:30")]),
        ("01-01 12:59:27", "01-01 19:09:57", [("01-01 14:30:57", "01-01 19:09:27")]),
        ("01-01 19:27:29", "01-01 23:54:59", [("01-01 19:27:29", "01-01 23:54:29")]),
    ]
    # uranus's first window is 240 s: calibration-min-duration drops it before alt-range
    assert got["uranus"] == [
        ("01-01 00:00:00", "01-01 00:04:00", [("01-01 00:00:00", "01-01 00:03:30")]),
        ("01-01 00:40:38", "01-01 06:08:08", [("01-01 00:40:38", "01-01 04:37:38")]),
        ("01-01 19:02:59", "01-01 23:43:59", [("01-01 20:39:29", "01-01 23:43:29")]),
    ]


def test_observing_windows_in_october(shared_schedule: str) -> None:
    got = windows(shared_schedule, "2023-10-03 12:00", "2023-10-04 12:00")
    assert [s for w in got["saturn"] for s in w[2]] == [
        ("10-03 21:04:19", "10-04 01:36:49"),
        ("10-04 01:57:05", "10-04 06:50:05"),
    ]
    # the setting window 12:00-12:29 is below 20 degrees throughout
    assert got["uranus"][0][:2] == ("10-03 12:00:00", "10-03 12:29:00")
    assert [s for w in got["uranus"] for s in w[2]] == [
        ("10-04 03:09:52", "10-04 06:23:22"),
        ("10-04 07:01:12", "10-04 10:52:42"),
    ]


def plan(path: str, t0: str, t1: str, **config: object) -> list[Block]:
    p = policy.get("basic")
    return p.generate(
        ts(t0), ts(t1), p.config({"master_schedule": path, **config}), Context()
    ).blocks


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def test_scans_in_january(shared_schedule: str) -> None:
    cal = [b for b in plan(shared_schedule, "2023-01-01", "2023-01-02") if b.kind == "calibration"]
    want = [
        ("saturn", "00:00:00", "00:04:22.008539", 263.5960, 25.8712, 1.1114),
        ("uranus", "03:36:27.300213", "03:41:55.566433", 307.5657, 31.3981, 1.1716),
        ("saturn", "16:43:02.531319", "16:47:23.305551", 85.9784, 50.9275, 1.5865),
        ("saturn", "21:33:27.756228", "21:37:50.812350", 278.6036, 58.7477, 1.9275),
        ("uranus", "22:50:17.271656", "22:57:48.906714", 35.1771, 43.6068, 1.3810),
    ]
    assert len(cal) == len(want)
    for b, (name, t0, t1, az, alt, width) in zip(cal, want, strict=True):
        assert b.name == name
        assert iso(b.t0) == f"2023-01-01T{t0}+00:00" and iso(b.t1) == f"2023-01-01T{t1}+00:00"
        assert (round(b.az, 4), round(b.alt, 4), round(b.throw, 4)) == (az, alt, width)


def test_scans_in_october(shared_schedule: str) -> None:
    """Three scans split the `south` scan they land in; the last falls in a gap."""
    blocks = plan(shared_schedule, "2023-10-03 12:00", "2023-10-04 12:00")
    starts = [iso(b.t0) for b in blocks if b.kind == "calibration"]
    assert starts == [
        "2023-10-03T22:58:55.722734+00:00",
        "2023-10-04T04:01:23.053934+00:00",
        "2023-10-04T05:01:11.425243+00:00",
        "2023-10-04T09:18:23.829887+00:00",
    ]
    for i, b in enumerate(blocks):
        if b.kind != "calibration":
            continue
        before, after = blocks[i - 1], blocks[i + 1]
        if iso(b.t0).startswith("2023-10-04T09"):
            assert iso(before.t1) == "2023-10-04T09:18:00+00:00" and before.t1 < b.t0
        else:
            assert before.name == after.name == "south"
            assert before.t1 == b.t0 and after.t0 == b.t1


def test_a_short_survey_piece_at_the_end_is_kept(shared_schedule: str) -> None:
    last = plan(shared_schedule, "2023-10-03 12:00", "2023-10-04 12:00")[-1]
    assert last.name == "DEC-050..-030_RA+081.290..+092.903"
    assert (iso(last.t0), iso(last.t1)) == (
        "2023-10-04T11:58:00+00:00",
        "2023-10-04T12:00:00+00:00",
    )


def test_targets_are_taken_in_sorted_order(shared_schedule: str) -> None:
    """Order and repeats in the config change nothing; the set of targets does (the draw
    goes by the target's place among them)."""
    window = ("2023-01-01", "2023-01-02")
    a = plan(shared_schedule, *window, calibration_targets=["uranus", "saturn"])
    assert plan(shared_schedule, *window, calibration_targets=["saturn", "uranus", "saturn"]) == a
    alone = plan(shared_schedule, *window, calibration_targets=["uranus"])
    uranus = [b for b in a if b.name == "uranus"]
    uranus_alone = [b for b in alone if b.name == "uranus"]
    assert len(uranus) == len(uranus_alone) == 2
    assert all(x.t0 != y.t0 for x, y in zip(uranus, uranus_alone, strict=True))
    assert not any(b.name == "saturn" for b in alone)


def test_windows_shorter_than_four_samples_do_not_fail(shared_schedule: str) -> None:
    """In a 6-minute window saturn's observing window has under four samples: the original
    fails there (its cubic spline needs four points); gnomon fits what there is."""
    got = plan(
        shared_schedule,
        "2023-01-01 00:00",
        "2023-01-01 00:06",
        calibration_targets=["saturn"],
        rules={"calibration-min-duration": {"min_duration": 0}},
    )
    assert [b.name for b in got] == ["saturn"]
    assert got[0].t1 - got[0].t0 == pytest.approx(262.0085, abs=1e-3)

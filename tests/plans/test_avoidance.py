"""The original's sun-avoidance rule on a sample grid, and the look-ahead that skips samples."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gnomon.plans import toast
from gnomon.plans.avoidance import Check, Limits, avoid, grid, runs
from gnomon.plans.calibration import point_check
from gnomon.plans.policies.basic import box_check
from gnomon.plans.sky import US, Sky
from tests.plans.helpers import ts


def unsafe_at(bad: set[int]) -> Check:
    return lambda t: (t not in bad, 0.0)


def test_grid_leaves_the_end_out() -> None:
    assert grid(0, 30 * US, 10 * US) == [0, 10, 20]
    assert grid(5 * US, 35 * US, 10 * US) == [5, 15, 25]
    assert grid(5 * US, 34 * US, 10 * US) == [5, 15]
    assert grid(US // 2, 31 * US, 10 * US) == [0, 10, 20]  # whole seconds, truncated
    assert grid(0, 9 * US, 10 * US) == []


def test_runs() -> None:
    assert runs([]) == []
    assert runs([False, True, True, False, True]) == [(1, 3), (4, 5)]


def test_avoid() -> None:
    times = list(range(0, 200, 10))  # 20 samples
    assert avoid(times, 3, unsafe_at(set())) is None  # all safe: the block stays whole
    assert avoid([], 3, unsafe_at(set())) == []  # no sample: dropped
    assert avoid(times, 3, unsafe_at(set(times))) == []
    assert avoid(times, 3, unsafe_at({50})) == [(0, 2), (9, 20)]
    assert avoid(times, 3, unsafe_at({0})) == [(4, 20)]
    # one safe sample between two widened runs: a piece of no length
    assert avoid(times, 3, unsafe_at({30, 110})) == [(7, 8), (15, 20)]
    assert avoid(times, 0, unsafe_at({30, 40})) == [(0, 3), (5, 20)]


def test_a_verdict_that_holds_skips_samples() -> None:
    calls: list[int] = []

    def check(t: int) -> tuple[bool, float]:  # unsafe in [100, 130), and says how long
        calls.append(t)
        if t < 100:
            return True, 99.0 - t
        return (False, 129.0 - t) if t < 130 else (True, 1e9)

    times = list(range(0, 200, 10))
    assert avoid(times, 1, check) == [(0, 9), (14, 20)]
    assert calls == [0, 100, 130]


def no_lookahead(check: Check) -> Check:
    def each(t: int) -> tuple[bool, float]:
        return check(t)[0], 0.0

    return each


@pytest.mark.parametrize("angles", [(6.0, 6.0), (25.0, 25.0), (60.0, 10.0)])
def test_looking_ahead_changes_nothing(shared_schedule: str, angles: tuple[float, float]) -> None:
    """The look-ahead only skips samples whose verdict is certain: survey scans and planet
    passes over a week come out the same with every sample checked."""
    m = toast.load(shared_schedule)
    sun = Sky("sun", m.site)
    limits = Limits(*angles, m.site.lat)
    step = 10 * US
    cases: list[tuple[list[int], Callable[[], Check]]] = []
    t0 = round(ts("2023-05-01") * US)
    for scan in m.overlapping(t0 / US, t0 / US + 7 * 86400):
        times = grid(round(scan.start * US), round(scan.stop * US), step)
        throw = scan.az_max - scan.az_min

        def box(s: toast.Scan = scan, w: float = throw) -> Check:
            return box_check(sun, s.az_min, w, s.el, limits)

        cases.append((times, box))
    for body in ("saturn", "venus"):
        planet = Sky(body, m.site)
        times = grid(t0, t0 + 7 * 86400 * US, step)
        cases.append((times, lambda p=planet: point_check(p, sun, limits)))
    cut = 0
    for times, make in cases:
        fast = avoid(times, 3, make())
        assert fast == avoid(times, 3, no_lookahead(make()))
        cut += fast is not None
    assert cut or angles == (6.0, 6.0)  # with wider angles the sun does take something

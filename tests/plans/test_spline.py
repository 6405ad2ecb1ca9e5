import math
import random

import pytest

from gnomon.plans.spline import WINDOW, Spline, window


def test_reproduces_cubics_and_extrapolates_them() -> None:
    """A not-a-knot spline through samples of a cubic is that cubic, inside and out."""
    rng = random.Random(1)
    xs = sorted(rng.uniform(0, 10) for _ in range(12))

    def f(x: float) -> float:
        return 0.3 * x**3 - 2 * x**2 + x - 5

    s = Spline(xs, [f(x) for x in xs])
    for x in [rng.uniform(-2, 12) for _ in range(50)]:
        assert s(x) == pytest.approx(f(x), abs=1e-9)


def test_not_a_knot() -> None:
    """The third derivative is continuous at the second and the last-but-one point."""
    xs = [0.0, 1.0, 2.5, 3.0, 4.5, 6.0]
    s = Spline(xs, [math.sin(x) for x in xs])
    h = 1e-2

    def third(x: float) -> float:
        return (s(x + 2 * h) - 2 * s(x + h) + 2 * s(x - h) - s(x - 2 * h)) / (2 * h**3)

    for knot in (xs[1], xs[-2]):
        assert third(knot - 0.3) == pytest.approx(third(knot + 0.3), rel=1e-6)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_few_points_give_the_polynomial_through_them(n: int) -> None:
    xs, ys = [1.0, 2.0, 4.0][:n], [3.0, 5.0, 4.0][:n]
    s = Spline(xs, ys)
    for x, y in zip(xs, ys, strict=True):
        assert s(x) == pytest.approx(y)
    if n == 2:
        assert s(3.0) == pytest.approx(7.0)
    if n == 3:  # the parabola through the three points
        assert s(3.0) == pytest.approx(16.0 / 3.0)


def test_a_window_matches_the_whole() -> None:
    """Inside a window of the data, WINDOW points in from its edges, a spline through the
    window matches the spline through everything (to a few parts in a million of the
    data's noise)."""
    rng = random.Random(2)
    xs = [30.0 * i for i in range(300)]
    ys = [math.sin(x / 4000) + rng.uniform(-1e-3, 1e-3) for x in xs]
    whole = Spline(xs, ys)
    for i in (5, 150, 290):
        a, b = window(len(xs), i, i + 1)
        part = Spline(xs[a:b], ys[a:b])
        x = xs[i] + 13.0
        assert part(x) == pytest.approx(whole(x), abs=1e-3 * 5e-6)
    assert window(300, 150, 151) == (150 - WINDOW, 152 + WINDOW)

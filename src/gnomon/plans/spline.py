"""Cubic interpolating splines with not-a-knot ends (scipy's `interp1d(kind='cubic')`).

Outside the data the end pieces extend (extrapolation). Fewer than four points give the
polynomial through them (scipy refuses those). A spline barely depends on far-away data (an
influence that shrinks by about 0.27 per point), so a spline through a window of the data
matches the spline through all of it, `WINDOW` points in from any edge of the window that is
not an edge of the data, to a few parts in a million of the data's roughness.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

# Points kept on each side of where a windowed spline is evaluated (0.27**10 < 2e-6).
WINDOW = 10


class Spline:
    """The not-a-knot cubic spline through (xs, ys); xs strictly increasing."""

    __slots__ = ("_m", "_x", "_y")

    def __init__(self, xs: Sequence[float], ys: Sequence[float]):
        if len(xs) != len(ys) or not xs:
            raise ValueError("need as many ys as xs, and at least one point")
        self._x, self._y = list(xs), list(ys)
        self._m = _second_derivatives(self._x, self._y)

    def __call__(self, x: float) -> float:
        xs, ys, m = self._x, self._y, self._m
        n = len(xs)
        if n == 1:
            return ys[0]
        i = min(max(bisect.bisect_right(xs, x) - 1, 0), n - 2)
        x0, x1 = xs[i], xs[i + 1]
        h = x1 - x0
        a, b = x1 - x, x - x0
        return (
            (m[i] * a * a * a + m[i + 1] * b * b * b) / (6.0 * h)
            + (ys[i] - m[i] * h * h / 6.0) * a / h
            + (ys[i + 1] - m[i + 1] * h * h / 6.0) * b / h
        )


def _second_derivatives(xs: list[float], ys: list[float]) -> list[float]:
    n = len(xs)
    if n <= 2:
        return [0.0] * n
    h = [xs[i + 1] - xs[i] for i in range(n - 1)]
    d = [(ys[i + 1] - ys[i]) / h[i] for i in range(n - 1)]
    if n == 3:  # the parabola through three points
        c = 2.0 * (d[1] - d[0]) / (xs[2] - xs[0])
        return [c, c, c]
    # Unknowns M1 .. M_{n-2}; M0 and M_{n-1} come from the not-a-knot conditions.
    size = n - 2
    sub = [0.0] * size
    dia = [0.0] * size
    sup = [0.0] * size
    rhs = [0.0] * size
    for r in range(size):
        i = r + 1
        sub[r], dia[r], sup[r] = h[i - 1], 2.0 * (h[i - 1] + h[i]), h[i]
        rhs[r] = 6.0 * (d[i] - d[i - 1])
    h0, h1 = h[0], h[1]
    dia[0] = (h0 + h1) * (h0 + 2.0 * h1) / h1
    sup[0] = (h1 - h0) * (h1 + h0) / h1
    hp, hl = h[n - 3], h[n - 2]
    sub[-1] = (hp - hl) * (hp + hl) / hp
    dia[-1] = (hp + hl) * (2.0 * hp + hl) / hp
    for r in range(1, size):  # Thomas algorithm
        w = sub[r] / dia[r - 1]
        dia[r] -= w * sup[r - 1]
        rhs[r] -= w * rhs[r - 1]
    m = [0.0] * n
    m[size] = rhs[-1] / dia[-1]
    for r in range(size - 2, -1, -1):
        m[r + 1] = (rhs[r] - sup[r] * m[r + 2]) / dia[r]
    m[0] = ((h0 + h1) * m[1] - h0 * m[2]) / h1
    m[n - 1] = ((hp + hl) * m[n - 2] - hl * m[n - 3]) / hp
    return m


def window(n: int, lo: int, hi: int) -> tuple[int, int]:
    """Index range [a, b) of n points to fit so that evaluating between points lo and hi
    matches the spline through all n points."""
    return max(0, lo - WINDOW), min(n, hi + WINDOW + 1)

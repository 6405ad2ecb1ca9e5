"""Differential property test: gnomon's cron expressions against a brute-force oracle.

Random expressions of the whole dialect (lists, ranges that may wrap, steps, names, ``?``,
``L``, ``L-n``, ``LW``, ``nW``, ``d#n``, ``dL``/``Ld``, 5 and 6 fields) and random start times.
In UTC a wall time is its instant, so `CronTrigger(expr, "UTC")` exercises the expression layer
alone; the oracle (tests/cron/oracle.py) tests every candidate time directly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gnomon.cron import CronTrigger, TriggerError, upcoming
from tests.cron.oracle import MONTHS, WEEKDAYS, Oracle

HORIZON_DAYS = 6 * 366
SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


def _cased(names: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(names).flatmap(lambda n: st.sampled_from([n, n.lower(), n.capitalize()]))


def _values(low: int, high: int, names: list[str] | None = None) -> st.SearchStrategy[str]:
    numbers = st.integers(low, high).map(str)
    return st.one_of(numbers, _cased(names)) if names else numbers


def _items(
    low: int, high: int, names: list[str] | None = None, *, star: bool = True
) -> st.SearchStrategy[str]:
    value = _values(low, high, names)
    step = st.integers(1, high - low + 3).map(str)
    plain = [
        value,
        st.tuples(value, value).map("-".join),
        st.tuples(value, value, step).map(lambda t: f"{t[0]}-{t[1]}/{t[2]}"),
        st.tuples(value, step).map("/".join),
    ]
    if star:
        plain += [st.just("*"), step.map(lambda s: f"*/{s}")]
    return st.one_of(*plain)


def _field(item: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.lists(item, min_size=1, max_size=3).map(",".join)


_dom_special = st.one_of(
    st.just("L"),
    st.just("LW"),
    st.integers(0, 30).map(lambda n: f"L-{n}"),
    st.integers(1, 31).map(lambda d: f"{d}W"),
    st.integers(1, 31).map(lambda d: f"W{d}"),
    st.integers(1, 31).map(lambda d: f"{d}-L"),
)
_weekday = _values(0, 7, WEEKDAYS)
_dow_special = st.one_of(
    st.tuples(_weekday, st.integers(1, 5)).map(lambda t: f"{t[0]}#{t[1]}"),
    st.tuples(_weekday, _weekday, st.integers(1, 5)).map(lambda t: f"{t[0]}-{t[1]}#{t[2]}"),
    st.integers(0, 7).map(lambda d: f"{d}L"),
    st.integers(0, 7).map(lambda d: f"L{d}"),
)
_dom = st.one_of(
    st.just("?"),
    _field(_items(1, 31)),
    _field(st.one_of(_items(1, 31, star=False), _dom_special)),
)
_dow = st.one_of(
    st.just("?"),
    _field(_items(0, 7, WEEKDAYS)),
    _field(st.one_of(_items(0, 7, WEEKDAYS, star=False), _dow_special)),
)
_seconds = st.one_of(st.just(None), _field(_items(0, 59)))
expressions = st.tuples(
    _seconds,
    _field(_items(0, 59)),
    _field(_items(0, 23)),
    _dom,
    st.one_of(st.just("*"), _field(_items(1, 12, MONTHS)), _values(1, 12, MONTHS)),
    _dow,
).map(lambda t: " ".join(f for f in t if f is not None))
starts = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


def _never_fires(oracle: Oracle, start: datetime) -> bool:
    day = start.date()
    for _ in range(30 * 366):
        if oracle.day_matches(day):
            return False
        day += timedelta(days=1)
    return True


@SETTINGS
@given(expr=expressions, start=starts)
@example(expr="0 0 * * 1/2", start=datetime(2026, 1, 1))
@example(expr="0 0 * * 7/2", start=datetime(2026, 1, 1))
@example(expr="0 0 */2 * MON", start=datetime(2026, 1, 1))
@example(expr="0 0 1 * MON#1", start=datetime(2026, 1, 1))
@example(expr="0 0 15W * MON", start=datetime(2026, 1, 1))
@example(expr="0 9 * * MON-MON", start=datetime(2026, 1, 1))
@example(expr="* * 5-1 * *", start=datetime(2026, 1, 1))
@example(expr="0 0 31 2-2 *", start=datetime(2026, 1, 1))
@example(expr="0 0 */100 * MON#4", start=datetime(2026, 1, 1))
def test_next_fires_match_the_oracle(expr: str, start: datetime) -> None:
    oracle = Oracle.parse(expr)
    try:
        trigger = CronTrigger(expr, "UTC")
    except TriggerError as exc:
        assert "can never fire" in str(exc), (expr, str(exc))
        assert _never_fires(oracle, start), expr
        return
    got = upcoming(trigger, start.replace(tzinfo=UTC), 3)
    current: datetime | None = start
    for i in range(3):
        assert current is not None
        expected = oracle.next_after(current, HORIZON_DAYS)
        if expected is None:  # nothing within the horizon: gnomon's next must lie beyond it
            assert i == len(got) or got[i].replace(tzinfo=None) > current + timedelta(
                days=HORIZON_DAYS
            ), (expr, current)
            return
        assert got[i].replace(tzinfo=None) == expected, (expr, current)
        current = expected


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
@settings(SETTINGS, max_examples=150)
@given(expr=expressions, start=starts)
def test_zone_results_are_matching_wall_times(zone: str, expr: str, start: datetime) -> None:
    """Away from DST transitions, each fire instant is a matching wall time in the zone."""
    try:
        trigger = CronTrigger(expr, zone)
    except TriggerError:
        return
    oracle = Oracle.parse(expr)
    after = start.replace(tzinfo=UTC)
    for instant in upcoming(trigger, after, 3):
        local = instant.astimezone(trigger.zone)
        wall = local.replace(tzinfo=None)
        shifted = (
            local.utcoffset() != (instant - timedelta(hours=3)).astimezone(trigger.zone).utcoffset()
        )
        if not shifted:  # no transition in the 3 hours before: the wall time itself matched
            assert oracle.next_after(wall - timedelta(seconds=1), 1) == wall, (expr, instant)

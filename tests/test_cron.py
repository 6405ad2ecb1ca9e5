"""Tests for gnomon.cron: parsing, validation, triggers and DST behaviour at real transitions."""

from __future__ import annotations

import bisect
import itertools
import pickle
import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gnomon.cron import (
    COUNT_CAP,
    AtTrigger,
    CronTrigger,
    IntervalTrigger,
    TriggerError,
    make_trigger,
    parse_at,
    parse_interval,
    slots_between,
    upcoming,
    validate_cron,
    validate_cron5,
    validate_timezone,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expr: str, tz: str, after: datetime, n: int) -> list[datetime]:
    return upcoming(CronTrigger(expr, tz), after, n)


# --------------------------------------------------------------------------------------------
# validate_timezone
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_validate_timezone_ok(name: str) -> None:
    assert validate_timezone(name) == ZoneInfo(name)


@pytest.mark.parametrize("name", ["Foo/Bar", "", "   ", "../etc/passwd", "/etc/localtime", "Mars"])
def test_validate_timezone_rejects(name: str) -> None:
    with pytest.raises(TriggerError) as ei:
        validate_timezone(name)
    assert ei.value.field == "timezone"


def test_validate_timezone_message() -> None:
    with pytest.raises(TriggerError, match=r"unknown time zone 'Foo/Bar'"):
        validate_timezone("Foo/Bar")


def test_trigger_error_is_value_error_and_pickles() -> None:
    err = TriggerError("cron", "boom")
    assert isinstance(err, ValueError)
    assert str(err) == "boom"
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.field, str(clone)) == ("cron", "boom")


# --------------------------------------------------------------------------------------------
# parse_interval
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("2d", 172800),
        ("1h30m", 5400),
        ("1d2h3m4s", 93784),
        ("1h 30m", 5400),
        ("90", 90),
        (" 45 ", 45),
        ("1H", 3600),
        ("1s", 1),
    ],
)
def test_parse_interval(text: str, seconds: int) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize(
    "text", ["", " ", "0", "0s", "0h0m", "-5m", "1.5h", "5x", "m", "30m1h", "1 h", "abc", "٣"]
)
def test_parse_interval_rejects(text: str) -> None:
    with pytest.raises(TriggerError) as ei:
        parse_interval(text)
    assert ei.value.field == "every"


def test_parse_interval_rejects_huge_and_non_string() -> None:
    with pytest.raises(TriggerError):
        parse_interval("9" * 5000)
    with pytest.raises(TriggerError):
        parse_interval("999999999999999d")
    with pytest.raises(TriggerError):
        parse_interval(30)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# parse_at
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-29T02:30:00Z", utc(2026, 3, 29, 2, 30)),
        ("2026-03-29t02:30:00z", utc(2026, 3, 29, 2, 30)),
        ("2026-03-29 02:30:00+02:00", utc(2026, 3, 29, 0, 30)),
        ("2026-03-29T02:30:00-05:30", utc(2026, 3, 29, 8, 0)),
        ("2026-03-29T02:30:00.123456789Z", utc(2026, 3, 29, 2, 30, 0, 123456)),
        ("2026-03-29T02:30Z", utc(2026, 3, 29, 2, 30)),
    ],
)
def test_parse_at(text: str, expected: datetime) -> None:
    got = parse_at(text)
    assert got == expected
    assert got.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-29T02:30:00",  # naive
        "2026-03-29",
        "2026-02-30T00:00:00Z",
        "2026-03-29T24:00:00Z",
        "2026-03-29T02:30:60Z",
        "2026-03-29T02:30:00+25:00",
        "yesterday",
        "",
    ],
)
def test_parse_at_rejects(text: str) -> None:
    with pytest.raises(TriggerError) as ei:
        parse_at(text)
    assert ei.value.field == "at"


def test_parse_at_naive_message() -> None:
    with pytest.raises(TriggerError, match="offset"):
        parse_at("2026-03-29T02:30:00")


def test_parse_at_datetime() -> None:
    berlin = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo(BERLIN))
    assert parse_at(berlin) == utc(2026, 7, 1, 10, 0)
    assert parse_at(berlin).tzinfo is UTC
    with pytest.raises(TriggerError) as ei:
        parse_at(datetime(2026, 7, 1, 12, 0))
    assert ei.value.field == "at"
    with pytest.raises(TriggerError):
        parse_at(12345)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# validate_cron
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "normalized"),
    [
        ("*/5 * * * *", "*/5 * * * *"),
        ("  0   9\t* *  MON-FRI ", "0 9 * * MON-FRI"),
        ("*/10 * * * * *", "*/10 * * * * *"),
        ("0 0 12 ? * MON", "0 0 12 ? * MON"),
        ("0 0 12 * * ?", "0 0 12 * * ?"),
        ("@daily", "@daily"),
        ("@Hourly", "@hourly"),
        ("0 0 1 JAN *", "0 0 1 JAN *"),
        ("0 0 L * *", "0 0 L * *"),
        ("0 0 * * 5#2", "0 0 * * 5#2"),
        ("0 0 1,15 * MON#2", "0 0 1,15 * MON#2"),
        ("0 0 1 * L5", "0 0 1 * L5"),
        ("0 0 L-3,LW * 5L", "0 0 L-3,LW * 5L"),
        ("0 0 15W,W1 * *", "0 0 15W,W1 * *"),
        ("0 0 * * 5-1", "0 0 * * 5-1"),
    ],
)
def test_validate_cron_ok(expr: str, normalized: str) -> None:
    assert validate_cron(expr) == normalized


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("1 2 3 4 5 6 7", "expected 5 or 6 fields, got 7"),
        ("* * * *", "expected 5 or 6 fields, got 4"),
        ("", "expected 5 or 6 fields, got 0"),
        ("61 * * * *", "minute"),
        ("* 24 * * *", "hour"),
        ("* * 32 * *", "day-of-month"),
        ("* * * 13 *", "month"),
        ("* * * * 8", "day-of-week"),
        ("* * * FOO *", "month"),
        ("* * * * abc", "day-of-week"),
        ("60 * * * * *", "second"),
        ("*/0 * * * *", "step"),
        ("5-70 * * * *", "minute"),
        ("? * * * *", "'?'"),
        ("* * * * 1#6", "day-of-week"),
        ("H * * * *", "H"),
        ("R * * * *", "minute"),
        ("hello world", "expected 5 or 6 fields"),
        ("@reboot", "@reboot"),
        ("@fortnightly", "unknown macro"),
        ("@daily 0", "on its own"),
        ("0 0 30 2 *", "never"),
        ("0 0 31 4,6,9,11 *", "never"),
        ("? * * * * *", "second"),
        ("0\u00a00 * * *", "non-ASCII"),
    ],
)
def test_validate_cron_rejects(expr: str, fragment: str) -> None:
    with pytest.raises(TriggerError) as ei:
        validate_cron(expr)
    assert ei.value.field == "cron"
    assert fragment in str(ei.value)


def test_validate_cron_message_names_field_and_value() -> None:
    with pytest.raises(TriggerError) as ei:
        validate_cron("61 * * * *")
    assert "minute" in str(ei.value) and "'61'" in str(ei.value)


def test_validate_cron_impossible_date_is_fast() -> None:
    start = time.perf_counter()
    for expr in ("0 0 30 2 *", "0 0 31 2 *", "* * * 30 2 *"):
        with pytest.raises(TriggerError, match="never"):
            validate_cron(expr)
    assert time.perf_counter() - start < 2.0


def test_validate_cron_non_string() -> None:
    with pytest.raises(TriggerError) as ei:
        validate_cron(5)  # type: ignore[arg-type]
    assert ei.value.field == "cron"


def test_leap_day_is_possible() -> None:
    assert validate_cron("0 0 29 2 *") == "0 0 29 2 *"
    assert fires("0 0 29 2 *", "UTC", utc(2026, 1, 1), 2) == [utc(2028, 2, 29), utc(2032, 2, 29)]


# --------------------------------------------------------------------------------------------
# CronTrigger basics (UTC)
# --------------------------------------------------------------------------------------------


def test_five_field() -> None:
    got = fires("*/15 9 * * *", "UTC", utc(2026, 5, 4, 9, 20), 4)
    assert got == [
        utc(2026, 5, 4, 9, 30),
        utc(2026, 5, 4, 9, 45),
        utc(2026, 5, 5, 9),
        utc(2026, 5, 5, 9, 15),
    ]


def test_six_field_seconds_first() -> None:
    got = fires("*/20 * * * * *", "UTC", utc(2026, 1, 1), 4)
    assert got == [
        utc(2026, 1, 1, 0, 0, 20),
        utc(2026, 1, 1, 0, 0, 40),
        utc(2026, 1, 1, 0, 1, 0),
        utc(2026, 1, 1, 0, 1, 20),
    ]
    # seconds=5, minute=30, hour=14
    assert fires("5 30 14 * * *", "UTC", utc(2026, 1, 1), 1) == [utc(2026, 1, 1, 14, 30, 5)]


def test_strictly_after() -> None:
    t = CronTrigger("0 * * * *")
    assert t.next_after(utc(2026, 1, 1, 10)) == utc(2026, 1, 1, 11)
    assert t.next_after(utc(2026, 1, 1, 9, 59, 59, 999999)) == utc(2026, 1, 1, 10)
    s = CronTrigger("* * * * * *")
    assert s.next_after(utc(2026, 1, 1, 10, 0, 0, 500000)) == utc(2026, 1, 1, 10, 0, 1)


def test_after_in_other_zone_and_naive_rejected() -> None:
    t = CronTrigger("0 * * * *")
    after = datetime(2026, 1, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    assert t.next_after(after) == utc(2026, 1, 1, 11)
    with pytest.raises(ValueError):
        t.next_after(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
        ("@monthly", utc(2026, 6, 1)),
        ("@weekly", utc(2026, 5, 17)),  # Sunday
        ("@daily", utc(2026, 5, 16)),
        ("@midnight", utc(2026, 5, 16)),
        ("@hourly", utc(2026, 5, 15, 13)),
    ],
)
def test_macros(macro: str, expected: datetime) -> None:
    assert CronTrigger(macro).next_after(utc(2026, 5, 15, 12, 34)) == expected


def test_question_mark() -> None:
    # 2026-05-15 is a Friday
    assert fires("0 12 15 * ?", "UTC", utc(2026, 5, 1), 2) == [
        utc(2026, 5, 15, 12),
        utc(2026, 6, 15, 12),
    ]
    assert fires("0 12 ? * MON", "UTC", utc(2026, 5, 15), 2) == [
        utc(2026, 5, 18, 12),
        utc(2026, 5, 25, 12),
    ]
    # 6-field Quartz style
    assert fires("0 0 12 ? * MON", "UTC", utc(2026, 5, 15), 1) == [utc(2026, 5, 18, 12)]


def test_names() -> None:
    assert fires("0 8 * JAN,MAR MON", "UTC", utc(2026, 1, 30), 2) == [
        utc(2026, 3, 2, 8),
        utc(2026, 3, 9, 8),
    ]
    assert fires("0 8 * * mon-fri", "UTC", utc(2026, 5, 15, 9), 2) == [
        utc(2026, 5, 18, 8),
        utc(2026, 5, 19, 8),
    ]


@pytest.mark.parametrize("dow", ["0", "7", "SUN", "sun"])
def test_dow_sunday(dow: str) -> None:
    got = fires(f"0 0 * * {dow}", "UTC", utc(2026, 5, 15), 2)
    assert got == [utc(2026, 5, 17), utc(2026, 5, 24)]
    assert all(t.weekday() == 6 for t in got)


def test_dow_range_ending_in_seven() -> None:
    got = fires("0 0 * * 5-7", "UTC", utc(2026, 5, 14, 1), 4)
    assert [t.weekday() for t in got] == [4, 5, 6, 4]  # Fri, Sat, Sun, Fri


def test_dom_dow_union() -> None:
    # Vixie cron: neither day field starts with '*', so a day matches either
    got = fires("0 0 1 * MON", "UTC", utc(2026, 5, 25, 1), 3)
    assert got == [utc(2026, 6, 1), utc(2026, 6, 8), utc(2026, 6, 15)]  # Jun 1 is also a Monday
    got = fires("0 0 13 * FRI", "UTC", utc(2026, 5, 30), 3)
    assert got == [utc(2026, 6, 5), utc(2026, 6, 12), utc(2026, 6, 13)]


def test_cron_in_fixed_offset_zone() -> None:
    assert fires("0 9 * * *", "Asia/Kolkata", utc(2026, 1, 1), 1) == [utc(2026, 1, 1, 3, 30)]


def test_cron_trigger_rejects_bad_input() -> None:
    with pytest.raises(TriggerError) as ei:
        CronTrigger("* * * *")
    assert ei.value.field == "cron"
    with pytest.raises(TriggerError) as ei:
        CronTrigger("* * * * *", "Foo/Bar")
    assert ei.value.field == "timezone"


def test_cron_trigger_equality_and_normalized_expr() -> None:
    a = CronTrigger(" 0  9 * * * ", BERLIN)
    assert a.expr == "0 9 * * *"
    assert a == CronTrigger("0 9 * * *", BERLIN)
    assert a != CronTrigger("0 9 * * *", "UTC")
    assert len({a, CronTrigger("0 9 * * *", BERLIN)}) == 1


def test_cron_exhausts_at_end_of_time() -> None:
    assert CronTrigger("* * * * *").next_after(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) is None
    assert CronTrigger("0 0 1 1 *").next_after(utc(9999, 6, 1)) is None


# --------------------------------------------------------------------------------------------
# DST: Europe/Berlin, spring forward 2026-03-29 02:00 CET -> 03:00 CEST (01:00Z)
# --------------------------------------------------------------------------------------------


def test_berlin_spring_gap_slot_fires_at_transition() -> None:
    got = fires("30 2 * * *", BERLIN, utc(2026, 3, 27, 12), 3)
    assert got == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_berlin_spring_two_gap_slots_fire_once() -> None:
    got = fires("0,30 2 * * *", BERLIN, utc(2026, 3, 28, 12), 3)
    assert got == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 0), utc(2026, 3, 30, 0, 30)]
    t = CronTrigger("0,30 2 * * *", BERLIN)
    assert t.next_after(utc(2026, 3, 29, 0, 59, 59)) == utc(2026, 3, 29, 1)
    assert t.next_after(utc(2026, 3, 29, 1)) == utc(2026, 3, 30, 0, 0)


def test_berlin_spring_gap_and_gap_end_collapse() -> None:
    # 02:00, 02:30 (gap) and 03:00 (first valid wall time) all mean 01:00Z: fire once.
    got = fires("0,30 2,3 * * *", BERLIN, utc(2026, 3, 29, 0), 3)
    assert got == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 0)]


def test_berlin_spring_hourly() -> None:
    got = fires("0 * * * *", BERLIN, utc(2026, 3, 28, 23, 30), 4)
    # 01:00 CET, 03:00 CEST, 04:00 CEST, 05:00 CEST
    assert got == [
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 2),
        utc(2026, 3, 29, 3),
    ]


def test_berlin_spring_seconds_in_gap() -> None:
    got = fires("*/20 30 2 * * *", BERLIN, utc(2026, 3, 29, 0), 2)
    assert got == [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)]


# --------------------------------------------------------------------------------------------
# DST: Europe/Berlin, fall back 2026-10-25 03:00 CEST -> 02:00 CET (01:00Z)
# --------------------------------------------------------------------------------------------


def test_berlin_fall_repeated_slot_fires_once_first_pass() -> None:
    got = fires("30 2 * * *", BERLIN, utc(2026, 10, 23, 12), 3)
    assert got == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_berlin_fall_quarter_hours() -> None:
    got = fires("*/15 * * * *", BERLIN, utc(2026, 10, 24, 23, 50), 7)
    assert got == [
        utc(2026, 10, 25, 0, 0),  # 02:00 CEST
        utc(2026, 10, 25, 0, 15),  # 02:15 CEST
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST
        utc(2026, 10, 25, 0, 45),  # 02:45 CEST
        utc(2026, 10, 25, 2, 0),  # 03:00 CET
        utc(2026, 10, 25, 2, 15),
        utc(2026, 10, 25, 2, 30),
    ]


def test_berlin_fall_slots_between_counts_across_transition() -> None:
    t = CronTrigger("*/15 * * * *", BERLIN)
    slots, count = slots_between(t, utc(2026, 10, 24, 23, 59), utc(2026, 10, 25, 2, 0), 100)
    assert count == 5
    assert slots[-1] == utc(2026, 10, 25, 2, 0)


def test_berlin_fall_next_after_from_second_pass() -> None:
    t = CronTrigger("*/15 * * * *", BERLIN)
    assert t.next_after(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 25, 2, 0)  # 02:10 CET -> 03:00
    assert t.next_after(utc(2026, 10, 25, 1, 0)) == utc(2026, 10, 25, 2, 0)
    assert t.next_after(utc(2026, 10, 25, 0, 50)) == utc(2026, 10, 25, 2, 0)
    assert t.next_after(utc(2026, 10, 25, 0, 40)) == utc(2026, 10, 25, 0, 45)
    daily = CronTrigger("30 2 * * *", BERLIN)
    assert daily.next_after(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 26, 1, 30)
    assert daily.next_after(utc(2026, 10, 25, 1, 30)) == utc(2026, 10, 26, 1, 30)


def test_berlin_fall_every_second_from_second_pass_is_fast() -> None:
    t = CronTrigger("* * * * * *", BERLIN)
    start = time.perf_counter()
    assert t.next_after(utc(2026, 10, 25, 1, 0, 1)) == utc(2026, 10, 25, 2, 0, 0)
    assert time.perf_counter() - start < 0.5


def test_berlin_next_after_agrees_with_enumeration() -> None:
    # Consistency around both 2026 transitions: next_after(x) == first enumerated instant > x.
    for expr in ("*/7 * * * *", "0,30 2 * * *", "*/13 2 * * *", "0 */2 * * *"):
        t = CronTrigger(expr, BERLIN)
        for start in (utc(2026, 3, 28, 22), utc(2026, 10, 24, 22)):
            listed = upcoming(t, start, 60)
            assert listed == sorted(set(listed))
            x, stop = start, min(listed[-2], start + timedelta(hours=8))
            while x < stop:
                assert t.next_after(x) == listed[bisect.bisect_right(listed, x)], (expr, x)
                x += timedelta(seconds=41)


# --------------------------------------------------------------------------------------------
# DST: America/New_York, 2026-03-08 (02:00 EST -> 03:00 EDT, 07:00Z)
#                        2026-11-01 (02:00 EDT -> 01:00 EST, 06:00Z)
# --------------------------------------------------------------------------------------------


def test_new_york_spring_gap() -> None:
    got = fires("30 2 * * *", NEW_YORK, utc(2026, 3, 6, 12), 3)
    assert got == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]
    got = fires("0 * * * *", NEW_YORK, utc(2026, 3, 8, 5, 30), 3)
    assert got == [
        utc(2026, 3, 8, 6),
        utc(2026, 3, 8, 7),
        utc(2026, 3, 8, 8),
    ]  # 01:00, 03:00, 04:00


def test_new_york_fall_overlap() -> None:
    got = fires("30 1 * * *", NEW_YORK, utc(2026, 10, 31, 0), 3)
    assert got == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    t = CronTrigger("*/30 * * * *", NEW_YORK)
    got = upcoming(t, utc(2026, 11, 1, 4, 45), 4)
    # 01:00 EDT, 01:30 EDT, (second pass skipped), 02:00 EST, 02:30 EST
    assert got == [
        utc(2026, 11, 1, 5),
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 7),
        utc(2026, 11, 1, 7, 30),
    ]
    # from inside the second pass (01:15 EST = 06:15Z) the next slot is 02:00 EST
    assert t.next_after(utc(2026, 11, 1, 6, 15)) == utc(2026, 11, 1, 7)


# --------------------------------------------------------------------------------------------
# Other zones with unusual transitions
# --------------------------------------------------------------------------------------------


def test_half_hour_dst_lord_howe() -> None:
    # Australia/Lord_Howe 2026-10-04: 02:00 +10:30 -> 02:30 +11 (15:30Z on Oct 3)
    got = fires("15 2 * * *", "Australia/Lord_Howe", utc(2026, 10, 2), 3)
    assert got == [utc(2026, 10, 2, 15, 45), utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15)]


def test_skipped_day_apia() -> None:
    # Pacific/Apia skipped 2011-12-30 entirely (-10 -> +14 at 10:00Z)
    got = fires("0 12 * * *", "Pacific/Apia", utc(2011, 12, 29), 3)
    assert got == [utc(2011, 12, 29, 22), utc(2011, 12, 30, 10), utc(2011, 12, 30, 22)]


# --------------------------------------------------------------------------------------------
# IntervalTrigger
# --------------------------------------------------------------------------------------------


def test_interval_alignment_to_anchor() -> None:
    anchor = utc(2026, 1, 1, 0, 0, 7)
    t = IntervalTrigger(600, anchor)
    assert t.next_after(utc(2025, 12, 31)) == anchor
    assert t.next_after(anchor - timedelta(microseconds=1)) == anchor
    assert t.next_after(anchor) == anchor + timedelta(minutes=10)
    assert t.next_after(utc(2026, 1, 1, 0, 10, 6)) == utc(2026, 1, 1, 0, 10, 7)
    assert t.next_after(utc(2026, 1, 1, 0, 10, 7)) == utc(2026, 1, 1, 0, 20, 7)
    assert t.next_after(utc(2026, 3, 5, 13, 44, 59)) == utc(2026, 3, 5, 13, 50, 7)


def test_interval_anchor_in_other_zone() -> None:
    anchor = datetime(2026, 1, 1, 9, 0, tzinfo=ZoneInfo(BERLIN))
    t = IntervalTrigger(86400, anchor)
    assert t.anchor == utc(2026, 1, 1, 8)
    # absolute: after the spring transition it still fires at 08:00Z (10:00 CEST)
    assert t.next_after(utc(2026, 4, 1, 9)) == utc(2026, 4, 2, 8)


def test_interval_is_absolute_across_dst() -> None:
    t = IntervalTrigger(3600, utc(2026, 1, 1))
    got = upcoming(t, utc(2026, 3, 28, 22, 30), 6)
    assert got == [utc(2026, 3, 28, 23) + timedelta(hours=i) for i in range(6)]
    assert {b - a for a, b in itertools.pairwise(got)} == {timedelta(hours=1)}
    got = upcoming(t, utc(2026, 10, 24, 22, 30), 6)
    assert {b - a for a, b in itertools.pairwise(got)} == {timedelta(hours=1)}


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "60"])
def test_interval_trigger_rejects(bad: object) -> None:
    with pytest.raises(TriggerError) as ei:
        IntervalTrigger(bad, utc(2026, 1, 1))  # type: ignore[arg-type]
    assert ei.value.field == "every"


def test_interval_trigger_rejects_naive_anchor() -> None:
    with pytest.raises(TriggerError):
        IntervalTrigger(60, datetime(2026, 1, 1))


def test_interval_exhausts_at_end_of_time() -> None:
    t = IntervalTrigger(86400, utc(2026, 1, 1))
    assert t.next_after(utc(9999, 12, 30, 12)) == utc(9999, 12, 31)
    assert t.next_after(utc(9999, 12, 31)) is None


# --------------------------------------------------------------------------------------------
# AtTrigger
# --------------------------------------------------------------------------------------------


def test_at_trigger() -> None:
    at = utc(2026, 6, 1, 12)
    t = AtTrigger(at)
    assert t.next_after(utc(2026, 1, 1)) == at
    assert t.next_after(at - timedelta(microseconds=1)) == at
    assert t.next_after(at) is None
    assert t.next_after(utc(2027, 1, 1)) is None
    assert upcoming(t, utc(2026, 1, 1), 5) == [at]
    assert slots_between(t, utc(2026, 1, 1), utc(2027, 1, 1), 10) == ([at], 1)
    assert slots_between(t, utc(2026, 1, 1), at - timedelta(seconds=1), 10) == ([], 0)


def test_at_trigger_rejects_naive() -> None:
    with pytest.raises(TriggerError) as ei:
        AtTrigger(datetime(2026, 6, 1))
    assert ei.value.field == "at"


# --------------------------------------------------------------------------------------------
# make_trigger
# --------------------------------------------------------------------------------------------


def test_make_trigger_kinds() -> None:
    cron = make_trigger("cron", "0 9 * * *", BERLIN)
    assert isinstance(cron, CronTrigger)
    assert cron.next_after(utc(2026, 7, 1)) == utc(2026, 7, 1, 7)

    every = make_trigger("every", "1h30m")
    assert isinstance(every, IntervalTrigger)
    assert every.seconds == 5400
    assert every.anchor == datetime(1970, 1, 1, tzinfo=UTC)
    assert make_trigger("every", 90).next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 1, 30)

    anchored = make_trigger("every", "1h", anchor=utc(2026, 1, 1, 0, 20))
    assert anchored.next_after(utc(2026, 2, 1, 5)) == utc(2026, 2, 1, 5, 20)

    at = make_trigger("at", "2026-06-01T12:00:00+02:00")
    assert isinstance(at, AtTrigger)
    assert at.next_after(utc(2026, 1, 1)) == utc(2026, 6, 1, 10)
    assert make_trigger("at", utc(2026, 6, 1)).next_after(utc(2026, 1, 1)) == utc(2026, 6, 1)


@pytest.mark.parametrize(
    ("kind", "value", "tz", "field"),
    [
        ("cron", "* * * *", "UTC", "cron"),
        ("cron", "61 * * * *", "UTC", "cron"),
        ("cron", "0 0 30 2 *", "UTC", "cron"),
        ("cron", 5, "UTC", "cron"),
        ("cron", "* * * * *", "Foo/Bar", "timezone"),
        ("every", "0s", "UTC", "every"),
        ("every", "soon", "UTC", "every"),
        ("every", 0, "UTC", "every"),
        ("every", True, "UTC", "every"),
        ("every", "5m", "Nowhere/Land", "timezone"),
        ("at", "2026-06-01T12:00:00", "UTC", "at"),
        ("at", 1234, "UTC", "at"),
        ("at", "2026-06-01T12:00:00Z", "Foo/Bar", "timezone"),
        ("sometimes", "x", "UTC", "kind"),
    ],
)
def test_make_trigger_errors(kind: str, value: object, tz: str, field: str) -> None:
    with pytest.raises(TriggerError) as ei:
        make_trigger(kind, value, tz)  # type: ignore[arg-type]
    assert ei.value.field == field


# --------------------------------------------------------------------------------------------
# upcoming / slots_between
# --------------------------------------------------------------------------------------------


def test_upcoming() -> None:
    t = CronTrigger("0 0 * * *")
    assert upcoming(t, utc(2026, 1, 1), 3) == [utc(2026, 1, 2), utc(2026, 1, 3), utc(2026, 1, 4)]
    assert upcoming(t, utc(2026, 1, 1), 0) == []
    with pytest.raises(ValueError):
        upcoming(t, utc(2026, 1, 1), -1)
    i = IntervalTrigger(60, utc(2026, 1, 1))
    assert upcoming(i, utc(2026, 1, 1), 2) == [utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2)]


def test_slots_between_cron() -> None:
    t = CronTrigger("0 * * * *")
    slots, count = slots_between(t, utc(2026, 1, 1), utc(2026, 1, 2), 3)
    assert count == 24  # 01:00 .. 24:00, `after` excluded, `until` included
    assert slots == [utc(2026, 1, 1, 1), utc(2026, 1, 1, 2), utc(2026, 1, 1, 3)]
    assert slots_between(t, utc(2026, 1, 1), utc(2026, 1, 1), 3) == ([], 0)
    assert slots_between(t, utc(2026, 1, 2), utc(2026, 1, 1), 3) == ([], 0)
    assert slots_between(t, utc(2026, 1, 1), utc(2026, 1, 2), 0) == ([], 24)


def test_slots_between_cron_dst_day_counts() -> None:
    hourly = CronTrigger("0 * * * *", BERLIN)
    # Berlin day of 2026-03-29 has 23 hours, 2026-10-25 has 25 hours (but repeated hour fires once)
    _, spring = slots_between(hourly, utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), 0)
    _, fall = slots_between(hourly, utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), 0)
    assert spring == 23
    assert fall == 24


def test_slots_between_cron_count_caps() -> None:
    assert COUNT_CAP == 1_000_000
    t = CronTrigger("0 0 1 1 *")
    slots, count = slots_between(t, utc(2000, 1, 1), utc(2100, 1, 1), 2)
    assert count == 100
    assert slots == [utc(2001, 1, 1), utc(2002, 1, 1)]


def test_slots_between_interval_large_count_is_fast() -> None:
    t = IntervalTrigger(1, utc(2000, 1, 1))
    start = time.perf_counter()
    slots, count = slots_between(t, utc(2000, 1, 1), utc(2100, 1, 1), 3)
    assert time.perf_counter() - start < 0.1
    assert count == (utc(2100, 1, 1) - utc(2000, 1, 1)) // timedelta(seconds=1)
    assert count > 3_000_000_000
    assert slots == [utc(2000, 1, 1, 0, 0, 1), utc(2000, 1, 1, 0, 0, 2), utc(2000, 1, 1, 0, 0, 3)]


def test_slots_between_interval_edges() -> None:
    t = IntervalTrigger(3600, utc(2026, 1, 1))
    # until before anchor
    assert slots_between(t, utc(2025, 1, 1), utc(2025, 12, 31), 5) == ([], 0)
    # after before anchor: anchor itself counts
    slots, count = slots_between(t, utc(2025, 1, 1), utc(2026, 1, 1, 2), 5)
    assert (slots, count) == ([utc(2026, 1, 1), utc(2026, 1, 1, 1), utc(2026, 1, 1, 2)], 3)
    # after exactly on a slot is excluded, until exactly on a slot is included
    slots, count = slots_between(t, utc(2026, 1, 1, 1), utc(2026, 1, 1, 3), 5)
    assert (slots, count) == ([utc(2026, 1, 1, 2), utc(2026, 1, 1, 3)], 2)
    with pytest.raises(ValueError):
        slots_between(t, utc(2026, 1, 1), utc(2026, 1, 2), -1)


# --------------------------------------------------------------------------------------------
# Performance
# --------------------------------------------------------------------------------------------


def test_batch_of_10000_next_times() -> None:
    exprs = [f"{m} {h} * * *" for h in range(24) for m in range(0, 60, 5)]
    zones = ["UTC", BERLIN, NEW_YORK]
    triggers = [CronTrigger(exprs[i % len(exprs)], zones[i % 3]) for i in range(10_000)]
    base = utc(2026, 3, 1)
    afters = [base + timedelta(seconds=97 * i) for i in range(10_000)]
    start = time.perf_counter()
    results = [t.next_after(a) for t, a in zip(triggers, afters, strict=True)]
    elapsed = time.perf_counter() - start
    assert all(r is not None and r > a for r, a in zip(results, afters, strict=True))
    assert elapsed < 10.0  # typically well under a second


# --- the classic five-field dialect -------------------------------------------------------


@pytest.mark.parametrize("expr", ["* * * * *", "0 9 ? * MON-FRI", "0 0 1 JAN ?", "@daily"])
def test_validate_cron5_accepts(expr: str) -> None:
    assert validate_cron5(expr) == validate_cron(expr)


@pytest.mark.parametrize("expr", ["0 * * * * ?", "0 0 12 * * ? 2030", "* * * *", "", "61 * * * *"])
def test_validate_cron5_refuses(expr: str) -> None:
    with pytest.raises(TriggerError) as info:
        validate_cron5(expr)
    assert info.value.field == "cron"


# --- the Vixie cron dialect ---------------------------------------------------------------


def _days(expr: str, n: int, after: datetime = utc(2026, 1, 1)) -> list[str]:
    return [t.strftime("%a %m-%d") for t in fires(expr, "UTC", after, n)]


def test_equal_range_is_the_single_value() -> None:
    assert _days("0 9 * * MON-MON", 3) == ["Mon 01-05", "Mon 01-12", "Mon 01-19"]
    assert fires("5-5 * * * *", "UTC", utc(2026, 1, 1), 2) == [
        utc(2026, 1, 1, 0, 5),
        utc(2026, 1, 1, 1, 5),
    ]
    assert fires("0 0 1 JAN-JAN *", "UTC", utc(2026, 1, 1), 2) == [utc(2027, 1, 1), utc(2028, 1, 1)]
    with pytest.raises(TriggerError, match="can never fire"):
        validate_cron("0 0 31 2-2 *")


def test_nth_weekday_is_one_more_day_of_week_item() -> None:
    # day-of-month 1 OR the first Monday: 2026-02-01 and 2026-03-01 are Sundays
    assert _days("0 0 1 * MON#1", 5) == [
        "Mon 01-05",
        "Sun 02-01",
        "Mon 02-02",
        "Sun 03-01",
        "Mon 03-02",
    ]
    # Feb 29 OR the fifth Monday of February: the leap day comes first
    assert fires("0 0 29 2 MON#5", "UTC", utc(2026, 1, 1), 1) == [utc(2028, 2, 29)]
    assert _days("0 0 1,15 * MON#2", 4) == ["Mon 01-12", "Thu 01-15", "Sun 02-01", "Mon 02-09"]
    # the 1st OR the last Friday
    assert _days("0 0 1 * L5", 4) == ["Fri 01-30", "Sun 02-01", "Fri 02-27", "Sun 03-01"]


def test_nearest_weekday_keeps_the_day_of_week_field() -> None:
    # the weekday nearest the 15th OR any Monday
    assert _days("0 0 15W * MON", 4) == ["Mon 01-05", "Mon 01-12", "Thu 01-15", "Mon 01-19"]
    # 2026-02-15 is a Sunday: the nearest weekday is Monday the 16th, a Monday anyway
    assert _days("0 0 15W * MON", 3, utc(2026, 2, 10)) == ["Mon 02-16", "Mon 02-23", "Mon 03-02"]


def test_star_rule_ands_the_day_fields() -> None:
    # day-of-month starts with '*': odd days that are Mondays (Vixie cron)
    assert _days("0 0 */2 * MON", 4) == ["Mon 01-05", "Mon 01-19", "Mon 02-09", "Mon 02-23"]
    # day-of-week starts with '*': the first seven days that are Sundays
    assert _days("0 0 1-7 * */7", 3) == ["Sun 01-04", "Sun 02-01", "Sun 03-01"]
    # neither does: either field
    assert _days("0 0 13 * FRI", 3, utc(2026, 2, 10)) == ["Fri 02-13", "Fri 02-20", "Fri 02-27"]
    # '?' counts as '*'
    assert _days("0 0 ? * MON", 2) == ["Mon 01-05", "Mon 01-12"]


def test_weekday_steps_follow_vixie_cron() -> None:
    # '1/2' runs from 1 to 7: Monday, Wednesday, Friday, Sunday
    assert _days("0 0 * * 1/2", 5) == [
        "Fri 01-02",
        "Sun 01-04",
        "Mon 01-05",
        "Wed 01-07",
        "Fri 01-09",
    ]
    # '7/2' is Sunday alone; '*/2' is 0, 2, 4, 6
    assert _days("0 0 * * 7/2", 2) == ["Sun 01-04", "Sun 01-11"]
    assert _days("0 0 * * */2", 4) == ["Sat 01-03", "Sun 01-04", "Tue 01-06", "Thu 01-08"]


def test_wrap_around_ranges() -> None:
    assert _days("0 0 * * 5-1", 5) == [
        "Fri 01-02",
        "Sat 01-03",
        "Sun 01-04",
        "Mon 01-05",
        "Fri 01-09",
    ]
    assert _days("0 0 * * FRI-MON/2", 3) == ["Fri 01-02", "Sun 01-04", "Fri 01-09"]
    got = fires("50-10/5 22-2 * * *", "UTC", utc(2026, 1, 1, 1, 58), 5)
    assert [t.strftime("%H:%M") for t in got] == ["02:00", "02:05", "02:10", "02:50", "02:55"]
    assert [t.month for t in fires("0 0 1 NOV-FEB *", "UTC", utc(2026, 3, 1), 4)] == [11, 12, 1, 2]


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("0 0 L/2 * *", "L stands alone"),
        ("0 0 5-L3 * *", "L stands alone"),
        ("*/x * * * *", "step 'x'"),
        ("0 0 * * MON-FOO", "weekday name 'FOO'"),
        ("0 0 1 2-FOO *", "month name 'FOO'"),
        ("0-10000000 * * * *", "10000000 is out of range 0-59"),
        ("1,,2 * * * *", "empty list item"),
        ("0 0 1-5W * *", "W needs a single day"),
        ("0 0 * * L", "L needs a weekday"),
        ("0 0 * * MON#", "occurrence is missing"),
    ],
)
def test_error_messages_are_gnomons_own(expr: str, fragment: str) -> None:
    with pytest.raises(TriggerError) as info:
        validate_cron(expr)
    message = str(info.value)
    assert fragment in message
    assert message.startswith("invalid ") and "field" in message
    for leak in ("band", "field 2", "acceptable", "croniter", "Cron:", "[0 0"):
        assert leak not in message


@pytest.mark.parametrize("value", [None, 5, ["* * * * *"], {"cron": "* * * * *"}, b"* * * * *"])
def test_non_string_expression_is_a_trigger_error(value: object) -> None:
    for call in (validate_cron, validate_cron5, CronTrigger):
        with pytest.raises(TriggerError) as info:
            call(value)  # type: ignore[operator]
        assert info.value.field == "cron"
        assert "must be a string" in str(info.value)

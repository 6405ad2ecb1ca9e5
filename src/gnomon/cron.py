"""Schedule triggers: ``cron``, ``every`` and ``at``; time zones; DST rules.

Pure computation, no I/O. Every instant that goes in or comes out is an aware datetime; results
are always in UTC.

Trigger kinds
-------------
* ``cron`` -- a cron expression evaluated in an IANA time zone (:class:`CronTrigger`).
  5 fields (``min hour dom mon dow``) or 6 fields with *seconds first* (Quartz order:
  ``sec min hour dom mon dow``). Macros ``@yearly @annually @monthly @weekly @daily @midnight
  @hourly`` are accepted, ``@reboot`` is not.

  The fields follow Vixie cron (the cron of Debian and the BSDs): lists, ranges ``a-b``
  (``a-a`` is the single value ``a``), steps ``*/s``, ``a-b/s`` and ``a/s`` (from ``a`` to the
  field's maximum, as FreeBSD's cron reads it: ``1/2`` in day-of-week is Mon, Wed, Fri, Sun and
  ``7/2`` is Sunday), month and weekday names (``JAN``, ``MON``); day-of-week ``0`` and ``7``
  are both Sunday. The two day fields combine as in Vixie cron: when either *starts with* ``*``
  (or is ``?``) a day must match both, otherwise it must match either (``0 0 1 * MON``: the 1st
  and every Monday; ``0 0 */2 * MON``: Mondays that are odd days of the month).

  Beyond Vixie cron: a range whose start is after its end wraps around, as in Quartz
  (``FRI-MON``, ``22-2``, ``50-10/5`` = 50, 55, 0, 5, 10; in day-of-week the cycle is the
  7-day week, in day-of-month 1-31 whatever the month's length); Quartz ``?`` in a day field
  means ``*``; day-of-month ``L`` (last day), ``L-n`` (n days before it), ``LW`` (last
  Monday-to-Friday) and ``nW`` (the Monday-to-Friday nearest the n-th, never leaving the month;
  an n past the month's end counts as its last day); day-of-week ``d#n`` (n-th weekday d of
  the month, n 1-5) and ``dL`` or ``Ld`` (last weekday d). These are items of their day field
  like any other and obey the rule above (``0 0 1 * MON#1``: the 1st and the first Monday).
  An expression that can never fire (``0 0 30 2 *``) is refused. Every problem surfaces as
  :class:`TriggerError` with ``field='cron'``.
* ``every`` -- a fixed interval (:class:`IntervalTrigger`). Slots are ``anchor + k*interval``
  (``k >= 0``) in absolute time: DST never stretches or shrinks an interval. The default anchor
  (see :func:`make_trigger`) is the Unix epoch, so e.g. ``every 1h`` fires on the UTC hour.
* ``at`` -- a single instant (:class:`AtTrigger`), given as RFC 3339 with an explicit offset.

DST semantics for ``cron`` (wall-clock time in the schedule's zone)
-------------------------------------------------------------------
The expression is iterated over *naive local wall times*; each matching wall time is then
mapped to one instant:

* **Normal** wall time: the instant it denotes.
* **Spring-forward gap** (the wall time does not exist): fires at the first valid instant after
  it, which is the transition instant itself. Example, Europe/Berlin 2026-03-29 (02:00 CET ->
  03:00 CEST): ``30 2 * * *`` fires at 03:00 CEST = 01:00Z. Several slots inside one gap (e.g.
  ``0,30 2 * * *``) all map to the transition instant and fire *once*.
* **Fall-back overlap** (the wall time occurs twice): fires once, at the *first* occurrence
  (``fold=0``). Example, Europe/Berlin 2026-10-25 (03:00 CEST -> 02:00 CET): ``30 2 * * *`` fires
  at 02:30 CEST = 00:30Z only; ``*/15 * * * *`` fires 02:00, 02:15, 02:30, 02:45 CEST and then
  03:00 CET -- the repeated hour's second pass gets no slots.

Because that mapping is monotone, successive fire instants are strictly increasing. When the
reference instant lies in the second pass of a repeated hour, the search jumps straight to the
end of the overlap instead of walking through the already-consumed wall times.

Gap detection: a wall time ``w`` is in a gap iff ``w`` (``fold=0``) converted to UTC and back is
not ``w``; the transition instant is then found by bisection (to the second) between the
``fold=1`` and ``fold=0`` conversions, which bracket it.

Performance
-----------
An expression is parsed once (cached per expression) into sorted tuples of allowed values and a
table of the matching days for each of the 28 month shapes (28-31 days x weekday of the 1st);
the next matching wall time is then a few bisections. :meth:`CronTrigger.next_after` results
are cached per ``(expression, zone, after)``.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

__all__ = [
    "COUNT_CAP",
    "AtTrigger",
    "CronTrigger",
    "IntervalTrigger",
    "Trigger",
    "TriggerError",
    "make_trigger",
    "parse_at",
    "parse_interval",
    "slots_between",
    "upcoming",
    "validate_cron",
    "validate_cron5",
    "validate_timezone",
]

#: ``slots_between`` stops counting cron (and other non-interval) slots at this many.
COUNT_CAP: Final = 1_000_000

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND: Final = timedelta(seconds=1)
_MAX_INTERVAL_SECONDS: Final = int(timedelta.max.total_seconds())
# Safety bound on consecutive wall times collapsing onto one instant (a gap is at most ~1 day).
_MAX_SKIPS: Final = 200_000

_ALLOWED: Final = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L, L-n, LW, nW or ?",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 (0 and 7 are Sunday), SUN-SAT, d#n, dL, Ld or ?",
}
_HASH_RE: Final = re.compile(r"^[hr](\(.*\))?(/.*)?$", re.IGNORECASE)
_INTERVAL_RE: Final = re.compile(
    r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$", re.IGNORECASE | re.ASCII
)
_RFC3339_RE: Final = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))?$",
    re.ASCII,
)


class TriggerError(ValueError):
    """Bad schedule input. `field` names the offending input field ('cron', 'every', 'at',
    'timezone'; 'kind' for an unknown trigger kind)."""

    field: str
    message: str

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[TriggerError], tuple[str, str]]:
        return (type(self), (self.field, self.message))


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def validate_timezone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for an IANA zone name; TriggerError('timezone') if unknown."""
    if not isinstance(name, str) or not name.strip():
        raise TriggerError("timezone", f"unknown time zone {name!r}")
    return _zone(name)


@functools.lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError (bad key), OSError, ...
        raise TriggerError("timezone", f"unknown time zone {name!r}") from exc


def parse_interval(text: str) -> int:
    """Parse '30s', '5m', '1h', '2d', '1h30m' or plain seconds ('90') into seconds (>= 1)."""
    if not isinstance(text, str):
        raise TriggerError("every", f"interval must be a string, got {type(text).__name__}")
    s = text.strip()
    bad = TriggerError(
        "every", f"invalid interval {text!r}: expected e.g. '30s', '5m', '1h30m', '2d' or '90'"
    )
    if len(s) > 40:  # also keeps int() away from huge digit strings
        raise bad
    if s.isascii() and s.isdigit():
        seconds = int(s)
    else:
        m = _INTERVAL_RE.match(s)
        if not s or m is None or not any(m.groups()):
            raise bad
        d, h, mi, se = (int(g) if g else 0 for g in m.groups())
        seconds = ((d * 24 + h) * 60 + mi) * 60 + se
    return _check_interval(seconds, text)


def _check_interval(seconds: int, original: object) -> int:
    if seconds < 1:
        raise TriggerError("every", f"interval {original!r} must be at least 1 second")
    if seconds > _MAX_INTERVAL_SECONDS:
        raise TriggerError("every", f"interval {original!r} is too large")
    return seconds


def parse_at(value: str | datetime) -> datetime:
    """Parse an RFC 3339 date-time with 'Z' or an offset (or an aware datetime) to aware UTC.

    Naive values are rejected: without an offset the instant is ambiguous.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise TriggerError("at", "date-time must be timezone-aware (naive datetime given)")
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise TriggerError("at", f"date-time {value.isoformat()} is out of range") from exc
    if not isinstance(value, str):
        raise TriggerError(
            "at", f"expected an RFC 3339 date-time string, got {type(value).__name__}"
        )
    m = _RFC3339_RE.match(value.strip())
    if m is None:
        raise TriggerError(
            "at", f"invalid date-time {value!r}: expected RFC 3339 like '2026-03-29T02:30:00Z'"
        )
    year, month, day, hour, minute, second, frac, zulu, sign, oh, om = m.groups()
    if not zulu and not sign:
        raise TriggerError(
            "at",
            f"date-time {value!r} has no UTC offset; append 'Z' or an offset like '+02:00'",
        )
    if second == "60":
        raise TriggerError("at", f"date-time {value!r}: leap seconds are not supported")
    try:
        micro = int((frac or "").ljust(6, "0")[:6])
        if int(oh or 0) > 23 or int(om or 0) > 59:
            raise ValueError("UTC offset out of range")
        offset = timedelta(hours=int(oh or 0), minutes=int(om or 0))
        if sign == "-":
            offset = -offset
        naive = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro
        )
        return (naive - offset).replace(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise TriggerError("at", f"invalid date-time {value!r}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# Cron expressions: parsing and matching of naive wall times
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_MONTH_NAMES: Final = {
    name: i
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_DOW_NAMES: Final = {
    name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}
_SECOND: Final = _Field("second", 0, 59, {})
_MINUTE: Final = _Field("minute", 0, 59, {})
_HOUR: Final = _Field("hour", 0, 23, {})
_DOM: Final = _Field("day-of-month", 1, 31, {})
_MONTH: Final = _Field("month", 1, 12, _MONTH_NAMES)
_DOW: Final = _Field("day-of-week", 0, 7, _DOW_NAMES)
_MACRO_FIELDS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_DAYS: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MAX_DIGITS: Final = 4  # no field value or step needs more; keeps int() on short strings
_MAX_YEAR: Final = 9999


@dataclass(frozen=True, slots=True, eq=False)
class _Compiled:
    """A parsed expression: sorted allowed values per field, and the matching days of a month.

    ``days[(length - 28) * 7 + first]`` lists the matching days of a month of `length` days
    whose 1st falls on weekday `first` (0 = Sunday): the day rules depend on nothing else.
    """

    normalized: str  # whitespace collapsed, macro lower-cased, '?' kept
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    days: tuple[tuple[int, ...], ...]

    def next_wall(self, wall: datetime) -> datetime | None:
        """Earliest matching naive wall time strictly after `wall` (whole seconds), or None
        past year 9999."""
        months, hours, minutes, seconds, days = (
            self.months,
            self.hours,
            self.minutes,
            self.seconds,
            self.days,
        )
        y, mo, d = wall.year, wall.month, wall.day
        h, mi, s = wall.hour, wall.minute, wall.second + 1
        while y <= _MAX_YEAR:
            i = bisect_left(months, mo)
            if i == len(months):
                y, mo, d, h, mi, s = y + 1, months[0], 1, 0, 0, 0
                continue
            if months[i] != mo:
                mo, d, h, mi, s = months[i], 1, 0, 0, 0
            length, first = _month_shape(y, mo)
            in_month = days[(length - 28) * 7 + first]
            i = bisect_left(in_month, d)
            if i == len(in_month):
                mo, d, h, mi, s = mo + 1, 1, 0, 0, 0
                continue
            if in_month[i] != d:
                d, h, mi, s = in_month[i], 0, 0, 0
            i = bisect_left(hours, h)
            if i == len(hours):
                d, h, mi, s = d + 1, 0, 0, 0
                continue
            if hours[i] != h:
                h, mi, s = hours[i], 0, 0
            i = bisect_left(minutes, mi)
            if i == len(minutes):
                h, mi, s = h + 1, 0, 0
                continue
            if minutes[i] != mi:
                mi, s = minutes[i], 0
            i = bisect_left(seconds, s)
            if i == len(seconds):
                mi, s = mi + 1, 0
                continue
            return datetime(y, mo, d, h, mi, seconds[i])
        return None


@functools.lru_cache(maxsize=8192)
def _month_shape(year: int, month: int) -> tuple[int, int]:
    """(number of days, weekday of the 1st with 0 = Sunday)."""
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return _MONTH_DAYS[month] + leap, (date(year, month, 1).weekday() + 1) % 7


def validate_cron(expr: str) -> str:
    """Validate a cron expression; return it normalized (whitespace collapsed, macro kept)."""
    return _compiled(expr).normalized


def validate_cron5(expr: str) -> str:
    """Like :func:`validate_cron`, for the classic dialect only: five fields or a macro (no
    seconds field, no year field)."""
    _require_string(expr)
    tokens = expr.split()
    if len(tokens) != 5 and not (len(tokens) == 1 and tokens[0].startswith("@")):
        raise TriggerError(
            "cron",
            "expected 5 fields (minute hour day-of-month month day-of-week) or a macro, "
            f"got {len(tokens)}",
        )
    return validate_cron(expr)


def _require_string(expr: object) -> None:
    if not isinstance(expr, str):
        raise TriggerError("cron", f"cron expression must be a string, got {type(expr).__name__}")


def _compiled(expr: str) -> _Compiled:
    _require_string(expr)
    return _compile(expr)


@functools.lru_cache(maxsize=16384)
def _compile(expr: str) -> _Compiled:
    if not expr.isascii():
        raise TriggerError("cron", f"cron expression {expr!r} contains non-ASCII characters")
    tokens = expr.split()
    if tokens and tokens[0].startswith("@"):
        macro = tokens[0].lower()
        if macro == "@reboot":
            raise TriggerError("cron", "@reboot is not supported (a scheduler has no reboot event)")
        if macro not in _MACRO_FIELDS:
            raise TriggerError(
                "cron",
                f"unknown macro {tokens[0]!r}; expected one of {', '.join(sorted(_MACRO_FIELDS))}",
            )
        if len(tokens) > 1:
            raise TriggerError("cron", f"macro {tokens[0]!r} must be used on its own")
        return _build(macro, _MACRO_FIELDS[macro].split())
    if len(tokens) not in (5, 6):
        raise TriggerError("cron", f"expected 5 or 6 fields, got {len(tokens)}")
    return _build(" ".join(tokens), tokens)


def _build(normalized: str, tokens: list[str]) -> _Compiled:
    fields = (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW)[6 - len(tokens) :]
    for field, token in zip(fields, tokens, strict=True):
        if "?" in token and (token != "?" or field not in (_DOM, _DOW)):
            raise TriggerError(
                "cron",
                f"invalid {field.name} field {token!r}: '?' is only allowed alone, "
                "in day-of-month or day-of-week",
            )
        if any(_HASH_RE.match(part) for part in token.split(",")):
            raise TriggerError(
                "cron",
                f"invalid {field.name} field {token!r}: hashed/random values (H, R) unsupported",
            )
    *times, dom_token, month_token, dow_token = tokens
    seconds = _plain_field(_SECOND, times[0]) if len(times) == 3 else (0,)
    minutes = _plain_field(_MINUTE, times[-2])
    hours = _plain_field(_HOUR, times[-1])
    months = _plain_field(_MONTH, month_token)
    dom, dow = _DayOfMonth(dom_token), _DayOfWeek(dow_token)
    # Vixie cron: when either day field starts with '*' (or is '?'), a day must match both;
    # otherwise it must match either.
    both = dom_token[0] in "*?" or dow_token[0] in "*?"

    def matching(length: int, first: int) -> tuple[int, ...]:
        by_dom, by_dow = dom.days(length, first), dow.days(length, first)
        return tuple(sorted(by_dom & by_dow if both else by_dom | by_dow))

    days = tuple(matching(length, first) for length in (28, 29, 30, 31) for first in range(7))
    compiled = _Compiled(normalized, seconds, minutes, hours, months, days)
    # Every (month, length, weekday of the 1st) combination occurs in the calendar, so this
    # decides exactly whether the expression can ever fire.
    lengths = {m: (28, 29) if m == 2 else (_MONTH_DAYS[m],) for m in months}
    if not any(days[(n - 28) * 7 + f] for m in months for n in lengths[m] for f in range(7)):
        raise TriggerError(
            "cron",
            f"cron expression {normalized!r} can never fire: no date matches its "
            f"day-of-month/month/day-of-week fields{_never_detail(dom, months)}",
        )
    return compiled


def _never_detail(dom: _DayOfMonth, months: tuple[int, ...]) -> str:
    """Name the usual cause of a never-firing expression: a day no chosen month has."""
    if dom.special or not dom.plain:
        return ""
    first = min(dom.plain)
    if first <= max(29 if m == 2 else _MONTH_DAYS[m] for m in months):
        return ""
    names = ", ".join(name.capitalize() for name, m in _MONTH_NAMES.items() if m in months)
    return f" (no day {first} in {names})"


def _bad(field: _Field, token: str, reason: str) -> TriggerError:
    return TriggerError(
        "cron", f"invalid {field.name} field {token!r}: {reason} (allowed: {_ALLOWED[field.name]})"
    )


def _items(field: _Field, token: str) -> list[str]:
    items = token.split(",")
    if "" in items:
        raise _bad(field, token, "empty list item")
    return items


def _plain_field(field: _Field, token: str) -> tuple[int, ...]:
    values: set[int] = set()
    for item in _items(field, token):
        values.update(_expand(field, item, token))
    return tuple(sorted(values))


def _number(field: _Field, text: str, token: str, what: str) -> int:
    """A whole number that is not a field value: a step, an occurrence, a count of days."""
    if not text:
        raise _bad(field, token, f"{what} is missing")
    if not text.isdigit():
        raise _bad(field, token, f"{what} {text!r} is not a whole number")
    if len(text) > _MAX_DIGITS:
        raise _bad(field, token, f"{what} {text} is too large")
    return int(text)


def _value(field: _Field, text: str, token: str) -> int:
    """One field value: a number in the field's range or, for months and weekdays, a name."""
    if text.upper() in field.names:
        return field.names[text.upper()]
    if text.isdigit():
        value = int(text) if len(text) <= _MAX_DIGITS else field.high + 1
        if not field.low <= value <= field.high:
            raise _bad(field, token, f"{text} is out of range {field.low}-{field.high}")
        return value
    if not text:
        raise _bad(field, token, "a value is missing")
    kind = "value"
    if text.isalpha():
        kind = "month name" if field is _MONTH else "weekday name" if field is _DOW else kind
    raise _bad(field, token, f"unrecognised {kind} {text!r}")


def _expand(field: _Field, item: str, token: str) -> list[int]:
    """Values of one list item: ``*``, ``v``, ``a-b`` (wrapping when a > b) or ``v/s``, each
    with an optional ``/step``; ``v/s`` runs from v to the field's maximum."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        step = _number(field, step_text, token, "step")
        if step < 1:
            raise _bad(field, token, "step must be at least 1")
    if base == "*":
        return list(range(field.low, field.high + 1, step))
    first_text, dash, last_text = base.partition("-")
    if dash and not first_text:
        raise _bad(field, token, "negative numbers are not allowed")
    first = _value(field, first_text, token)
    if not dash:
        if not slash:
            return [first]
        last = field.high
    elif field is _DOM and last_text in ("L", "l"):
        last = field.high  # 'a-L': days from a to the month's last
    else:
        last = _value(field, last_text, token)
    if field is _DOW and first == 7 and last != 7:
        first = 0  # '7-2' is Sunday to Tuesday
    if first <= last:
        return list(range(first, last + 1, step))
    cycle = 7 if field is _DOW else field.high - field.low + 1
    return [
        field.low + (first - field.low + k) % cycle
        for k in range(0, (last - first) % cycle + 1, step)
    ]


def _weekday(first: int, day: int) -> int:
    """Weekday (0 = Sunday) of `day` in a month whose 1st is weekday `first`."""
    return (first + day - 1) % 7


def _nearest_weekday(day: int, length: int, first: int) -> int:
    """The Monday-to-Friday day nearest to `day` (clamped to the month), never leaving the month."""
    day = min(day, length)
    wd = _weekday(first, day)
    if wd == 6:  # Saturday
        return day - 1 if day > 1 else day + 2
    if wd == 0:  # Sunday
        return day + 1 if day < length else day - 2
    return day


class _DayOfMonth:
    """Day-of-month field: plain days, ``L``, ``L-n``, ``LW``, ``nW`` (or ``Wn``)."""

    __slots__ = ("last_offsets", "last_weekday", "nearest", "ordered", "plain", "special")

    def __init__(self, token: str) -> None:
        self.plain: set[int] = set()
        self.last_offsets: set[int] = set()
        self.nearest: set[int] = set()
        self.last_weekday = False
        if token == "?":
            self.plain.update(range(1, 32))
        for item in _items(_DOM, token) if token != "?" else []:
            up = item.upper()
            if up == "L":
                self.last_offsets.add(0)
            elif up == "LW":
                self.last_weekday = True
            elif up.startswith("L-") and "/" not in up:
                offset = _number(_DOM, item[2:], token, "number of days")
                if offset > 30:
                    raise _bad(_DOM, token, "L-n needs n from 0 to 30")
                self.last_offsets.add(offset)
            elif up.endswith("W") or up.startswith("W"):
                day_text = item[:-1] if up.endswith("W") else item[1:]
                if not day_text.isdigit():
                    raise _bad(_DOM, token, "W needs a single day, e.g. 15W")
                self.nearest.add(_value(_DOM, day_text, token))
            elif "L" in up and up.partition("/")[0].partition("-")[2] != "L":
                raise _bad(_DOM, token, "L stands alone, as LW, as L-n or as a range end (25-L)")
            else:
                self.plain.update(_expand(_DOM, item, token))
        self.special = bool(self.last_offsets or self.nearest or self.last_weekday)
        self.ordered = sorted(self.plain)

    def days(self, length: int, first: int) -> set[int]:
        out = set(self.ordered[: bisect_right(self.ordered, length)])
        out.update(length - k for k in self.last_offsets if length - k >= 1)
        out.update(_nearest_weekday(d, length, first) for d in self.nearest)
        if self.last_weekday:
            out.add(_nearest_weekday(length, length, first))
        return out


class _DayOfWeek:
    """Day-of-week field: plain weekdays, ``d#n`` (n-th d of the month), ``dL``/``Ld`` (last d)."""

    __slots__ = ("last", "nth", "plain")

    def __init__(self, token: str) -> None:
        self.plain: set[int] = set()
        self.nth: set[tuple[int, int]] = set()
        self.last: set[int] = set()
        if token == "?":
            self.plain.update(range(7))
        for item in _items(_DOW, token) if token != "?" else []:
            up = item.upper()
            if "#" in item:
                weekdays, _, n_text = item.partition("#")
                n = _number(_DOW, n_text, token, "occurrence")
                if not 1 <= n <= 5:
                    raise _bad(_DOW, token, "the n in d#n must be 1-5")
                self.nth.update((d % 7, n) for d in _expand(_DOW, weekdays, token))
            elif up == "L":
                raise _bad(_DOW, token, "L needs a weekday: 5L (or L5) is the last Friday")
            elif up.endswith("L") or up.startswith("L"):
                weekday = item[:-1] if up.endswith("L") else item[1:]
                if "-" in weekday or "/" in weekday or "," in weekday:
                    raise _bad(_DOW, token, "L takes a single weekday, e.g. 5L")
                self.last.add(_value(_DOW, weekday, token) % 7)
            else:
                self.plain.update(d % 7 for d in _expand(_DOW, item, token))

    def days(self, length: int, first: int) -> set[int]:
        out = {d for wd in self.plain for d in range(1 + (wd - first) % 7, length + 1, 7)}
        for wd, n in self.nth:
            day = 1 + (wd - first) % 7 + 7 * (n - 1)
            if day <= length:
                out.add(day)
        for wd in self.last:
            day = 1 + (wd - first) % 7
            out.add(day + 7 * ((length - day) // 7))
        return out


# --------------------------------------------------------------------------------------------
# Wall time <-> instant
# --------------------------------------------------------------------------------------------


def _as_utc(dt: datetime, what: str = "after") -> datetime:
    if not isinstance(dt, datetime) or dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {dt!r}")
    return dt.astimezone(UTC)


def _first_offset_change(lo: datetime, hi: datetime, zone: ZoneInfo) -> datetime:
    """Smallest whole-second instant in (lo, hi] whose UTC offset in `zone` differs from lo's.

    Requires offset(lo) != offset(hi) and a single transition in between.
    """
    base = lo.astimezone(zone).utcoffset()
    lo_s = (lo - _EPOCH) // _ONE_SECOND
    hi_s = (hi - _EPOCH) // _ONE_SECOND
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if (_EPOCH + timedelta(seconds=mid)).astimezone(zone).utcoffset() == base:
            lo_s = mid
        else:
            hi_s = mid
    return _EPOCH + timedelta(seconds=hi_s)


def _wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """Map a naive wall time to its fire instant (gap -> transition, overlap -> first pass)."""
    instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    a = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # post-transition offset: before gap
    lo, hi = (a, instant) if a < instant else (instant, a)
    return _first_offset_change(lo, hi, zone)


def _search_start(after: datetime, zone: ZoneInfo) -> datetime:
    """Naive wall time to search from so that its first match maps to an instant > after."""
    local = after.astimezone(zone)
    wall = local.replace(tzinfo=None, microsecond=0, fold=0)
    if local.fold:
        second_off = local.utcoffset()
        first_off = local.replace(fold=0).utcoffset()
        if second_off is not None and first_off is not None and first_off > second_off:
            # `after` is in the second pass of a repeated interval whose wall times all fired
            # during the first pass: resume at the end of the overlap.
            transition = _first_offset_change(after - (first_off - second_off), after, zone)
            end_wall = (transition + first_off).replace(tzinfo=None)
            return end_wall - _ONE_SECOND
    return wall


def _iter_cron(expr: str, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Yield strictly increasing fire instants (aware UTC) after `after` (aware UTC)."""
    compiled = _compile(expr)
    last = after
    skips = 0
    try:
        wall = compiled.next_wall(_search_start(after, zone))
        while wall is not None:
            instant = _wall_to_instant(wall, zone)
            if instant > last:
                skips = 0
                last = instant
                yield instant
            else:
                skips += 1
                if skips > _MAX_SKIPS:
                    raise RuntimeError(f"cron iteration for {expr!r} did not advance")
            wall = compiled.next_wall(wall)
    except OverflowError:
        return  # beyond the datetime range: exhausted
    except ValueError as exc:
        if "out of range" in str(exc):  # "year 10000 is out of range"
            return
        raise


@functools.lru_cache(maxsize=65536)
def _cron_next(expr: str, tz: str, after: datetime) -> datetime | None:
    return next(_iter_cron(expr, _zone(tz), after), None)


# --------------------------------------------------------------------------------------------
# Triggers
# --------------------------------------------------------------------------------------------


class Trigger(Protocol):
    """Something that yields fire instants."""

    def next_after(self, after: datetime) -> datetime | None:
        """First fire instant strictly after `after` (aware UTC); None when exhausted."""
        ...


class CronTrigger:
    """Cron expression evaluated in wall-clock time of `timezone` (see module docstring)."""

    __slots__ = ("expr", "timezone", "zone")

    expr: str
    timezone: str
    zone: ZoneInfo

    def __init__(self, expr: str, timezone: str = "UTC") -> None:
        self.expr = _compiled(expr).normalized
        self.zone = validate_timezone(timezone)
        self.timezone = timezone

    def next_after(self, after: datetime) -> datetime | None:
        """First fire instant strictly after `after`; None past the datetime range."""
        return _cron_next(self.expr, self.timezone, _as_utc(after))

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """All fire instants strictly after `after`, ascending (uncached)."""
        return _iter_cron(self.expr, self.zone, _as_utc(after))

    def __repr__(self) -> str:
        return f"CronTrigger({self.expr!r}, timezone={self.timezone!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronTrigger):
            return NotImplemented
        return (self.expr, self.timezone) == (other.expr, other.timezone)

    def __hash__(self) -> int:
        return hash((CronTrigger, self.expr, self.timezone))


class IntervalTrigger:
    """Fires at anchor + k*seconds (k >= 0 integer); absolute time, unaffected by DST."""

    __slots__ = ("_step", "anchor", "seconds")

    seconds: int
    anchor: datetime

    def __init__(self, seconds: int, anchor: datetime) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise TriggerError("every", f"interval must be an integer, got {seconds!r}")
        self.seconds = _check_interval(seconds, seconds)
        if not isinstance(anchor, datetime) or anchor.tzinfo is None:
            raise TriggerError("every", "interval anchor must be a timezone-aware datetime")
        self.anchor = anchor.astimezone(UTC)
        self._step = timedelta(seconds=seconds)

    def _first_index_after(self, after: datetime) -> int:
        if after < self.anchor:
            return 0
        return (after - self.anchor) // self._step + 1

    def _last_index_until(self, until: datetime) -> int:
        """Index of the last slot <= until (-1 if none)."""
        if until < self.anchor:
            return -1
        return (until - self.anchor) // self._step

    def slot(self, k: int) -> datetime | None:
        """The k-th slot, or None if it lies beyond the datetime range."""
        try:
            return self.anchor + self._step * k
        except OverflowError:
            return None

    def next_after(self, after: datetime) -> datetime | None:
        """First slot strictly after `after`."""
        return self.slot(self._first_index_after(_as_utc(after)))

    def count_between(self, after: datetime, until: datetime) -> int:
        """Number of slots t with after < t <= until (arithmetic, exact)."""
        first = self._first_index_after(_as_utc(after))
        last = self._last_index_until(_as_utc(until, "until"))
        return max(0, last - first + 1)

    def __repr__(self) -> str:
        return f"IntervalTrigger({self.seconds}, anchor={self.anchor.isoformat()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IntervalTrigger):
            return NotImplemented
        return (self.seconds, self.anchor) == (other.seconds, other.anchor)

    def __hash__(self) -> int:
        return hash((IntervalTrigger, self.seconds, self.anchor))


class AtTrigger:
    """Fires once at `at`."""

    __slots__ = ("at",)

    at: datetime

    def __init__(self, at: datetime) -> None:
        self.at = parse_at(at)

    def next_after(self, after: datetime) -> datetime | None:
        """`at` if it is strictly after `after`, else None (exhausted)."""
        return self.at if self.at > _as_utc(after) else None

    def __repr__(self) -> str:
        return f"AtTrigger({self.at.isoformat()!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AtTrigger):
            return NotImplemented
        return self.at == other.at

    def __hash__(self) -> int:
        return hash((AtTrigger, self.at))


def make_trigger(
    kind: str,
    value: str | int | datetime,
    timezone: str = "UTC",
    anchor: datetime | None = None,
) -> Trigger:
    """Build a validated trigger. kind: 'cron' | 'every' | 'at'.

    ``every`` accepts an int (seconds) or an interval string; its anchor defaults to the Unix
    epoch. The time zone is validated for every kind but only affects ``cron``.
    """
    trigger: Trigger
    if kind == "cron":
        if not isinstance(value, str):
            raise TriggerError("cron", f"cron expression must be a string, got {value!r}")
        expr = validate_cron(value)
        validate_timezone(timezone)
        trigger = CronTrigger(expr, timezone)
    elif kind == "every":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TriggerError("every", f"interval must be seconds or a string, got {value!r}")
        seconds = _check_interval(value, value) if isinstance(value, int) else parse_interval(value)
        validate_timezone(timezone)
        trigger = IntervalTrigger(seconds, _EPOCH if anchor is None else anchor)
    elif kind == "at":
        at = parse_at(value)  # type: ignore[arg-type]  # parse_at rejects other types itself
        validate_timezone(timezone)
        trigger = AtTrigger(at)
    else:
        raise TriggerError("kind", f"unknown trigger kind {kind!r}; expected cron, every or at")
    return trigger


# --------------------------------------------------------------------------------------------
# Enumeration helpers
# --------------------------------------------------------------------------------------------


def _iter_trigger(trigger: Trigger, after: datetime) -> Iterator[datetime]:
    if isinstance(trigger, CronTrigger):
        yield from trigger.iter_after(after)
        return
    current = _as_utc(after)
    while (nxt := trigger.next_after(current)) is not None:
        if nxt <= current:
            raise ValueError(f"{trigger!r}.next_after({current}) returned non-increasing {nxt}")
        yield nxt
        current = nxt


def upcoming(trigger: Trigger, after: datetime, n: int) -> list[datetime]:
    """The next `n` fire instants strictly after `after` (fewer if the trigger is exhausted)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    out: list[datetime] = []
    if n == 0:
        return out
    for t in _iter_trigger(trigger, after):
        out.append(t)
        if len(out) >= n:
            break
    return out


def slots_between(
    trigger: Trigger, after: datetime, until: datetime, limit: int, cap: int = COUNT_CAP
) -> tuple[list[datetime], int]:
    """Fire instants t with after < t <= until: (first `limit` of them, total count).

    The count is exact arithmetic for IntervalTrigger; otherwise it stops at `cap` (at most
    COUNT_CAP): pass `limit + 1` to learn only whether there are more than `limit`.
    """
    if limit < 0:
        raise ValueError("limit must be >= 0")
    after_utc, until_utc = _as_utc(after), _as_utc(until, "until")
    if until_utc <= after_utc:
        return [], 0
    if isinstance(trigger, IntervalTrigger):
        total = trigger.count_between(after_utc, until_utc)
        first = trigger._first_index_after(after_utc)
        slots = [trigger.slot(first + i) for i in range(min(limit, total))]
        return [s for s in slots if s is not None], total
    out: list[datetime] = []
    total = 0
    cap = min(cap, COUNT_CAP)
    for t in _iter_trigger(trigger, after_utc):
        if t > until_utc or total >= cap:
            break
        total += 1
        if len(out) < limit:
            out.append(t)
    return out, total

"""Schedule triggers: ``cron``, ``every`` and ``at``; time zones; DST rules.

Pure computation, no I/O. Every instant that goes in or comes out is an aware datetime; results
are always in UTC.

Trigger kinds
-------------
* ``cron`` -- a cron expression evaluated in an IANA time zone (:class:`CronTrigger`).
  5 fields (``min hour dom mon dow``) or 6 fields with *seconds first* (Quartz order:
  ``sec min hour dom mon dow``). Macros ``@yearly @annually @monthly @weekly @daily @midnight
  @hourly`` are accepted, ``@reboot`` is not. Quartz ``?`` in day-of-month or day-of-week means
  "no specific value" (same as ``*``). Month and weekday names (``JAN``, ``MON``) are accepted;
  day-of-week ``0`` and ``7`` are both Sunday. When both day-of-month and day-of-week are
  restricted, a day matches if *either* matches (classic cron). Parsing is delegated to
  ``croniter``; every parse problem surfaces as :class:`TriggerError` with ``field='cron'``.
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
Parsed expressions (including the ``croniter`` prototype object, which is expensive to build)
are cached per expression; :meth:`CronTrigger.next_after` results are cached per
``(expression, zone, after)``. Constructing a :class:`CronTrigger` is cheap after the first time
an expression is seen.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, CroniterError, croniter

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
# Reference start used to prove at validation time that an expression can fire at all.
_VALIDATION_START: Final = datetime(2000, 1, 1)
# Safety bound on consecutive wall times collapsing onto one instant (a gap is at most ~1 day).
_MAX_SKIPS: Final = 200_000

_MACROS: Final = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_FIELDS_5: Final = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELDS_6: Final = ("second", *_FIELDS_5)
_ALLOWED: Final = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L, nW or ?",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 (0 and 7 are Sunday), SUN-SAT, d#n, Ld or ?",
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
# Cron parsing (delegated to croniter)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Compiled:
    normalized: str  # whitespace collapsed, macro lower-cased, '?' kept
    proto: croniter  # prototype iterator; copy.copy() it before use (it is stateful)


def validate_cron(expr: str) -> str:
    """Validate a cron expression; return it normalized (whitespace collapsed, macro kept)."""
    return _compile(expr).normalized


def validate_cron5(expr: str) -> str:
    """Like :func:`validate_cron`, for the classic dialect only: five fields or a macro (no
    seconds field, no year field)."""
    tokens = expr.split() if isinstance(expr, str) else []
    if len(tokens) != 5 and not (len(tokens) == 1 and tokens[0].startswith("@")):
        raise TriggerError(
            "cron",
            "expected 5 fields (minute hour day-of-month month day-of-week) or a macro, "
            f"got {len(tokens)}",
        )
    return validate_cron(expr)


@functools.lru_cache(maxsize=16384)
def _compile(expr: str) -> _Compiled:
    if not isinstance(expr, str):
        raise TriggerError("cron", f"cron expression must be a string, got {type(expr).__name__}")
    if not expr.isascii():
        raise TriggerError("cron", f"cron expression {expr!r} contains non-ASCII characters")
    tokens = expr.split()
    if tokens and tokens[0].startswith("@"):
        macro = tokens[0].lower()
        if macro == "@reboot":
            raise TriggerError("cron", "@reboot is not supported (a scheduler has no reboot event)")
        if macro not in _MACROS:
            raise TriggerError(
                "cron", f"unknown macro {tokens[0]!r}; expected one of {', '.join(sorted(_MACROS))}"
            )
        if len(tokens) > 1:
            raise TriggerError("cron", f"macro {tokens[0]!r} must be used on its own")
        return _build(macro, macro, seconds=False)
    if len(tokens) not in (5, 6):
        raise TriggerError("cron", f"expected 5 or 6 fields, got {len(tokens)}")
    names = _FIELDS_6 if len(tokens) == 6 else _FIELDS_5
    for name, token in zip(names, tokens, strict=True):
        if "?" in token and (token != "?" or name not in ("day-of-month", "day-of-week")):
            raise TriggerError(
                "cron",
                f"invalid {name} field {token!r}: '?' is only allowed alone, "
                "in day-of-month or day-of-week",
            )
        if any(_HASH_RE.match(part) for part in token.split(",")):
            raise TriggerError(
                "cron", f"invalid {name} field {token!r}: hashed/random values (H, R) unsupported"
            )
    normalized = " ".join(tokens)
    runnable = " ".join("*" if t == "?" else t for t in tokens)
    return _build(normalized, runnable, seconds=len(tokens) == 6)


def _build(normalized: str, runnable: str, *, seconds: bool) -> _Compiled:
    try:
        proto = croniter(
            runnable, _VALIDATION_START, ret_type=datetime, second_at_beginning=seconds
        )
    except (CroniterError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise TriggerError("cron", _diagnose(normalized, runnable, seconds, exc)) from exc
    try:  # prove it can fire; croniter gives up after 50 years of search (a few ms at most)
        copy.copy(proto).get_next(datetime, _VALIDATION_START)
    except (CroniterError, ValueError, OverflowError) as exc:
        detail = ""
        try:
            croniter.expand(runnable, second_at_beginning=seconds, strict=True)
        except CroniterError as strict_exc:
            detail = f" ({_clean(str(strict_exc))})"
        raise TriggerError(
            "cron",
            f"cron expression {normalized!r} can never fire: no date matches its "
            f"day-of-month/month/day-of-week fields{detail}",
        ) from exc
    return _Compiled(normalized, proto)


def _clean(message: str) -> str:
    """Strip croniter's echo of the expression from an error message."""
    message = re.sub(r"^\[[^\]]*\]\s*", "", message.strip())
    message = re.sub(r"\s+Cron:.*$", "", message, flags=re.DOTALL)
    message = re.sub(r"^is not acceptable[.,]?\s*", "", message)
    return message.rstrip(". ") or "not acceptable"


def _diagnose(normalized: str, runnable: str, seconds: bool, exc: Exception) -> str:
    """Find which field croniter rejected and describe it."""
    tokens = runnable.split()
    names = _FIELDS_6 if seconds else _FIELDS_5
    for i, (name, token) in enumerate(zip(names, tokens, strict=True)):
        probe = ["*"] * len(tokens)
        probe[i] = token
        try:
            croniter.expand(" ".join(probe), second_at_beginning=seconds)
        except Exception as field_exc:
            text = str(field_exc)
            low = text.lower()
            if "step" in low:
                reason = "step must be a positive integer"
            elif "negative" in low:
                reason = "negative numbers are not allowed"
            elif "out of range" in low or "out of bands" in low:
                reason = "value out of range"
            elif "day_of_week value" in low:
                reason = "the n in d#n must be 1-5"
            elif "is not acceptable" in low and not _clean(text).strip():
                reason = "unrecognised value"
            else:
                reason = _clean(text)
                if reason == "not acceptable":
                    reason = "unrecognised value"
            return f"invalid {name} field {token!r}: {reason} (allowed: {_ALLOWED[name]})"
    return f"invalid cron expression {normalized!r}: {_clean(str(exc))}"


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
    """Naive wall time to start croniter from so its first result maps to an instant > after."""
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
    it = copy.copy(_compile(expr).proto)
    last = after
    skips = 0
    try:
        wall = it.get_next(datetime, _search_start(after, zone))
        while True:
            instant = _wall_to_instant(wall, zone)
            if instant > last:
                skips = 0
                last = instant
                yield instant
            else:
                skips += 1
                if skips > _MAX_SKIPS:
                    raise RuntimeError(f"cron iteration for {expr!r} did not advance")
            wall = it.get_next(datetime)
    except (CroniterBadDateError, OverflowError):
        return  # beyond datetime range / no further match: exhausted
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
        self.expr = _compile(expr).normalized
        self.zone = validate_timezone(timezone)
        self.timezone = timezone

    def next_after(self, after: datetime) -> datetime | None:
        """First fire instant strictly after `after`; None past the datetime range."""
        return _cron_next(self.expr, self.timezone, _as_utc(after))

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """All fire instants strictly after `after`, ascending (uncached, one croniter)."""
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

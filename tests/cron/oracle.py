"""A brute-force reference for gnomon's cron dialect over naive wall times.

Written independently of `gnomon.cron` and for clarity only: every field item becomes a
predicate that is evaluated on each candidate date and time, in the way Vixie cron tests its
bit sets minute by minute. The dialect is the one the README documents: Vixie cron's fields and
day rule (the two day fields are ANDed when either starts with ``*`` or is ``?``, ORed
otherwise), wrap-around ranges, and the ``L``, ``L-n``, ``LW``, ``nW``, ``d#n``, ``dL``/``Ld``
extensions.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _num(text: str, names: list[str], offset: int) -> int:
    up = text.upper()
    return names.index(up) + offset if up in names else int(text)


def _in_item(value: int, item: str, low: int, high: int, names: list[str], offset: int) -> bool:
    """Does `item` (``*``, ``a``, ``a-b``, ``a/s``, with optional ``/s``) select `value`?"""
    base, _, step_text = item.partition("/")
    step = int(step_text) if step_text else 1
    if base == "*":
        a, b = low, high
    elif "-" in base:
        left, right = base.split("-")
        a = _num(left, names, offset)
        b = high if right.upper() == "L" else _num(right, names, offset)
    else:
        a = _num(base, names, offset)
        b = high if step_text else a
    if a <= b:
        return a <= value <= b and (value - a) % step == 0
    cycle = high - low + 1
    pos = (value - a) % cycle
    return pos <= (b - a) % cycle and pos % step == 0


def _cron_weekday(day: date) -> int:
    return (day.weekday() + 1) % 7


def _in_dow_item(day: date, item: str) -> bool:
    wd = _cron_weekday(day)
    last = calendar.monthrange(day.year, day.month)[1]
    up = item.upper()
    if "#" in up:
        spec, _, n = up.partition("#")
        return (day.day - 1) // 7 + 1 == int(n) and _weekday_in(wd, spec)
    if up.endswith("L") or (up.startswith("L") and len(up) > 1):
        spec = up[:-1] if up.endswith("L") else up[1:]
        return day.day + 7 > last and _weekday_in(wd, spec)
    return _weekday_in(wd, up)


def _weekday_in(wd: int, item: str) -> bool:
    """Does the day-of-week item select weekday `wd` (0 = Sunday)? 7 is Sunday too; a range
    that starts after its end wraps over the 7-day week."""
    base, slash, step = item.partition("/")
    left, dash, right = base.partition("-")
    if dash:
        a, b = _num(left, WEEKDAYS, 0), _num(right, WEEKDAYS, 0)
        if a == 7 and b != 7:
            a = 0
        if a > b:
            return _in_item(wd, f"{a}-{b}{slash}{step}", 0, 6, WEEKDAYS, 0)
        item = f"{a}-{b}{slash}{step}"
    return _in_item(wd, item, 0, 7, WEEKDAYS, 0) or (
        wd == 0 and _in_item(7, item, 0, 7, WEEKDAYS, 0)
    )


def _weekdays_of_month(day: date) -> list[int]:
    last = calendar.monthrange(day.year, day.month)[1]
    return [d for d in range(1, last + 1) if date(day.year, day.month, d).weekday() < 5]


def _in_dom_item(day: date, item: str) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    up = item.upper()
    if up == "L":
        return day.day == last
    if up == "LW":
        return day.day == _weekdays_of_month(day)[-1]
    if m := re.fullmatch(r"L-(\d+)", up):
        return day.day == last - int(m.group(1))
    if m := re.fullmatch(r"(\d+)W|W(\d+)", up):
        target = min(int(m.group(1) or m.group(2)), last)
        nearest = min(_weekdays_of_month(day), key=lambda d: abs(d - target))
        return day.day == nearest
    return _in_item(day.day, up, 1, 31, [], 0)


@dataclass(frozen=True)
class Oracle:
    """One expression, matched by brute force."""

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    dom: str
    dow: str

    @classmethod
    def parse(cls, expr: str) -> Oracle:
        expr = MACROS.get(expr.strip().lower(), expr)
        fields = expr.split()
        sec = fields.pop(0) if len(fields) == 6 else "0"
        minute, hour, dom, month, dow = fields

        def values(
            token: str, low: int, high: int, names: list[str], offset: int
        ) -> frozenset[int]:
            return frozenset(
                v
                for v in range(low, high + 1)
                if any(_in_item(v, it, low, high, names, offset) for it in token.split(","))
            )

        return cls(
            values(sec, 0, 59, [], 0),
            values(minute, 0, 59, [], 0),
            values(hour, 0, 23, [], 0),
            values(month, 1, 12, MONTHS, 1),
            dom,
            dow,
        )

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom_any = self.dom == "?" or any(_in_dom_item(day, it) for it in self.dom.split(","))
        dow_any = self.dow == "?" or any(_in_dow_item(day, it) for it in self.dow.split(","))
        if self.dom[0] in "*?" or self.dow[0] in "*?":
            return dom_any and dow_any
        return dom_any or dow_any

    def next_after(self, start: datetime, horizon_days: int) -> datetime | None:
        """First matching wall time strictly after `start`, searching `horizon_days` days."""
        day = start.date()
        for _ in range(horizon_days + 1):
            if self.day_matches(day):
                same_day = day == start.date()
                for h in sorted(self.hours):
                    if same_day and h < start.hour:
                        continue
                    for m in sorted(self.minutes):
                        if same_day and (h, m) < (start.hour, start.minute):
                            continue
                        for s in sorted(self.seconds):
                            t = datetime(day.year, day.month, day.day, h, m, s)
                            if t > start:
                                return t
            day += timedelta(days=1)
        return None

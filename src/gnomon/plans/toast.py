"""TOAST ground schedules (the master schedule): parsed once, cached by content or path+mtime.

Format: `#Site Telescope Latitude Longitude Elevation` header, the site row, a column header,
then one row per scan: start and stop UTC (date time), start/stop MJD, rotation, patch name,
az min, az max, el, R/S, sun/moon positions, phase, pass, sub-scan.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from gnomon.plans.sky import Site

SAMPLE = "sample"


class ScheduleError(ValueError):
    """A master schedule that cannot be read or parsed."""


class Scan(NamedTuple):
    start: float
    stop: float
    patch: str
    az_min: float
    az_max: float
    el: float


@dataclass(frozen=True)
class MasterSchedule:
    site: Site
    scans: tuple[Scan, ...]  # sorted by start
    starts: tuple[float, ...]
    max_length: float

    def overlapping(self, t0: float, t1: float) -> list[Scan]:
        """Scans that overlap [t0, t1], in order."""
        i = bisect.bisect_left(self.starts, t0 - self.max_length)
        out = []
        for scan in self.scans[i:]:
            if scan.start >= t1:
                break
            if scan.stop > t0:
                out.append(scan)
        return out


@lru_cache(maxsize=4096)
def _day(date: str) -> float:
    return datetime.fromisoformat(date).replace(tzinfo=UTC).timestamp()


def _time(date: str, clock: str) -> float:
    h, m, s = clock.split(":")
    return _day(date) + int(h) * 3600 + int(m) * 60 + float(s)


def parse(text: str) -> MasterSchedule:
    """A master schedule from its text; ScheduleError naming the line that is wrong."""
    site: Site | None = None
    scans: list[Scan] = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        try:
            if site is None:
                site = Site(parts[0], float(parts[2]), float(parts[3]), float(parts[4]))
                continue
            start, stop = _time(parts[0], parts[1]), _time(parts[2], parts[3])
            scans.append(
                Scan(start, stop, parts[7], float(parts[8]), float(parts[9]), float(parts[10]))
            )
        except (IndexError, ValueError) as exc:
            what = "site row" if site is None else "scan row"
            raise ScheduleError(f"master schedule line {n}: not a TOAST {what}") from exc
    if site is None:
        raise ScheduleError("master schedule has no site row")
    scans.sort(key=lambda s: s.start)
    return MasterSchedule(
        site=site,
        scans=tuple(scans),
        starts=tuple(s.start for s in scans),
        max_length=max((s.stop - s.start for s in scans), default=0.0),
    )


_INLINE: OrderedDict[str, MasterSchedule] = OrderedDict()


def _parse_inline(text: str) -> MasterSchedule:
    digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
    hit = _INLINE.get(digest)
    if hit is None:
        hit = _INLINE[digest] = parse(text)
        if len(_INLINE) > 16:
            _INLINE.popitem(last=False)
    return hit


@lru_cache(maxsize=16)
def _load_path(path: str, mtime_ns: int, size: int) -> MasterSchedule:
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScheduleError(f"cannot read master schedule '{path}'") from exc
    return parse(text)


def sample_path() -> Path:
    """The bundled sample master schedule (package data)."""
    return Path(__file__).parent / "data" / "sample_schedule.txt"


def sample_text() -> str:
    return sample_path().read_text()


def is_inline(source: str) -> bool:
    return "\n" in source


def load(source: str, allowed_dirs: list[Path] | None = None) -> MasterSchedule:
    """A master schedule from `source`: "sample" (the bundled one), inline text (anything with
    a newline) or a file path. With `allowed_dirs`, a path must lie inside one of them."""
    if source == SAMPLE:
        source = str(sample_path())
        allowed_dirs = None
    if is_inline(source):
        return _parse_inline(source)
    path = Path(source).expanduser()
    try:
        resolved = path.resolve()
        if allowed_dirs is not None and not any(
            resolved.is_relative_to(d.resolve()) for d in allowed_dirs
        ):
            raise ScheduleError(
                f"master schedule path '{source}' is not in a directory this server allows "
                "(GNOMON_PLAN_SCHEDULE_DIRS); send the schedule inline or use 'sample'"
            )
        st = os.stat(resolved)
    except OSError as exc:
        raise ScheduleError(f"master schedule file '{source}' not found") from exc
    return _load_path(str(resolved), st.st_mtime_ns, st.st_size)

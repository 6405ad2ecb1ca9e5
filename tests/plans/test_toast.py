import os
from pathlib import Path

import pytest

from gnomon.plans import toast
from tests.plans.helpers import ts


def test_bundled_sample() -> None:
    m = toast.load(toast.SAMPLE)
    assert (m.site.lat, m.site.lon, m.site.elevation) == (-22.958, -67.786, 5200.0)
    assert len(m.scans) > 100
    assert list(m.starts) == sorted(m.starts)
    first = m.scans[0]
    assert first.start == ts("2026-01-01 00:17:00")
    assert first.az_min < first.az_max and first.el in (50.0, 60.0)


def test_shared_schedule(shared_schedule: str) -> None:
    m = toast.load(shared_schedule)
    assert len(m.scans) == 5460
    s = m.scans[0]
    assert (s.start, s.stop) == (ts("2023-01-01 00:22:00"), ts("2023-01-01 01:09:30"))
    assert (s.patch, s.az_min, s.az_max, s.el) == (
        "DEC-050..-030_RA+000.000..+011.613",
        218.08,
        250.32,
        50.0,
    )
    assert toast.load(shared_schedule) is m  # parsed once


def test_overlapping() -> None:
    m = toast.load(toast.SAMPLE)
    t0, t1 = ts("2026-01-02 00:00"), ts("2026-01-02 06:00")
    got = m.overlapping(t0, t1)
    assert got == [s for s in m.scans if s.stop > t0 and s.start < t1]


def test_inline_text_is_cached_by_content() -> None:
    text = toast.sample_text()
    a = toast.load(text)
    b = toast.load("".join(list(text)))  # equal text, another object
    assert a is b and len(a.scans) == len(toast.load(toast.SAMPLE).scans)


def test_path_is_reparsed_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    lines = toast.sample_text().splitlines(keepends=True)
    path.write_text("".join(lines[:10]))
    a = toast.load(str(path))
    path.write_text("".join(lines[:12]))
    os.utime(path, ns=(1, 10**18))
    b = toast.load(str(path))
    assert len(b.scans) == len(a.scans) + 2


def test_bad_schedules_name_the_line(tmp_path: Path) -> None:
    with pytest.raises(toast.ScheduleError, match="line 4"):
        toast.load(toast.sample_text().splitlines()[0] + "\n ATACAMA SAT 1 2 3\n#\n bad row\n")
    with pytest.raises(toast.ScheduleError, match="no site row"):
        toast.load("# only a comment\n\n")
    with pytest.raises(toast.ScheduleError, match="not found"):
        toast.load(str(tmp_path / "missing.txt"))


def test_paths_outside_the_allowed_dirs_are_refused(tmp_path: Path) -> None:
    inside = tmp_path / "ok"
    inside.mkdir()
    (inside / "s.txt").write_text(toast.sample_text())
    assert toast.load(str(inside / "s.txt"), [inside]).scans
    with pytest.raises(toast.ScheduleError, match="not in a directory"):
        toast.load(str(inside / ".." / "ok" / ".." / "x.txt"), [inside])
    with pytest.raises(toast.ScheduleError, match="not in a directory"):
        toast.load("/etc/passwd", [inside])
    assert toast.load(toast.SAMPLE, [inside]).scans  # the bundled sample always works

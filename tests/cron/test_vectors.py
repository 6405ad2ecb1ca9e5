"""Test vectors ported from the test suites of cronsim and croniter (data/ported_vectors.json).

Each ``fires`` row gives an expression, a zone, a start (a wall time in that zone) and the next
fire times (instants with an offset, or UTC wall times). Rows marked ``note: adapted`` carry
gnomon's documented answer where the original library's differs (Vixie day rule, ``a-a``,
DST one-pass rule, seconds-first order). UTC rows are also checked against the oracle, so a
mistyped vector shows up. ``refused`` rows must raise TriggerError; ``accepted`` rows must not.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gnomon.cron import CronTrigger, TriggerError, upcoming, validate_cron
from tests.cron.oracle import Oracle

VECTORS: dict[str, list[dict[str, Any]]] = json.loads(
    (Path(__file__).parent / "data" / "ported_vectors.json").read_text()
)


def _instant(text: str, zone: ZoneInfo) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=zone)


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{r['expr']}@{r.get('start', '')}" for r in rows]


@pytest.mark.parametrize("row", VECTORS["fires"], ids=_ids(VECTORS["fires"]))
def test_fires(row: dict[str, Any]) -> None:
    zone = ZoneInfo(row["tz"])
    start = _instant(row["start"], zone)
    expected = [_instant(t, zone).astimezone(UTC) for t in row["expect"]]
    got = upcoming(CronTrigger(row["expr"], row["tz"]), start, len(expected))
    assert got == expected, row["source"]


@pytest.mark.parametrize(
    "row", [r for r in VECTORS["fires"] if r["tz"] == "UTC"], ids=lambda r: r["expr"]
)
def test_fires_agree_with_oracle(row: dict[str, Any]) -> None:
    oracle = Oracle.parse(row["expr"])
    current = datetime.fromisoformat(row["start"])
    for text in row["expect"]:
        current = oracle.next_after(current, 800 * 366)
        assert current is not None
        assert current.replace(tzinfo=UTC) == _instant(text, ZoneInfo("UTC")), row["source"]


@pytest.mark.parametrize("row", VECTORS["refused"], ids=_ids(VECTORS["refused"]))
def test_refused(row: dict[str, Any]) -> None:
    with pytest.raises(TriggerError) as info:
        validate_cron(row["expr"])
    assert info.value.field == "cron"


@pytest.mark.parametrize("row", VECTORS["accepted"], ids=_ids(VECTORS["accepted"]))
def test_accepted(row: dict[str, Any]) -> None:
    assert validate_cron(row["expr"]) == " ".join(row["expr"].split())

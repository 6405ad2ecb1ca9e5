"""Group commit: parts waiting together share one write; a bad part fails only its caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from gnomon.service.commits import GroupCommit


async def test_concurrent_parts_share_one_write_and_a_bad_one_fails_alone() -> None:
    writes: list[list[int]] = []

    async def write(parts: Sequence[int]) -> None:
        if -1 in parts:
            raise ValueError("bad part")
        writes.append(list(parts))

    commits: GroupCommit[int] = GroupCommit(write, "test")
    commits.start()
    try:
        results = await asyncio.gather(*(commits.add(n) for n in range(50)))
        assert results == [None] * 50
        assert sorted(n for w in writes for n in w) == list(range(50))
        assert len(writes) < 5  # joined, not one write each

        writes.clear()
        outcome = await asyncio.gather(
            commits.add(1), commits.add(-1), commits.add(2), return_exceptions=True
        )
        assert outcome[0] is None and outcome[2] is None
        assert isinstance(outcome[1], ValueError)
        assert sorted(n for w in writes for n in w) == [1, 2]
    finally:
        await commits.stop()


async def test_written_directly_when_not_started() -> None:
    seen: list[Sequence[str]] = []

    async def write(parts: Sequence[str]) -> None:
        seen.append(parts)

    commits: GroupCommit[str] = GroupCommit(write, "test")
    await commits.add("a")
    assert seen == [["a"]]
    with pytest.raises(ValueError):
        await GroupCommit(_fail, "test").add("x")


async def _fail(parts: Sequence[str]) -> None:
    raise ValueError(parts)

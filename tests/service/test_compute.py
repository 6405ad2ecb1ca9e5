"""The compute threads: CPU work off the event loop, bounded, refused past the bound."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

import pytest

from gnomon import cron
from gnomon.errors import Busy
from gnomon.service.compute import Compute


async def test_work_runs_off_the_loop_and_past_the_bound_is_refused() -> None:
    compute = Compute(workers=1, queue=1)
    gate = threading.Event()
    loop_thread = threading.get_ident()

    def work() -> int:
        gate.wait(5)
        return threading.get_ident()

    first = asyncio.ensure_future(compute.run(work))
    second = asyncio.ensure_future(compute.run(work))
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    await asyncio.sleep(0.01)  # the loop is free while both wait
    assert time.monotonic() - t0 < 0.5
    with pytest.raises(Busy) as refused:
        await compute.run(work)
    assert refused.value.status == 503 and refused.value.retry_after_s >= 1
    assert "GNOMON_COMPUTE_WORKERS" in refused.value.message
    gate.set()
    assert loop_thread not in {await first, await second}
    assert compute.held == 0
    compute.close()


async def test_a_caller_that_stops_waiting_keeps_its_place_until_the_work_ends() -> None:
    compute = Compute(workers=1, queue=0)
    gate = threading.Event()
    waiting = asyncio.ensure_future(compute.run(gate.wait, 5))
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.sleep(0.05)
    with pytest.raises(Busy):  # the thread is still busy with it
        await compute.run(gate.wait, 5)
    gate.set()
    await asyncio.sleep(0.1)
    assert compute.held == 0
    assert await compute.run(lambda: 7) == 7
    compute.close()


def test_counting_slots_stops_at_the_cap() -> None:
    trig = cron.make_trigger("cron", "* * * * *", "UTC")
    start, end = datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
    t0 = time.monotonic()
    slots, total = cron.slots_between(trig, start, end, 10, cap=1001)
    assert (len(slots), total) == (10, 1001)
    assert time.monotonic() - t0 < 2

"""A server down for ~8 s comes back: slots it could not fire are accounted for.

With catchup_window_s=3, slots older than 3 s at the restart are recorded as one `missed`
range; of those inside the window, catchup=latest runs the newest and records the others as
one `coalesced` range, catchup=all runs each. Every slot is accounted for exactly once: by a
run or by a `fires` row.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from typing import Any

import httpx

from tests.engine.conftest import Cluster
from tests.server import wait_for

WINDOW_S = 3
DOWN_S = 8.0


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def slots_of(api: httpx.Client, sid: str) -> list[float]:
    resp = api.get("/v1/runs", params={"schedule": sid, "limit": 1000})
    assert resp.status_code == 200, resp.text
    return sorted(ts(r["scheduled_for"]) for r in resp.json()["items"])


def fires_of(api: httpx.Client, sid: str) -> list[dict[str, Any]]:
    resp = api.get(f"/v1/schedules/{sid}/fires")
    assert resp.status_code == 200, resp.text
    times = ("fire_at", "until_at", "recorded_at")
    return [{**f, **{k: ts(f[k]) for k in times}} for f in resp.json()["items"]]


def metric(text: str, name: str, status: str) -> float:
    m = re.search(rf'^{name}\{{status="{status}"\}} (\S+)$', text, re.M)
    assert m, f"{name}{{status={status!r}}} not in /metrics"
    return float(m.group(1))


def test_restart_records_missed_and_coalesced_slots(cluster: Cluster) -> None:
    srv = cluster.server()
    specs = {
        "every": {"every": "1s", "catchup_window_s": WINDOW_S},
        "cron": {"cron": "* * * * * *", "catchup_window_s": WINDOW_S},
        "all": {"every": "1s", "catchup_window_s": WINDOW_S, "catchup": "all"},
    }
    with srv.client() as api:
        job = api.post("/v1/jobs", json={"name": "tick", "action": {"type": "noop"}})
        assert job.status_code == 201, job.text
        ids = {}
        for name, spec in specs.items():
            resp = api.post(f"/v1/jobs/{job.json()['id']}/schedules", json=spec)
            assert resp.status_code == 201, resp.text
            ids[name] = resp.json()["id"]
        wait_for(lambda: all(len(slots_of(api, s)) >= 2 for s in ids.values()), timeout=10)
    srv.stop()
    time.sleep(DOWN_S)

    srv2 = cluster.server()
    with srv2.client() as api:
        # The catch-up happens in the restarted scheduler's first tick.
        wait_for(lambda: all(fires_of(api, s) for s in ids.values()), timeout=10)
        fires = {name: fires_of(api, sid) for name, sid in ids.items()}
        metrics = api.get("/metrics").text
        slots = {name: slots_of(api, sid) for name, sid in ids.items()}
    srv2.stop()

    for name, rows in fires.items():
        missed = [f for f in rows if f["status"] == "missed"]
        coalesced = [f for f in rows if f["status"] == "coalesced"]
        assert len(missed) == 1, (name, rows)
        m = missed[0]
        caught_up_at = m["recorded_at"]
        # The missed range: from the first slot not fired before the stop up to the window.
        before = [t for t in slots[name] if t < m["fire_at"]]
        assert before, (name, slots[name], rows)
        assert m["fire_at"] == before[-1] + 1, (name, before[-3:], m)
        assert abs(m["until_at"] - (caught_up_at - WINDOW_S)) < 1e-3, (name, m)
        assert m["count"] == math.ceil(m["until_at"]) - m["fire_at"], (name, m)
        assert m["count"] >= DOWN_S - WINDOW_S - 1, (name, m)

        caught_up = [t for t in slots[name] if m["fire_at"] <= t <= caught_up_at]
        window = list(range(math.ceil(m["until_at"]), math.floor(caught_up_at) + 1))
        assert len(window) == WINDOW_S, (name, window, m)
        if name == "all":
            # Each slot inside the window ran; nothing coalesced.
            assert coalesced == [], (name, rows)
            assert caught_up == window, (name, caught_up, window)
        else:
            # The newest slot ran; the older ones in the window are one coalesced range.
            assert len(coalesced) == 1, (name, rows)
            c = coalesced[0]
            assert (c["fire_at"], c["until_at"], c["count"]) == (window[0], window[-2], 2), c
            assert c["recorded_at"] == caught_up_at, (c, m)
            assert caught_up == window[-1:], (name, caught_up, window)

        # Every slot from the first to the last run is accounted for exactly once.
        accounted = list(slots[name])
        for f in rows:
            last = f["until_at"] if f["status"] == "coalesced" else math.ceil(f["until_at"]) - 1
            accounted += range(int(f["fire_at"]), int(last) + 1)
        first, newest = slots[name][0], slots[name][-1]
        expected = list(range(int(first), int(newest) + 1))
        assert sorted(accounted) == expected, (name, sorted(accounted), rows)

    # /metrics counts the recorded slots from the ledger (this database holds only these).
    missed_total = sum(
        f["count"] for rows in fires.values() for f in rows if f["status"] == "missed"
    )
    assert metric(metrics, "gnomon_schedule_slots_recorded", "missed") == missed_total
    assert metric(metrics, "gnomon_schedule_slots_recorded", "coalesced") == 4
    # The restarted process did the catch-up, so its own counter agrees.
    assert metric(metrics, "gnomon_schedule_slots_not_run_total", "missed") == missed_total

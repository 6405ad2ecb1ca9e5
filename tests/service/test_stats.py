"""Stats.summary: missed slots from downtime, and the throughput buckets."""

import time

from gnomon.domain import Principal, Role
from gnomon.service import Service
from gnomon.specs import JobSpec, RunRequest
from tests.service.conftest import ADMIN
from tests.service.test_schedules import make, ts


async def test_missed_slots_after_downtime(svc: Service) -> None:
    sid = await make(svc, "2026-05-01T00:00:00", every="1m", catchup_window_s=300)
    # Down from 00:00 to 01:00: slots older than 5 minutes are missed.
    await svc.schedules.fire_due(ts("2026-05-01T01:00:00") + 0.5)
    s = await svc.stats.summary(ADMIN)
    assert s["missed_total"] == 55
    (m,) = s["missed"]
    assert m["schedule_id"] == sid and m["count"] == 55 and m["status"] == "missed"
    assert m["fire_at"] == ts("2026-05-01T00:01:00")
    nobody = Principal(token_id="v", name="v", roles={"elsewhere": Role.viewer})
    assert (await svc.stats.summary(nobody))["missed"] == []


async def test_buckets_cover_the_window(svc: Service) -> None:
    job = await svc.jobs.create(
        ADMIN, JobSpec.model_validate({"name": "j", "action": {"type": "noop"}})
    )
    await svc.runs.submit(ADMIN, job["id"], [RunRequest()])
    await svc.runs.commits.stop()
    s = await svc.stats.summary(ADMIN, window_s=600, buckets=10)
    assert s["bucket_s"] == 60 and len(s["throughput"]) == 10
    assert [round(b["start"] - s["throughput"][0]["start"]) for b in s["throughput"]] == [
        60 * i for i in range(10)
    ]
    assert abs(s["throughput"][-1]["start"] + 60 - time.time()) < 5
    assert s["runs"]["queued"] + s["runs"]["pending"] == 1
    assert s["queues"] == [{"executor": "local", "queued": 1, "active": 0, "off": None}]
    assert s["finished"] == 0 and s["failure_rate"] == 0.0

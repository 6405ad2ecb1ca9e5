import pytest

from gnomon.errors import Conflict
from gnomon.plans.requests import DispatchSpec, PlanSpec
from gnomon.service import Service
from gnomon.service.plans import diff_blocks
from gnomon.store import plans as plan_store
from tests.service.conftest import ADMIN


def blk(name: str, t0: float, t1: float, az: float = 10.0) -> dict:
    return {"name": name, "kind": "survey", "t0": t0, "t1": t1, "az": az, "alt": 50.0, "throw": 5.0}


def test_diff_blocks() -> None:
    old = [blk("a", 0, 100), blk("b", 100, 200), blk("c", 200, 300)]
    new = [blk("a", 0, 100), blk("b", 120, 200), blk("d", 200, 300), blk("c", 400, 500, az=11)]
    d = diff_blocks(old, new)
    assert d["unchanged"] == 1
    assert [(m["from"]["t0"], m["to"]["t0"]) for m in d["moved"]] == [(100, 120)]
    assert [b["name"] for b in d["added"]] == ["d", "c"]  # c moved *and* re-pointed: new
    assert [b["name"] for b in d["removed"]] == ["c"]


async def test_an_unverified_plan_is_not_dispatched(svc: Service) -> None:
    plan = await svc.plans.create(
        ADMIN, PlanSpec(policy="dummy", t0="2026-01-01", t1="2026-01-01 01:00")
    )
    async with svc.db.write() as conn:
        await conn.execute(
            plan_store.plans.update()
            .where(plan_store.plans.c.id == plan["id"])
            .values(verified=False)
        )
    with pytest.raises(Conflict, match="did not pass verification"):
        await svc.plans.dispatch(ADMIN, plan["id"], DispatchSpec(site="s1"))

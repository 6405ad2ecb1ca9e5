"""Plans: generate (policy + verifier), keep, revise, compare, dispatch."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gnomon.config import Settings
from gnomon.domain import Principal, Role
from gnomon.errors import Conflict, GnomonError, NotFound
from gnomon.ids import new_id
from gnomon.plans import policy as policies
from gnomon.plans.policy import Block, Context, PolicyError, merge
from gnomon.plans.requests import DispatchSpec, PlanRevision, PlanSpec
from gnomon.plans.script import sorunlib_block
from gnomon.plans.verify import verify
from gnomon.service import reads
from gnomon.service.access import DEFAULT_SPACE, require
from gnomon.service.compute import Compute
from gnomon.specs import JobSpec, RunRequest
from gnomon.store import access as access_store
from gnomon.store import plans as store
from gnomon.store.db import Database

if TYPE_CHECKING:
    from gnomon.service.jobs import Jobs
    from gnomon.service.runs import Runs

# Blocks this close (s) and with the same pointing count as the same block in a diff.
SAME_S = 1.0


class PlanInvalid(GnomonError):
    """The policy refused its input: unknown policy or config key, bad window, bad schedule."""

    status = 422
    code = "invalid_plan"


def generate(
    policy_name: str,
    config: dict[str, Any] | None,
    t0: float,
    t1: float,
    ctx: Context,
    ignore_unknown: bool = False,
) -> dict[str, Any]:
    """Run a policy and the verifier; PlanInvalid for the caller's mistakes. Pure CPU. With
    `ignore_unknown`, config keys the policy does not know are left out (named in
    `ignored`) instead of refused."""
    ignored: list[str] = []
    try:
        policy = policies.get(policy_name)
        if ignore_unknown:
            config, ignored = policy.known(config)
        cfg = policy.config(config)
        draft = policy.generate(t0, t1, cfg, ctx)
    except PolicyError as exc:
        raise PlanInvalid(str(exc)) from exc
    report = verify(draft.blocks, t0, t1, draft.constraints)
    return {
        "blocks": [b.to_dict() for b in draft.blocks],
        "commands": draft.commands,
        "verification": report,
        "ignored": ignored,
    }


class Plans:
    def __init__(self, db: Database, settings: Settings, compute: Compute, jobs: Jobs, runs: Runs):
        self.db = db
        self.settings = settings
        self.compute = compute
        self.jobs = jobs
        self.runs = runs
        policies.names()  # import the policies now, not on the first request

    def context(self) -> Context:
        dirs = self.settings.plan_schedule_dirs
        return Context(schedule_dirs=list(dirs))

    async def preview(
        self,
        policy_name: str,
        config: dict[str, Any] | None,
        t0: float,
        t1: float,
        *,
        ignore_unknown: bool = False,
    ) -> dict[str, Any]:
        """A plan generated and verified, not kept (the schedule face). The window is bounded
        by GNOMON_PLAN_WINDOW_MAX_S; the work runs in the compute threads (Busy when full).
        `ignore_unknown`: see `generate`."""
        most = self.settings.plan_window_max_s
        if t1 - t0 > most:
            raise PlanInvalid(
                f"Invalid time window: at most {_span(most)} (GNOMON_PLAN_WINDOW_MAX_S={most:g})"
            )
        ctx = self.context()
        return await self.compute.run(generate, policy_name, config, t0, t1, ctx, ignore_unknown)

    async def create(self, who: Principal, spec: PlanSpec) -> dict[str, Any]:
        space = spec.space or DEFAULT_SPACE
        require(who, space, Role.developer)
        return await self._make(space, spec.policy, spec.config, spec.t0, spec.t1, None, 1)

    async def revise(self, who: Principal, plan_id: str, rev: PlanRevision) -> dict[str, Any]:
        old = await self.get(who, plan_id, Role.developer)
        config = merge(old["config"], rev.config)
        t0 = old["t0"] if rev.t0 is None else rev.t0
        t1 = old["t1"] if rev.t1 is None else rev.t1
        return await self._make(
            old["space"], old["policy"], config, t0, t1, old["id"], old["revision"] + 1
        )

    async def _make(
        self,
        space: str,
        policy_name: str,
        config: dict[str, Any],
        t0: float,
        t1: float,
        parent_id: str | None,
        revision: int,
    ) -> dict[str, Any]:
        made = await self.preview(policy_name, config, t0, t1)
        row = {
            "id": new_id(),
            "space": space,
            "policy": policy_name,
            "config": config,
            "t0": t0,
            "t1": t1,
            "parent_id": parent_id,
            "revision": revision,
            "blocks": made["blocks"],
            "commands": made["commands"],
            "verification": made["verification"],
            "verified": made["verification"]["ok"],
            "dispatches": [],
            "created_at": time.time(),
        }
        async with self.db.write() as conn:
            if await access_store.get_space(conn, space) is None:
                raise NotFound(f"space '{space}' not found")
            await store.insert(conn, row)
        return row

    async def get(self, who: Principal, plan_id: str, role: Role = Role.viewer) -> dict[str, Any]:
        return await reads.one(self.db, store.get, plan_id, "plan", who, role)

    async def list(
        self,
        who: Principal,
        *,
        space: str | None = None,
        parent_id: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], str | None]:
        return await reads.listing(
            self.db, store.list_, who, space=space, cursor=cursor, limit=limit, parent_id=parent_id
        )

    async def diff(self, who: Principal, a_id: str, b_id: str) -> dict[str, Any]:
        a = await self.get(who, a_id)
        b = await self.get(who, b_id)
        changes = await self.compute.run(diff_blocks, a["blocks"], b["blocks"])
        return {"from": a_id, "to": b_id, **changes}

    async def dispatch(self, who: Principal, plan_id: str, spec: DispatchSpec) -> dict[str, Any]:
        """Queue a verified plan at a target: a site (one task run per block, at its start)
        or a job (one run with the whole script). Once per (plan, target): the key of the
        plan's dispatches decides, in the transaction that writes the runs, so a repeated or
        concurrent dispatch queues nothing and returns the dispatch there is (`created`
        False)."""
        plan = await self.get(who, plan_id, Role.developer)
        if not plan["verified"]:
            raise Conflict(f"plan '{plan_id}' did not pass verification; it cannot be dispatched")
        if not plan["blocks"]:
            raise Conflict(f"plan '{plan_id}' has no blocks to dispatch")
        if spec.site is not None:
            target = f"site:{spec.site}"
        else:
            assert spec.job is not None
            job = await self.jobs.find(who, spec.job, plan["space"])
            if job["space"] != plan["space"]:
                raise Conflict("the job must be in the plan's space")
            target = f"job:{job['id']}"
        async with self.db.read() as conn:
            done = await store.dispatch_of(conn, plan_id, target)
        if done is not None:
            return {"plan_id": plan_id, **done, "created": False}
        if spec.site is not None:
            job = await self._site_job(who, plan, spec.site)
            requests = [
                RunRequest(params=block_params(plan, i, b), at=_aware(b["t0"]))
                for i, b in enumerate(plan["blocks"])
            ]
        else:
            params = {"plan_id": plan["id"], "policy": plan["policy"], "commands": plan["commands"]}
            requests = [RunRequest(params=params, at=_aware(plan["blocks"][0]["t0"]))]
        job, rows = await self.runs.prepare(who, job["id"], requests)
        record = {
            "at": time.time(),
            "site": spec.site,
            "job_id": job["id"],
            "run_ids": [r["id"] for r in rows],
        }
        async with self.db.write() as conn:
            key = {"plan_id": plan_id, "target": target}
            created = await store.add_dispatch(conn, {**key, **record})
            if created:
                await self.runs.write_in(conn, rows)
            else:  # another request got there first
                done = await store.dispatch_of(conn, plan_id, target)
                assert done is not None
                record = done
        if created:
            self.runs.announce(rows)
        return {"plan_id": plan_id, **record, "created": created}

    async def _site_job(self, who: Principal, plan: dict[str, Any], site: str) -> dict[str, Any]:
        """The job that carries a plan's blocks to a site (made on first dispatch)."""
        name = f"plan-{plan['id']}@{site}"
        spec = JobSpec.model_validate(
            {
                "name": name,
                "space": plan["space"],
                "executor": f"site:{site}",
                "action": {"type": "task", "name": "plan.block", "params": {}},
            }
        )
        try:
            return await self.jobs.create(who, spec)
        except Conflict:
            return await self.jobs.find(who, name, plan["space"])


def _span(seconds: float) -> str:
    """A window's length in words: '7 days', '12 hours', '90 s'."""
    for unit, size in (("day", 86400), ("hour", 3600)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds:g} s"


def _aware(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def block_params(plan: dict[str, Any], index: int, b: dict[str, Any]) -> dict[str, Any]:
    """What a site agent gets for one block: where, when, and the block's script."""
    params = {"plan_id": plan["id"], "index": index, **b}
    if b.get("az") is not None:
        params["script"] = sorunlib_block(Block.from_dict(b))
    return params


def _same_pointing(x: dict[str, Any], y: dict[str, Any]) -> bool:
    def r(v: Any) -> Any:
        return None if v is None else round(v, 2)

    return (
        x["name"] == y["name"]
        and x["kind"] == y["kind"]
        and r(x.get("az")) == r(y.get("az"))
        and r(x.get("alt")) == r(y.get("alt"))
        and r(x.get("throw")) == r(y.get("throw"))
    )


def diff_blocks(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """Blocks added, removed, moved (same name and pointing, other times) and unchanged.

    A new block is matched to the old block of the same name and pointing that overlaps it
    most (or, failing overlap, is nearest in time); each old block matches at most once."""
    free = list(range(len(old)))
    added, moved, same = [], [], 0
    for b in new:
        best, score = None, None
        for i in free:
            a = old[i]
            if not _same_pointing(a, b):
                continue
            overlap = min(a["t1"], b["t1"]) - max(a["t0"], b["t0"])
            s = (overlap > 0, overlap if overlap > 0 else -abs(a["t0"] - b["t0"]))
            if score is None or s > score:
                best, score = i, s
        if best is None:
            added.append(b)
            continue
        free.remove(best)
        a = old[best]
        if abs(a["t0"] - b["t0"]) <= SAME_S and abs(a["t1"] - b["t1"]) <= SAME_S:
            same += 1
        else:
            moved.append({"from": a, "to": b})
    return {
        "added": added,
        "removed": [old[i] for i in free],
        "moved": moved,
        "unchanged": same,
    }

"""Plans: how long the `basic` policy takes for a 24 h window, warm and in a fresh process.

Measured for two master schedules: the bundled sample (the default) and the real 2023 TOAST
schedule (../shared/data/toast_schedule_sat_2023.txt, or --schedule PATH; 1.3 MB, 5,460 scans).

- **first request, fresh process**: a new `python` process; the clock starts at its first line
  (interpreter up, nothing of gnomon imported) and stops when the first plan is generated: it
  covers importing the policy code (pydantic, PyEphem), reading and parsing the master
  schedule, the ephemeris and the generation. Interpreter start-up is shown on its own row.
  Modules are byte-compiled, as in an installed package (a discarded first run compiles them).
  Median of --fresh runs.
- **warm**: the same process, schedule parsed, generating again: the same window each time,
  and a new 24 h window each time (other days, so other ephemeris nodes), p50 and p99; with
  and without the verifier.
- **HTTP face** (sqlite server): the first `POST /api/v1/schedule/` for `basic` after the
  server is up, then warm p50/p99 over HTTP.
- **naive**: the same algorithm with PyEphem called at every sample and no skipping — what the
  cached, interpolated sky model and the rate bounds save.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

import harness

SHARED = harness.ROOT.parent / "shared" / "data" / "toast_schedule_sat_2023.txt"
DAY = 86400.0

FRESH = r"""
import time
t_start = time.perf_counter()
import json, sys
from gnomon.plans import policy
from gnomon.plans.policy import Context
t_import = time.perf_counter()
p = policy.get("basic")
cfg = p.config({"master_schedule": sys.argv[1]})
t0 = float(sys.argv[2])
out = p.generate(t0, t0 + 86400, cfg, Context())
t_done = time.perf_counter()
print(json.dumps({"import_s": t_import - t_start, "first_s": t_done - t_start,
                  "blocks": len(out.blocks)}))
"""


def fresh_runs(source: str, t0: float, n: int) -> dict[str, float]:
    # As installed: modules compiled once (a discarded first run writes the bytecode).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    firsts, imports, walls = [], [], []
    for i in range(n + 1):
        started = time.perf_counter()
        done = subprocess.run(
            [harness.PYTHON, "-c", FRESH, source, str(t0)],
            capture_output=True,
            text=True,
            check=True,
            cwd=harness.ROOT,
            env=env,
        )
        if i == 0:
            continue
        walls.append(time.perf_counter() - started)
        got = json.loads(done.stdout)
        firsts.append(got["first_s"])
        imports.append(got["import_s"])
    return {
        "first_s": statistics.median(firsts),
        "import_s": statistics.median(imports),
        "startup_s": statistics.median(w - f for w, f in zip(walls, firsts, strict=True)),
    }


def warm_runs(source: str, starts: list[float], n: int, *, verify: bool) -> list[float]:
    from gnomon.plans import policy
    from gnomon.plans.policy import Context
    from gnomon.plans.verify import verify as check

    p = policy.get("basic")
    cfg = p.config({"master_schedule": source})
    p.generate(starts[0], starts[0] + DAY, cfg, Context())  # parse, first nodes
    times = []
    for i in range(n):
        t0 = starts[i % len(starts)]
        began = time.perf_counter()
        out = p.generate(t0, t0 + DAY, cfg, Context())
        if verify:
            check(out.blocks, t0, t0 + DAY, out.constraints)
        times.append(time.perf_counter() - began)
    return times


def naive_run(source: str, t0: float) -> float:
    """One generation with PyEphem at every sample and no look-ahead."""
    from gnomon.plans import avoidance, calibration, policy, sky
    from gnomon.plans.policy import Context

    def alts(self: sky.Sky, times: list[int]) -> list[float]:
        return [self.exact(t * sky.US)[0] for t in times]

    def node(self: calibration.Track, k: int, exact: bool) -> tuple[float, float]:
        return saved[4](self, k, True)

    saved = (
        sky.Sky.altaz,
        sky.Sky.alts,
        avoidance.Limits.holds,
        calibration.Window.steady,
        calibration.Track._node,
    )
    sky.Sky.altaz = sky.Sky.exact  # type: ignore[method-assign]
    sky.Sky.alts = alts  # type: ignore[method-assign]
    avoidance.Limits.holds = lambda *_: 0.0  # type: ignore[method-assign,assignment]
    calibration.Window.steady = lambda _: False  # type: ignore[method-assign,assignment]
    calibration.Track._node = node  # type: ignore[method-assign]
    sky._EXACT.clear()
    try:
        p = policy.get("basic")
        cfg = p.config({"master_schedule": source})
        began = time.perf_counter()
        p.generate(t0, t0 + DAY, cfg, Context())
        return time.perf_counter() - began
    finally:
        (
            sky.Sky.altaz,
            sky.Sky.alts,
            avoidance.Limits.holds,
            calibration.Window.steady,
            calibration.Track._node,
        ) = saved  # type: ignore[method-assign]


async def http_runs(source: str, t0: float, n: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    env = {"GNOMON_PLAN_SCHEDULE_DIRS": str(Path(source).parent)} if source != "sample" else {}
    server = harness.Server("sqlite", "plans", **env).start()
    try:

        def body(start: float) -> dict[str, Any]:
            iso = datetime.fromtimestamp(start, UTC).isoformat()
            end = datetime.fromtimestamp(start + DAY, UTC).isoformat()
            policy = {"policy": "basic", "config": {"master_schedule": source}}
            return {"t0": iso, "t1": end, "policy": json.dumps(policy)}

        url = f"http://{harness.HOST}:{server.port}/api/v1/schedule/"
        async with httpx.AsyncClient(timeout=60) as c:
            began = time.perf_counter()
            r = await c.post(url, json=body(t0))
            first = time.perf_counter() - began
            r.raise_for_status()
            times = []
            for i in range(n):
                began = time.perf_counter()
                (await c.post(url, json=body(t0 + (i % 5) * DAY))).raise_for_status()
                times.append(time.perf_counter() - began)
        return {"first_s": first, "warm": times}
    finally:
        server.stop()


async def main() -> None:
    ap = harness.parser(__doc__.splitlines()[0])
    ap.add_argument("--schedule", type=Path, default=SHARED, help="the real master schedule")
    ap.add_argument("--fresh", type=int, default=5, help="fresh processes per schedule")
    ap.add_argument("--warm", type=int, default=200, help="warm generations per case")
    ap.add_argument("--http", type=int, default=50, help="warm HTTP requests")
    args = ap.parse_args()

    sources = {"sample": ("sample", 1767225600.0)}  # 2026-01-01, inside the sample
    if args.schedule.exists():
        sources["2023 TOAST"] = (str(args.schedule), 1685577600.0)  # 2023-06-01
    else:
        harness.note(f"{args.schedule} not found: sample schedule only")
    cols = list(sources)
    results: dict[str, dict[str, Any]] = {}
    for label, (source, t0) in sources.items():
        harness.note(f"{label}: fresh processes")
        res: dict[str, Any] = fresh_runs(source, t0, args.fresh)
        rng = random.Random(1)
        sliding = [t0 + rng.randrange(-20, 20) * DAY + rng.random() * DAY for _ in range(50)]
        if label == "sample":
            sliding = [t0 + rng.random() * 6 * DAY for _ in range(50)]
        harness.note(f"{label}: warm")
        res["same"] = warm_runs(source, [t0], args.warm, verify=False)
        res["sliding"] = warm_runs(source, sliding, args.warm, verify=False)
        res["verified"] = warm_runs(source, sliding, args.warm, verify=True)
        harness.note(f"{label}: naive")
        res["naive_s"] = naive_run(source, t0)
        harness.note(f"{label}: HTTP face")
        res["http"] = await http_runs(source, t0, args.http)
        results[label] = res

    def ms(x: float) -> float:
        return x * 1000

    table = harness.Table("basic policy, 24 h window (ms)", cols)
    table.add("first request, fresh process", [ms(results[c]["first_s"]) for c in cols])
    table.add("  of which imports", [ms(results[c]["import_s"]) for c in cols])
    table.add("interpreter start-up (not included)", [ms(results[c]["startup_s"]) for c in cols])
    for key, name in (("same", "same window"), ("sliding", "new window each time")):
        for q in (50, 99):
            vals = [ms(harness.percentile(results[c][key], q)) for c in cols]
            table.add(f"warm p{q}, {name}", vals)
    for q in (50, 99):
        vals = [ms(harness.percentile(results[c]["verified"], q)) for c in cols]
        table.add(f"warm p{q}, new window + verifier", vals)
    table.add("naive (PyEphem every sample), one run", [ms(results[c]["naive_s"]) for c in cols])
    table.add("HTTP face: first request", [ms(results[c]["http"]["first_s"]) for c in cols])
    for q in (50, 99):
        vals = [ms(harness.percentile(results[c]["http"]["warm"], q)) for c in cols]
        table.add(f"HTTP face: warm p{q}", vals)
    table.print()
    harness.write_json(args, "plans", results)


if __name__ == "__main__":
    harness.run(main)

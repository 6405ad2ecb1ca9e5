"""The anchor for gnomon's `shell: true` runs: bare asyncio spawning `sh -c true`.

Run with gnomon's own interpreter (the same python as the server): N
`asyncio.create_subprocess_shell("true")` calls, P at a time, each awaited to its exit; the
median of 3 such rounds. No gnomon, no database: what a process spawn costs this python on this
machine.

    .venv/bin/python bench/peers/asyncio_spawn.py --jobs 500 --parallel 16 --out result.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path


async def spawn_all(jobs: int, parallel: int) -> float:
    gate = asyncio.Semaphore(parallel)

    async def one() -> None:
        async with gate:
            proc = await asyncio.create_subprocess_shell("true")
            if await proc.wait() != 0:
                raise RuntimeError("`true` failed")

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(jobs)))
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=500)
    p.add_argument("--parallel", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3, help="timed rounds; the median is kept")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    asyncio.run(spawn_all(min(args.jobs, 50), args.parallel))  # warm-up, not timed
    rounds = sorted(asyncio.run(spawn_all(args.jobs, args.parallel)) for _ in range(args.rounds))
    seconds = rounds[len(rounds) // 2]  # the median round: a short run is easily disturbed
    result = {"jobs": args.jobs, "parallel": args.parallel, "seconds": seconds, "rounds": rounds}
    args.out.write_text(json.dumps({**result, "per_s": args.jobs / seconds}))


if __name__ == "__main__":
    main()

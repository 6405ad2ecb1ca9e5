"""Profile the single-run submission path under wrk load with py-spy (sampling, no code change).

Starts gnomon (job on `site:bench`), runs wrk like bench/submit.py, and records the server with
`py-spy record --format raw --gil` for the load's duration (only the thread holding the GIL is
sampled: the server is one Python process, so GIL time is what bounds its throughput; use
--all-threads to see every active thread); then prints the share per package, the hottest
functions by own (self) samples with their main caller, and by inclusive samples. py-spy is
not a project dependency: install it in a separate virtualenv and pass its path, e.g.

    python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy
    .venv/bin/python bench/profile_submit.py --py-spy /tmp/pyspy/bin/py-spy [--backend sqlite]
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from harness import Server, Table, backends, note, parser, run, temp_dir, write_json
from submit import ensure_wrk, lua_script, wrk

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
LOOP = "Runner.run (asyncio/runners.py)"


def package_of(path: str) -> str:
    """site-packages/<pkg>/…, src/<pkg>/…, or the stdlib module/package."""
    parts = Path(path).parts
    for anchor in ("site-packages", "src"):
        if anchor in parts and len(parts) > parts.index(anchor) + 1:
            return parts[parts.index(anchor) + 1].split(".")[0]
    if len(parts) >= 2 and re.match(r"python3\.\d+$", parts[-2]):
        return Path(path).stem
    if len(parts) >= 3 and any(re.match(r"python3\.\d+$", x) for x in parts):
        i = next(i for i, x in enumerate(parts) if re.match(r"python3\.\d+$", x))
        return parts[i + 1]
    return path or "?"


def short(frame: str) -> tuple[str, str]:
    """(`func (pkg/relative/path.py)`, package) of a raw py-spy frame."""
    m = FRAME.match(frame)
    if not m:
        return frame, "?"
    path = m.group("file")
    parts = Path(path).parts
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            path = "/".join(parts[parts.index(anchor) + 1 :])
            break
    else:
        ver = [i for i, x in enumerate(parts) if re.match(r"python3\.\d+$", x)]
        path = "/".join(parts[ver[-1] + 1 :]) if ver else Path(path).name
    return f"{m.group('func')} ({path})", package_of(m.group("file"))


def analyse(raw: Path) -> dict[str, Any]:
    """Own and inclusive samples per function, own samples per package, and each hot
    function's most frequent caller. Frames present in ≥95% of the samples of their root
    (process entry, thread bootstrap) are left out of the inclusive ranking."""
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    callers: dict[str, Counter[str]] = defaultdict(Counter)
    by_root: dict[str, Counter[str]] = defaultdict(Counter)
    root_total: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [short(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        leaf, pkg = frames[-1]
        own[leaf] += n
        packages["event loop (uvloop, C)" if leaf == LOOP else pkg] += n
        if len(frames) > 1:
            callers[leaf][frames[-2][0]] += n
        root = frames[0][0]
        root_total[root] += n
        for f in {f for f, _ in frames}:
            by_root[root][f] += n
    inclusive: Counter[str] = Counter()
    for root, counts in by_root.items():
        for f, c in counts.items():
            if c < 0.95 * root_total[root]:
                inclusive[f] += c
    return {
        "total": total,
        "own": own,
        "inclusive": inclusive,
        "packages": packages,
        "callers": {f: c.most_common(1)[0][0] for f, c in callers.items()},
    }


async def profile(backend: str, pyspy: str, wrk_bin: str, work: Path, args: Any) -> dict:
    note(f"{backend}: starting gnomon")
    server = Server(backend, "profile").start()
    job = await server.create_job("bench-profile", "site:bench")
    script = lua_script(work, backend, server.token)
    url = f"{server.url}/v1/jobs/{job}/runs"
    wrk(wrk_bin, url, script, threads=1, connections=args.connections, duration=2)
    raw = work / f"{backend}.txt"
    spy = subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(server.pid),
            "--format",
            "raw",
            "--rate",
            str(args.rate),
            "--duration",
            str(round(args.duration)),
            "--nonblocking",
            "--full-filenames",
            *(["--gil"] if args.gil else []),
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    note(f"{backend}: wrk + py-spy for {args.duration:g}s")
    result = wrk(
        wrk_bin, url, script, threads=1, connections=args.connections, duration=args.duration
    )
    _, err = spy.communicate(timeout=args.duration + 60)
    server.stop()
    if not raw.exists():
        raise RuntimeError(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}")
    if args.keep:
        shutil.copy(raw, args.keep / f"profile-{backend}.txt")
    return {"backend": backend, "rps_under_profiler": result.rps, **analyse(raw)}


def top_table(title: str, res: dict, key: str, n: int, callers: bool = False) -> Table:
    t = Table(title, ["samples", "share %", *(["main caller"] if callers else [])])
    for name, count in res[key].most_common(n):
        extra = [res["callers"].get(name, "")[:70]] if callers else []
        t.add(name[:80], [count, 100 * count / res["total"], *extra], 1)
    return t


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    p.add_argument("--duration", type=float, default=15)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=25)
    p.add_argument(
        "--all-threads",
        dest="gil",
        action="store_false",
        help="sample every active thread, not only the one holding the GIL",
    )
    p.add_argument("--keep", type=Path, help="copy the raw (collapsed) stacks to this directory")
    args = p.parse_args()
    if not Path(args.py_spy).exists():
        raise SystemExit(f"py-spy not found at {args.py_spy}: see the docstring to install it")
    wrk_bin = ensure_wrk()
    work = temp_dir("profile")
    results = []
    for backend in backends(args):
        res = await profile(backend, args.py_spy, wrk_bin, work, args)
        results.append(res)
        print(
            f"\n# {backend}: {res['total']:,} samples, "
            f"{res['rps_under_profiler']:,.0f} req/s while profiled"
        )
        top_table(f"{backend}: by package (own samples)", res, "packages", 15).print()
        top_table(
            f"{backend}: hottest functions (own samples)", res, "own", args.top, callers=True
        ).print()
        top_table(
            f"{backend}: hottest functions (inclusive samples)", res, "inclusive", args.top
        ).print()
    write_json(
        args,
        "profile_submit",
        [
            {
                "backend": r["backend"],
                "total": r["total"],
                "rps_under_profiler": r["rps_under_profiler"],
                "packages": r["packages"].most_common(30),
                "own": r["own"].most_common(60),
                "inclusive": r["inclusive"].most_common(60),
            }
            for r in results
        ],
    )


if __name__ == "__main__":
    run(main)

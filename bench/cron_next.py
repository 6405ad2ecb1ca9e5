"""Next-fire computation for cron schedules: the work the scheduler repeats for every schedule.

No server: this times `gnomon.cron` in-process. For a few typical expressions it reports the
mean cost of one uncached next-fire computation (`next(CronTrigger.iter_after(after))`, each
call from a different instant, so no cache helps) and the cost per slot when listing many
slots in a row (`upcoming`). Best of `--repeat` rounds; prints a Markdown table.

    .venv/bin/python bench/cron_next.py [--calls 2000] [--slots 2000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import timeit
from datetime import UTC, datetime, timedelta

from gnomon.cron import CronTrigger, upcoming

CASES: tuple[tuple[str, str], ...] = (
    ("*/5 * * * *", "UTC"),
    ("0 9 * * MON-FRI", "Europe/Berlin"),
    ("30 2 * * *", "America/New_York"),
    ("0 0 1 * *", "UTC"),
    ("0 0 L * *", "Europe/Berlin"),
    ("0 12 * * 5#2", "UTC"),
    ("*/20 * * * * *", "UTC"),
    ("0 0 29 2 *", "UTC"),
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2000, help="next-fire calls per expression")
    p.add_argument("--slots", type=int, default=2000, help="slots listed per expression")
    p.add_argument("--repeat", type=int, default=5, help="rounds; the best one counts")
    args = p.parse_args()

    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    afters = [base + timedelta(seconds=rng.randrange(366 * 86400)) for _ in range(args.calls)]

    print("| expression | zone | next fire, µs/call | listing, µs/slot |")
    print("| --- | --- | ---: | ---: |")
    for expr, zone in CASES:
        trigger = CronTrigger(expr, zone)

        def one_pass(trigger: CronTrigger = trigger) -> None:
            for after in afters:
                next(trigger.iter_after(after))

        def listing(trigger: CronTrigger = trigger) -> None:
            upcoming(trigger, base, args.slots)

        per_call = min(timeit.repeat(one_pass, number=1, repeat=args.repeat)) / args.calls
        per_slot = min(timeit.repeat(listing, number=1, repeat=args.repeat)) / args.slots
        print(f"| `{expr}` | {zone} | {per_call * 1e6:.1f} | {per_slot * 1e6:.1f} |")


if __name__ == "__main__":
    main()

"""Schedule creation (`POST /v1/jobs/{id}/schedules`) under wrk, against a bare baseline.

Like submit.py, with the body `{"every":"1h"}`: every request makes a schedule (durable when
answered; concurrent creations share one commit). The baseline is the same bare Starlette app
parsing the same body. Afterwards the schedules in the database must cover every 2xx answer.

    .venv/bin/python bench/schedules_create.py [--backend sqlite|postgresql|both] [--duration 10]
"""

from __future__ import annotations

from harness import run
from submit import compare, wrk_parser

BODY = '{"every":"1h"}'


async def main() -> None:
    p = wrk_parser(__doc__.split("\n\n")[0], duration=5, warmup=1, connections=32)
    title = "schedule creation: POST /v1/jobs/{id}/schedules"
    await compare(
        "schedules_create", title, "/v1/jobs/{job}/schedules", "schedules", BODY, p.parse_args()
    )


if __name__ == "__main__":
    run(main)

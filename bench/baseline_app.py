"""The baseline for `submit.py`: a bare Starlette app that does the minimum an HTTP API must do.

One endpoint, `POST /v1/jobs/{job_id}/runs`, parses the JSON body (`await request.json()`) and
returns a small JSON with 201 — served by uvicorn with the options `gnomon serve` uses (uvloop,
httptools, log level warning, no access log). Run: `python bench/baseline_app.py --port 8099`.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gnomon.cli import SERVE_OPTIONS


async def submit(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse(
        {
            "id": "01J0000000000000000000000",
            "job_id": request.path_params["job_id"],
            "params": body.get("params"),
            "state": "queued",
        },
        status_code=201,
    )


async def ready(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ready"})


app = Starlette(
    routes=[
        Route("/v1/jobs/{job_id}/runs", submit, methods=["POST"]),
        Route("/readyz", ready, methods=["GET"]),
    ]
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8099)
    args = p.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, **SERVE_OPTIONS)


if __name__ == "__main__":
    main()

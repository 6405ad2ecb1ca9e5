"""A small synchronous client for gnomon's native API (v1), used by the CLI.

What it returns is typed by the wire contract (`gnomon.wire`), which the server's OpenAPI
models and presenters are built from too. Importing it loads httpx and no server module.

Every failure is a `ClientError`: `Unreachable` when no server answers, `ApiError` (with the
server's error envelope) when it answers with an error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, cast

import httpx

from gnomon import vocabulary
from gnomon.wire import App, Backfill, Job, NewToken, NextTimes, Run, Schedule

__all__ = [
    "FINAL_STATES",
    "ApiError",
    "App",
    "Backfill",
    "Client",
    "ClientError",
    "Job",
    "NewToken",
    "NextTimes",
    "Run",
    "Schedule",
    "Unreachable",
    "exit_code_of",
]

FINAL_STATES = frozenset(str(s) for s in vocabulary.FINAL_STATES)

# The shapes the server answers with are the wire contract's, not copies of it.
Upcoming = NextTimes  # the old name
Token = NewToken  # the old name: a token as created, with its secret


class ClientError(Exception):
    """Anything that kept a request from succeeding."""


class Unreachable(ClientError):
    """No gnomon answered at the URL (or the connection broke)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach gnomon at {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(ClientError):
    """The server answered with an error envelope `{"error": {code, message, details}}`."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @classmethod
    def from_response(cls, resp: httpx.Response) -> ApiError:
        try:
            err = resp.json()["error"]
            return cls(resp.status_code, str(err["code"]), str(err["message"]), err.get("details"))
        except (ValueError, KeyError, TypeError):
            text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else ""
            message = f"HTTP {resp.status_code} {resp.reason_phrase}" + (
                f": {text}" if text else ""
            )
            return cls(resp.status_code, "http_error", message)


class Client:
    """Synchronous access to one gnomon server with one bearer token."""

    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0):
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- plumbing -------------------------------------------------------------------------

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """Send one request; the decoded JSON body (None for 204), or raise ClientError."""
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code >= 400:
            raise ApiError.from_response(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise ApiError(
                resp.status_code, "bad_response", "the server sent invalid JSON"
            ) from exc

    def _unreachable(self, exc: httpx.TransportError) -> Unreachable:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return Unreachable(self.url, "is `gnomon serve` running?")
        return Unreachable(self.url, f"{type(exc).__name__}: {exc}".rstrip(": "))

    def pages(self, path: str, params: dict[str, Any], limit: int | None = None) -> Iterator[Any]:
        """The items of a paginated list, following `next_cursor`, at most `limit` of them."""
        params = {k: v for k, v in params.items() if v is not None}
        seen = 0
        while True:
            if limit is not None:
                params["limit"] = max(1, min(1000, limit - seen))
            body = self.request("GET", path, params=params)
            for item in body["items"]:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if not body.get("next_cursor"):
                return
            params["cursor"] = body["next_cursor"]

    # --- tokens ---------------------------------------------------------------------------

    def create_token(
        self, name: str, *, admin: bool = False, roles: dict[str, str] | None = None
    ) -> NewToken:
        body = {"name": name, "admin": admin, "roles": roles or {}}
        return cast(NewToken, self.request("POST", "/v1/tokens", json=body))

    # --- jobs -----------------------------------------------------------------------------

    def create_job(self, spec: dict[str, Any]) -> Job:
        return cast(Job, self.request("POST", "/v1/jobs", json=spec))

    def get_job(self, job_id: str) -> Job:
        return cast(Job, self.request("GET", f"/v1/jobs/{job_id}"))

    def list_jobs(
        self,
        *,
        space: str | None = None,
        name: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[Job]:
        params = {"space": space, "name": name, "q": search}
        return list(self.pages("/v1/jobs", params, limit))

    def find_job(self, ref: str, space: str | None = None) -> Job:
        """A job by id, or by name (within `space` when given)."""
        if _looks_like_id(ref):
            try:
                job = self.get_job(ref)
            except ApiError as exc:
                if exc.status != 404:
                    raise
            else:
                if space is None or job["space"] == space:
                    return job
        found = self.list_jobs(space=space, name=ref)
        if not found:
            where = f" in space '{space}'" if space else ""
            raise ApiError(404, "not_found", f"job '{ref}' not found{where}")
        if len(found) > 1:
            spaces = ", ".join(sorted(j["space"] for j in found))
            raise ApiError(
                409,
                "ambiguous",
                f"job name '{ref}' exists in several spaces ({spaces}): pass --space or the job id",
            )
        return found[0]

    def job_schedules(self, job_id: str) -> list[Schedule]:
        return cast(list[Schedule], self.request("GET", f"/v1/jobs/{job_id}/schedules")["items"])

    # --- runs -----------------------------------------------------------------------------

    def submit_run(
        self, job_id: str, *, params: dict[str, Any] | None = None, at: str | None = None
    ) -> Run:
        body: dict[str, Any] = {}
        if params:
            body["params"] = params
        if at:
            body["at"] = at
        return cast(Run, self.request("POST", f"/v1/jobs/{job_id}/runs", json=body))

    def get_run(self, run_id: str) -> Run:
        return cast(Run, self.request("GET", f"/v1/runs/{run_id}"))

    def list_runs(
        self,
        *,
        job: str | None = None,
        state: str | None = None,
        space: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        params = {"job": job, "state": state, "space": space}
        return list(self.pages("/v1/runs", params, limit))

    def cancel_run(self, run_id: str) -> Run:
        return cast(Run, self.request("POST", f"/v1/runs/{run_id}/cancel"))

    def log(self, run_id: str) -> str:
        try:
            resp = self._http.get(f"/v1/runs/{run_id}/log")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code >= 400:
            raise ApiError.from_response(resp)
        return resp.text

    def follow_log(self, run_id: str) -> Iterator[bytes]:
        """The run's output so far, then new output as it arrives, until the run ends."""
        timeout = httpx.Timeout(30.0, read=None)
        try:
            with self._http.stream(
                "GET", f"/v1/runs/{run_id}/log", params={"follow": "true"}, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise ApiError.from_response(resp)
                yield from resp.iter_bytes()
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def wait_run(self, run_id: str, *, poll_max_s: float = 1.0) -> Run:
        """Poll until the run is in a final state; returns it."""
        delay = 0.05
        while True:
            run = self.get_run(run_id)
            if run["state"] in FINAL_STATES:
                return run
            time.sleep(delay)
            delay = min(poll_max_s, delay * 1.5)

    # --- apps -----------------------------------------------------------------------------

    def create_app(self, spec: dict[str, Any]) -> App:
        return cast(App, self.request("POST", "/v1/apps", json=spec))

    def list_apps(self, *, space: str | None = None) -> list[App]:
        return list(self.pages("/v1/apps", {"space": space}))

    # --- schedules ------------------------------------------------------------------------

    def create_schedule(self, job_id: str, spec: dict[str, Any]) -> Schedule:
        return cast(Schedule, self.request("POST", f"/v1/jobs/{job_id}/schedules", json=spec))

    def get_schedule(self, schedule_id: str) -> Schedule:
        return cast(Schedule, self.request("GET", f"/v1/schedules/{schedule_id}"))

    def list_schedules(self, *, job: str | None = None, space: str | None = None) -> list[Schedule]:
        return list(self.pages("/v1/schedules", {"job": job, "space": space}))

    def next_times(self, schedule_id: str, n: int = 10) -> NextTimes:
        return cast(
            NextTimes, self.request("GET", f"/v1/schedules/{schedule_id}/next", params={"n": n})
        )

    def backfill(self, schedule_id: str, start: str, end: str, dry_run: bool = False) -> Backfill:
        body = {"start": start, "end": end, "dry_run": dry_run}
        path = f"/v1/schedules/{schedule_id}/backfill"
        return cast(Backfill, self.request("POST", path, json=body))


_CROCKFORD = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def _looks_like_id(ref: str) -> bool:
    return len(ref) == 26 and set(ref.upper()) <= _CROCKFORD


def exit_code_of(run: Run) -> int:
    """The process exit code that mirrors a finished run, as `gnomon run --wait` returns it."""
    state = run.get("state")
    code = run.get("exit_code")
    if state == vocabulary.RunState.succeeded:
        return 0
    if state == vocabulary.RunState.timed_out:
        return 124
    if state == vocabulary.RunState.cancelled:
        return 130
    if isinstance(code, int) and 0 < code < 256:
        return code
    return 1

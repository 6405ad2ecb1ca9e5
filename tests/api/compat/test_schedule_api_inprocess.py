"""The schedule face in-process: a fault inside a policy, and the optional token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gnomon.api.app import create_app
from gnomon.config import Settings
from gnomon.plans.policies.dummy import Dummy

BODY = {"t0": "2026-01-02 00:00", "t1": "2026-01-02 01:00"}


async def client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    app = create_app(settings, engine=False)
    async with app.router.lifespan_context(app):
        token = (settings.data_dir / "admin.token").read_text().strip()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://face") as c:
            yield c, token


@pytest.fixture
async def face(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c, _ in client(Settings(data_dir=tmp_path)):
        yield c


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async for pair in client(Settings(data_dir=tmp_path, schedule_api_auth=True)):
        yield pair


async def test_a_fault_in_a_policy_is_a_json_500(
    face: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("the policy broke")

    monkeypatch.setattr(Dummy, "generate", boom)
    r = await face.post("/api/v1/schedule/", json=BODY)
    assert r.status_code == 500
    assert r.headers["access-control-allow-origin"] == "*"
    body = r.json()
    assert body["status"] == "error" and "the policy broke" not in body["message"]
    monkeypatch.undo()
    assert (await face.post("/api/v1/schedule/", json=BODY)).status_code == 200


async def test_the_token_can_be_required(guarded: tuple[httpx.AsyncClient, str]) -> None:
    face, token = guarded
    r = await face.post("/api/v1/schedule/", json=BODY)
    assert r.status_code == 401 and r.json()["status"] == "error"
    r = await face.post(
        "/api/v1/schedule/", json=BODY, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200 and r.json()["status"] == "ok"

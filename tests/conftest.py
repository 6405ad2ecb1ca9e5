from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import Server, drop_postgres, fresh_postgres

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A running gnomon on each backend, shared by the API tests of a session."""
    url = fresh_postgres() if request.param == "postgresql" else None
    srv = Server(tmp_path_factory.mktemp(f"gnomon-{request.param}"), url)
    srv.backend = request.param  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()
    if url:
        drop_postgres(url)


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = fresh_postgres()
    yield url
    drop_postgres(url)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("GNOMON_LOG_LEVEL", "warning")

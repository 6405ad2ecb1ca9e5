from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import SHARED_CWD, Server, drop_postgres, fresh_postgres

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A running gnomon on each backend, shared by the API tests of a session."""
    url = fresh_postgres() if request.param == "postgresql" else None
    srv = Server(tmp_path_factory.mktemp(f"gnomon-{request.param}"), url, **SHARED_CWD)
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


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory in /tmp that a local job may name as its `cwd` on a server started with
    SHARED_CWD, and enter and write to as the user it runs as."""
    path = Path(tempfile.mkdtemp(prefix="gnomon-shared-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("GNOMON_LOG_LEVEL", "warning")

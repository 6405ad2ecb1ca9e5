from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gnomon.config import Settings
from gnomon.domain import Principal
from gnomon.service import Service

ADMIN = Principal(token_id="t", name="admin", admin=True)


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Service]:
    """A service on a fresh SQLite database, without the engine loops (tests drive time)."""
    service = await Service.open(Settings(data_dir=tmp_path))
    await service.access.bootstrap(tmp_path)
    yield service
    await service.close()

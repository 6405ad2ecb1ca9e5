"""Fixtures for the plans tests."""

from __future__ import annotations

import pytest

from tests.plans.helpers import SHARED_SCHEDULE


@pytest.fixture(scope="session")
def shared_schedule() -> str:
    """Path of the real 2023 master schedule (CI lays ../shared beside the repo)."""
    if not SHARED_SCHEDULE.exists():
        pytest.fail("../shared/data/toast_schedule_sat_2023.txt is missing beside the repository")
    return str(SHARED_SCHEDULE)

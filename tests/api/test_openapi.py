"""Property-based checks generated from the served OpenAPI document: no input makes a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import BaseSchema

from tests.server import Server

MAX_EXAMPLES = 25

# Random generation only (the `coverage` phase enumerates thousands of boundary cases per
# operation and `stateful` needs links): bounded, so both backends take seconds, not minutes.
CONFIG = {
    "phases": {
        "examples": {"enabled": True},
        "fuzzing": {"enabled": True},
        "coverage": {"enabled": False},
        "stateful": {"enabled": False},
    },
    # Every case carries the admin token (below), so the generator need not invent one.
    "generation": {
        "max-examples": MAX_EXAMPLES,
        "database": "none",
        "with-security-parameters": False,
    },
}


@pytest.fixture
def openapi_schema(server: Server) -> BaseSchema:
    return schemathesis.openapi.from_url(
        f"{server.url}/openapi.json", config=SchemathesisConfig.from_dict(CONFIG)
    )


# /v1/events is an endless stream: nothing to call and validate. (Filters go on the lazy
# schema: it applies its own filter set to what the fixture loads.)
schema = (
    schemathesis.pytest.from_fixture("openapi_schema")
    .exclude(path="/v1/events")
    .exclude(path="/v1/sites/{site}/events")
)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_server_errors(case: schemathesis.Case, server: Server) -> None:
    if case.path.endswith("/log"):
        case.query = {**(case.query or {}), "follow": "false"}  # never follow a live log here
    if case.path.endswith("/claim") and isinstance(case.body, dict):
        case.body = {**case.body, "wait_s": 0}  # a long-poll would outwait the timeout
    case.call_and_validate(
        base_url=server.url,
        headers={"Authorization": f"Bearer {server.token}"},
        checks=[not_a_server_error],
        timeout=10,
    )

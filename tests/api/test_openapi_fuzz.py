"""Property-based requests generated from the served OpenAPI document (schemathesis): none gets a 5xx.

The service runs on real HTTP from its own thread (BackgroundService), over SQLite and the noop runner,
seeded with a workflow and a resource so that some generated requests reach existing entities. The run is
bounded (a few examples per operation) to stay well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from styx_server.service import BackgroundService
from tests.api.conftest import API, COMPONENT, api_settings, workflow_config

MAX_EXAMPLES_PER_OPERATION = 10


@pytest.fixture(scope="module")
def served_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    data_dir = tmp_path_factory.mktemp("fuzz")
    service_settings = api_settings(data_dir, host="127.0.0.1", port=0, store=f"sqlite:///{data_dir / 'styx.db'}")
    with BackgroundService(service_settings) as service:
        with httpx.Client(base_url=service.url + API) as client:
            assert client.post(f"/workflows/{COMPONENT}", json=workflow_config()).status_code == 200
            assert client.post("/resources", json={"id": "r", "concurrency": 1}).status_code == 200
        yield schemathesis.openapi.from_url(f"{service.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("served_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])

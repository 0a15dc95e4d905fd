"""API fuzzing: schemathesis generates requests from /openapi.json; none may get a 5xx.

A small, deterministic run (derandomised, a few dozen examples per operation) against
the ASGI app in-process, with a valid key so that generated bodies reach the model, and
once without a key for the authentication path.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.serving.conftest import KEY

pytestmark = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)


FUZZ = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/health",
        "/ready",
        "/v1/models",
        "/v1/models/{name}/predict",
        "/v1/models/{name}/compare",
    }
    return operations


def _fuzz(operation, headers: dict[str, str], max_examples: int) -> None:
    @given(case=operation.as_strategy())
    @settings(FUZZ, max_examples=max_examples)
    def run(case):
        response = case.call_and_validate(headers=headers, checks=[not_a_server_error])
        if not headers and case.path.startswith("/v1"):
            assert response.status_code == 401

    run()


def test_no_server_errors_with_a_key(app):
    for operation in _operations(app):
        _fuzz(operation, {"Authorization": f"Bearer {KEY}"}, 30)


def test_no_server_errors_without_a_key(app):
    for operation in _operations(app):
        _fuzz(operation, {}, 5)

"""The HTTP API fuzzed from its own OpenAPI schema (schemathesis): no 5xx, and every answer
conforms to the schema it publishes (status codes, content types, bodies).

Schema-valid requests may still be refused with a documented 4xx: the rules a JSON schema
cannot state (a time inside pandas' range, at least one transaction or event, the amount
rule of purchases) are checked by the service, so schemathesis' "valid data accepted" check
is left out; every other check runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from ltvcast.service import create_app

from .conftest import TOKEN

#: Examples per operation: bounded so the suite stays quick; derandomized so a failure
#: reproduces.
EXAMPLES = 30


def test_api_conforms_to_its_schema(model_dirs: dict[str, Path], db_path: Path) -> None:
    app = create_app(model_dirs["btyd"], db_path, token=TOKEN, max_batch=50)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app):  # the lifespan (start-up, shutdown) runs around the fuzzing
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 6
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

            check()

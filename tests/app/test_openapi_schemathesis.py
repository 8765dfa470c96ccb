"""Schemathesis against /schema/openapi.json: every documented operation, a fixed number of generated
requests each, valid and invalid ones (derandomized, so a run is repeatable), with a real API key (and
the admin token on /admin). Checks: no 5xx, every answer matches the schema documented for its status,
and every error names its fault with a code.

The gateway runs as its own web process (tests/app/conftest.py). No worker runs, so media jobs stay
queued; `Prefer: respond-async` keeps image requests from waiting.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import ADMIN_HEADERS
from tests.support import LiveServer

MAX_EXAMPLES = 12
"""Per operation and run, about 15 s for the ~58 operations on one core (80 found nothing more)."""


@pytest.mark.slow
def test_every_operation_keeps_to_its_documented_schema(gateway: LiveServer, api_key: str) -> None:
    document = httpx.get(f"{gateway.url}/schema/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        admin = operation.path.startswith("/admin")
        headers = {
            "Authorization": ADMIN_HEADERS["Authorization"] if admin else f"Bearer {api_key}",
            "Prefer": "respond-async",
        }

        tested += 1
        try:
            _fuzz(operation, gateway.url, headers)
        except Exception as exc:  # every operation runs; all failures are reported at the end
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:2000]}")
    assert tested >= 55, tested
    assert not failures, "\n\n".join(failures)


@schemathesis.check
def error_has_a_code(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx names its fault with a code (the same fault, the same code on every route)."""
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"], f"{response.status_code} without a code: {error}"
    return None


def _fuzz(operation: Any, base_url: str, headers: dict[str, str]) -> None:
    strategy = operation.as_strategy() | operation.as_strategy(GenerationMode.NEGATIVE)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(
            base_url=base_url,
            headers=headers,
            checks=[not_a_server_error, response_schema_conformance, error_has_a_code],
            allow_redirects=False,
        )

    run()

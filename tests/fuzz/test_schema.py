"""Schema-driven fuzzing of the whole HTTP API against the running service.

Every generated request (valid and invalid ones) must get a documented status
with a documented body and content type: no 500, no stack trace, every JSON
error in the RFC 6749 shape. (schemathesis's pytest plugin does not load on
pytest 9, so its Python API drives hypothesis here.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from openrouter_oauth.openapi import openapi_document
from openrouter_oauth.settings import load_settings

from .conftest import FUZZ_BOUND_ENV, FUZZ_ENV


def cases(env: dict[str, str], paths: tuple[str, ...] = ()) -> list[tuple[object, GenerationMode]]:
    """Every operation the document for ``env`` describes (only ``paths``, if given), with
    valid data, and with invalid data where there is a query or a body to break."""
    schema = schemathesis.openapi.from_dict(openapi_document(load_settings(env, port=1)))
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if not paths or op.path in paths]
    return [(op, GenerationMode.POSITIVE) for op in operations] + [
        (op, GenerationMode.NEGATIVE) for op in operations if op.query or op.body
    ]


CASES = cases(FUZZ_ENV)
# Bound mode changes /token and /introspect and adds /revoke: those, against a bound service.
BOUND_CASES = cases(FUZZ_BOUND_ENV, ("/token", "/revoke", "/introspect"))
# Not checked: positive_data_acceptance. A request can match the schema and still be
# refused on purpose (an empty redirect URI, an unknown session, a forged code): that
# semantic validation is the point of an authorization server, and its 400s are documented.
EXCLUDED = [checks.positive_data_acceptance]


@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=[f"{op.method} {op.path} {mode.value}" for op, mode in CASES]
)
def test_api_conforms_to_its_document(operation, mode, fuzz_service):
    conforms(operation, mode, fuzz_service.url)


@pytest.mark.parametrize(
    ("operation", "mode"),
    BOUND_CASES,
    ids=[f"{op.method} {op.path} {mode.value}" for op, mode in BOUND_CASES],
)
def test_bound_mode_conforms_to_its_document(operation, mode, fuzz_bound_service):
    conforms(operation, mode, fuzz_bound_service.url)


def conforms(operation, mode: GenerationMode, url: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case):
        response = case.call_and_validate(base_url=url, excluded_checks=EXCLUDED)
        assert "Traceback" not in response.text

    check()


def test_no_stack_trace_in_the_log(fuzz_service, fuzz_bound_service):
    assert "Traceback" not in fuzz_service.log()
    assert "Traceback" not in fuzz_bound_service.log()

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

from .conftest import FUZZ_ENV

SCHEMA = schemathesis.openapi.from_dict(openapi_document(load_settings(FUZZ_ENV, port=1)))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# Negative data needs a constrained input to break: query parameters or a body.
CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if op.query or op.body
]
# Not checked: positive_data_acceptance. A request can match the schema and still be
# refused on purpose (an empty redirect URI, an unknown session, a forged code): that
# semantic validation is the point of an authorization server, and its 400s are documented.
EXCLUDED = [checks.positive_data_acceptance]


@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=[f"{op.method} {op.path} {mode.value}" for op, mode in CASES]
)
def test_api_conforms_to_its_document(operation, mode, fuzz_service):
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case):
        response = case.call_and_validate(base_url=fuzz_service.url, excluded_checks=EXCLUDED)
        assert "Traceback" not in response.text

    check()


def test_no_stack_trace_in_the_log(fuzz_service):
    assert "Traceback" not in fuzz_service.log()

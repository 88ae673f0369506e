"""ACCESS_TOKENS=openrouter-key (the default) advertises exactly what it did before bound
mode existed: the documents below are frozen byte for byte. (A deliberate change to the
default mode's document updates them, and says so in the changelog.)"""

from __future__ import annotations

import json

import pytest

from openrouter_oauth.routes.metadata import authorization_server_metadata
from openrouter_oauth.settings import load_settings

PLAIN = (
    '{"issuer": "http://127.0.0.1:8000", "authorization_endpoint": "http://127.0.0.1:8000/aut'
    'horize", "token_endpoint": "http://127.0.0.1:8000/token", "registration_endpoint": "http'
    '://127.0.0.1:8000/register", "scopes_supported": ["openrouter"], "response_types_support'
    'ed": ["code"], "response_modes_supported": ["query"], "grant_types_supported": ["authori'
    'zation_code"], "code_challenge_methods_supported": ["S256"], "token_endpoint_auth_method'
    's_supported": ["none"], "client_id_metadata_document_supported": true, "authorization_re'
    'sponse_iss_parameter_supported": true, "service_documentation": "https://github.com/open'
    'router-oauth/openrouter-oauth-provider#readme"}'
)
WITH_INTROSPECTION = PLAIN[:-1] + (
    ', "introspection_endpoint": "http://127.0.0.1:8000/introspect", '
    '"introspection_endpoint_auth_methods_supported": '
    '["client_secret_basic", "client_secret_post"]}'
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, PLAIN),
        ({"INTROSPECTION_CREDENTIALS": "x:" + "y" * 32}, WITH_INTROSPECTION),
        ({"ACCESS_TOKENS": "openrouter-key"}, PLAIN),
    ],
)
def test_the_default_mode_document_is_unchanged(env, expected):
    document = authorization_server_metadata(load_settings(env, port=8000))
    assert json.dumps(document) == expected

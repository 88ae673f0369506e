"""Each path is declared once (openrouter_oauth.paths): the router and /openapi.json list
exactly the same paths and methods, whatever the configuration serves."""

from __future__ import annotations

import itertools

import pytest

from openrouter_oauth.app import create_app
from openrouter_oauth.openapi import openapi_document
from openrouter_oauth.settings import load_settings

SERVER = '[{"id": "rs", "secret": "' + "s" * 32 + '", "resource": "https://mcp.example/mcp"}]'
CONFIGURATIONS = {
    "default": {},
    "introspection": {"INTROSPECTION_CREDENTIALS": "rs:" + "s" * 32},
    "bound": {"ACCESS_TOKENS": "bound", "RESOURCE_SERVERS": SERVER},
}
_names = itertools.count()


def routed(env: dict[str, str]) -> set[tuple[str, str]]:
    app = create_app(load_settings(env, port=1), f"paths{next(_names)}")
    return {
        (route.uri.replace("<_suffix:path>", "{suffix}"), method.lower())
        for route in app.router.routes
        for method in route.methods
    }


def documented(env: dict[str, str]) -> set[tuple[str, str]]:
    document = openapi_document(load_settings(env, port=1))
    return {(path, method) for path, ops in document["paths"].items() for method in ops}


@pytest.mark.parametrize("env", CONFIGURATIONS.values(), ids=CONFIGURATIONS.keys())
def test_the_router_and_the_api_description_list_the_same_operations(env):
    assert routed(env) == documented(env)


def test_what_a_configuration_does_not_serve_is_not_routed():
    default, bound = routed({}), routed(CONFIGURATIONS["bound"])
    assert ("/revoke", "post") in bound - default
    assert ("/introspect", "post") in bound - default

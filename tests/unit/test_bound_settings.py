"""ACCESS_TOKENS and the settings of bound mode: each bad value stops start-up with one line."""

from __future__ import annotations

import json

import pytest

from openrouter_oauth.errors import InvalidTarget
from openrouter_oauth.resources import ResourceServer, canonical_resource, resolve_resource
from openrouter_oauth.settings import SettingsError, load_settings

SECRET = "r" * 32


def servers(*entries: dict[str, str]) -> str:
    return json.dumps(list(entries))


def server(sid: str = "mcp", resource: str = "https://mcp.example.com/mcp") -> dict[str, str]:
    return {"id": sid, "secret": SECRET, "resource": resource}


BOUND = {"ACCESS_TOKENS": "bound", "RESOURCE_SERVERS": servers(server())}


def test_default_mode_is_the_openrouter_key():
    settings = load_settings({}, port=1)
    assert settings.access_tokens == "openrouter-key" and not settings.bound
    assert settings.resource_servers == ()


def test_resource_servers_may_be_declared_before_switching_to_bound():
    """So a deployment can mount them first, then switch modes without a failed start;
    meanwhile they are introspection callers."""
    settings = load_settings({"RESOURCE_SERVERS": servers(server())}, port=1)
    assert not settings.bound and [s.id for s in settings.resource_servers] == ["mcp"]


def test_bound_mode_reads_its_servers_and_lifetimes(tmp_path):
    path = tmp_path / "servers.json"
    path.write_text(servers(server(), server("local", "http://127.0.0.1:8001/mcp")))
    settings = load_settings(
        {
            "ACCESS_TOKENS": "bound",
            "RESOURCE_SERVERS_FILE": str(path),
            "ACCESS_TOKEN_SECONDS": "2",
            "GRANT_SECONDS": "120",
        },
        port=1,
    )
    assert settings.bound
    assert [s.id for s in settings.resource_servers] == ["mcp", "local"]
    assert settings.access_token_seconds == 2 and settings.grant_seconds == 120
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ACCESS_TOKENS": "opaque"}, "ACCESS_TOKENS must be"),
        ({"ACCESS_TOKENS": "bound"}, "ACCESS_TOKENS=bound needs RESOURCE_SERVERS"),
        ({**BOUND, "RESOURCE_SERVERS": "[{"}, "not valid JSON"),
        ({**BOUND, "RESOURCE_SERVERS": "{}"}, "JSON array"),
        ({**BOUND, "RESOURCE_SERVERS": servers({"id": "x"})}, "JSON array"),
        ({**BOUND, "RESOURCE_SERVERS": servers({**server(), "secret": "short"})}, "at least 32"),
        ({**BOUND, "RESOURCE_SERVERS": servers(server(), server())}, "ids must be distinct"),
        (
            {
                **BOUND,
                "RESOURCE_SERVERS": servers(server(), server("b", "HTTPS://mcp.example.com/mcp/")),
            },
            "resources must be distinct",
        ),
        (
            {**BOUND, "RESOURCE_SERVERS": servers(server(resource="http://mcp.example.com"))},
            "https",
        ),
        (
            {**BOUND, "RESOURCE_SERVERS": servers(server(resource="https://a.example/#x"))},
            "fragment",
        ),
        ({**BOUND, "RESOURCE_SERVERS": servers(server(resource="mcp"))}, "https URI"),
        ({**BOUND, "INTROSPECTION_CREDENTIALS": f"mcp:{SECRET}"}, "must differ"),
        ({**BOUND, "ACCESS_TOKEN_SECONDS": "0"}, "ACCESS_TOKEN_SECONDS must be between"),
        ({**BOUND, "GRANT_SECONDS": "many"}, "GRANT_SECONDS must be a number"),
    ],
)
def test_each_bad_value_is_one_line_naming_it(env, needle):
    with pytest.raises(SettingsError) as caught:
        load_settings(env, port=1)
    message = str(caught.value)
    assert needle in message and "\n" not in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTPS://MCP.Example.com/mcp", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com/mcp/", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp"),
        ("http://[::1]:8001/", "http://[::1]:8001"),
    ],
)
def test_canonical_resources_compare_equal(a, b):
    assert canonical_resource(a) == canonical_resource(b)


def test_paths_and_ports_still_tell_resources_apart():
    assert canonical_resource("https://a.example/MCP") != canonical_resource(
        "https://a.example/mcp"
    )
    assert canonical_resource("https://a.example:8443") != canonical_resource("https://a.example")


def test_an_absent_resource_means_the_only_server_declared():
    one = ResourceServer("a", SECRET, "https://a.example/mcp")
    two = ResourceServer("b", SECRET, "https://b.example/mcp")
    assert resolve_resource([one], None) is one
    assert resolve_resource([one, two], "https://B.example/mcp/") is two
    with pytest.raises(InvalidTarget):
        resolve_resource([one, two], None)
    with pytest.raises(InvalidTarget):
        resolve_resource([one, two], "https://c.example/mcp")

"""Discovery documents as MCP clients fetch them, and CORS for browser-based clients."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("suffix", ["", "/mcp", "/deep/path/x"])
async def test_authorization_server_metadata_at_root_and_suffix(http, service, suffix):
    response = await http.get(f"{service.url}/.well-known/oauth-authorization-server{suffix}")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == service.url
    assert meta["authorization_endpoint"] == f"{service.url}/authorize"
    assert meta["token_endpoint"] == f"{service.url}/token"
    assert meta["registration_endpoint"] == f"{service.url}/register"
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint_auth_methods_supported"] == ["none"]
    assert meta["grant_types_supported"] == ["authorization_code"]
    assert meta["client_id_metadata_document_supported"] is True
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["scopes_supported"]


@pytest.mark.parametrize("suffix", ["", "/me", "/mcp"])
async def test_protected_resource_metadata_at_root_and_suffix(http, service, suffix):
    response = await http.get(f"{service.url}/.well-known/oauth-protected-resource{suffix}")
    assert response.status_code == 200
    meta = response.json()
    assert meta["authorization_servers"] == [service.url]
    # RFC 9728 §3.3: the resource is the identifier the metadata URL was formed from.
    assert meta["resource"] == service.url + suffix


async def test_issuer_comes_from_settings_not_the_host_header(http, service):
    response = await http.get(
        f"{service.url}/.well-known/oauth-authorization-server", headers={"Host": "evil.example"}
    )
    assert response.json()["issuer"] == service.url


async def test_partial_openid_configuration_is_not_served(http, service):
    response = await http.get(f"{service.url}/.well-known/openid-configuration")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path", ["/token", "/register", "/me", "/.well-known/oauth-authorization-server"]
)
async def test_cors_preflight(http, service, path):
    response = await http.options(
        f"{service.url}{path}",
        headers={
            "Origin": "https://inspector.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_cors_headers_on_answers_and_errors(http, service):
    ok = await http.get(f"{service.url}/.well-known/oauth-protected-resource")
    error = await http.post(f"{service.url}/token", data={})
    unauthorized = await http.get(f"{service.url}/me")
    for response in (ok, error, unauthorized):
        assert response.headers["access-control-allow-origin"] == "*"
    assert "WWW-Authenticate" in unauthorized.headers["access-control-expose-headers"]


async def test_authorize_has_no_cors(http, service):
    response = await http.get(f"{service.url}/authorize")
    assert "access-control-allow-origin" not in response.headers

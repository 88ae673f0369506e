"""An https issuer, in-process through sanic-testing: the consent cookie is locked to the host."""

from __future__ import annotations

import pytest
from sanic import Sanic

from openrouter_oauth import pkce
from openrouter_oauth.app import create_app
from openrouter_oauth.settings import load_settings
from tests.harness import authorize_url, form_fields

ISSUER = "https://auth.example.com"


@pytest.fixture
def app():
    Sanic.test_mode = True
    app = create_app(load_settings({"ISSUER_URL": ISSUER}, port=1), name="https_issuer")
    app.config.TOUCHUP = False
    return app


async def test_consent_cookie_is_host_prefixed_and_secure(app):
    _, registered = await app.asgi_client.post(
        "/register", json={"redirect_uris": ["https://client.example/cb"]}
    )
    client_id = registered.json["client_id"]
    url = authorize_url("", client_id, "https://client.example/cb", pkce.s256(pkce.new_verifier()))
    _, page = await app.asgi_client.get(url)
    assert page.status == 200
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("__Host-oauth_csrf=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    ticket = form_fields(page.text)["ticket"]

    # The same value under the unprefixed name (a cookie a sibling host could set) is refused.
    _, tossed = await app.asgi_client.post(
        "/authorize",
        data={"ticket": ticket, "action": "approve"},
        headers={"Cookie": f"oauth_csrf={value}"},
    )
    assert tossed.status == 403
    _, approved = await app.asgi_client.post(
        "/authorize",
        data={"ticket": ticket, "action": "approve"},
        headers={"Cookie": f"__Host-oauth_csrf={value}"},
    )
    assert approved.status == 303
    assert approved.headers["location"].startswith("https://openrouter.ai/auth?")
    assert "callback_url=https%3A%2F%2Fauth.example.com%2Fcallback" in approved.headers["location"]


async def test_metadata_uses_the_configured_issuer(app):
    _, response = await app.asgi_client.get("/.well-known/oauth-authorization-server/mcp")
    assert response.json["issuer"] == ISSUER
    assert response.json["token_endpoint"] == f"{ISSUER}/token"

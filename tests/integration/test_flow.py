"""The whole login as a client and a person do it, against the real service on etcd."""

from __future__ import annotations

from openrouter_oauth import pkce
from tests.harness import Browser, authorize_url, query_of

from .flows import REDIRECT, Grant, register


async def test_full_flow_gives_the_client_a_working_key(http, browser: Browser, service, fake):
    client_id = await register(http, service.url)
    verifier = pkce.new_verifier()
    url = authorize_url(
        service.url,
        client_id,
        REDIRECT,
        pkce.s256(verifier),
        resource=service.url,
        scope="openrouter",
    )
    landing = await browser.login(url, limit="5")
    params = query_of(landing)
    assert landing.startswith(REDIRECT + "?")
    assert params["state"] == ["st-123"]
    assert params["iss"] == [service.url]
    assert len(params["code"]) == 1

    token = await Grant(service.url, client_id, params["code"][0], verifier).redeem(
        http, resource=service.url
    )
    assert token.status_code == 200, token.text
    assert token.headers["cache-control"] == "no-store"
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("sk-or-v1-")
    assert body["scope"] == "openrouter"
    assert fake.auth_queries[-1]["key_label"] == "Test Client"
    assert fake.exchange_bodies[-1]["code_challenge_method"] == "S256"

    me = await http.get(
        f"{service.url}/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200, me.text
    info = me.json()
    assert info["id"] == body["access_token"][-7:] == info["username"]
    assert info["name"] == "OpenRouter User"
    assert info["limit"] == 5 and info["balance"] == 5
    assert info["label"] == "Test Client"

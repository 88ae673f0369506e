"""The whole login as a client and a person do it, against the real service on etcd."""

from __future__ import annotations

import httpx

from openrouter_oauth import pkce
from tests.harness import Browser, Service, authorize_url, query_of

REDIRECT = "http://127.0.0.1:5555/callback"


async def register(http: httpx.AsyncClient, service: Service, **metadata: object) -> dict:
    body = {"redirect_uris": [REDIRECT], "client_name": "Test Client", **metadata}
    response = await http.post(f"{service.url}/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def test_full_flow_gives_the_client_a_working_key(http, browser: Browser, service, fake):
    client = await register(http, service)
    verifier = pkce.new_verifier()
    url = authorize_url(
        service.url,
        client["client_id"],
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

    token = await http.post(
        f"{service.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": REDIRECT,
            "client_id": client["client_id"],
            "code_verifier": verifier,
            "resource": service.url,
        },
    )
    assert token.status_code == 200, token.text
    assert token.headers["cache-control"] == "no-store"
    body = token.json()
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("sk-or-v1-")
    assert body["scope"] == "openrouter"

    me = await http.get(
        f"{service.url}/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200, me.text
    info = me.json()
    assert info["id"] == body["access_token"][-7:] == info["username"]
    assert info["name"] == "OpenRouter User"
    assert info["limit"] == 5 and info["balance"] == 5
    assert info["label"] == "Test Client"

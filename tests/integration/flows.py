"""Steps of a login that many tests share."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from openrouter_oauth import pkce
from tests.harness import Browser, authorize_url, query_of

REDIRECT = "http://127.0.0.1:5555/callback"


async def register(http: httpx.AsyncClient, issuer: str, **metadata: object) -> str:
    body = {"redirect_uris": [REDIRECT], "client_name": "Test Client", **metadata}
    response = await http.post(f"{issuer}/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()["client_id"]


@dataclass
class Grant:
    issuer: str
    client_id: str
    code: str
    verifier: str
    redirect_uri: str = REDIRECT

    def form(self, **override: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": self.code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
            **override,
        }

    async def redeem(self, http: httpx.AsyncClient, **override: str) -> httpx.Response:
        return await http.post(f"{self.issuer}/token", data=self.form(**override))


async def approved(
    http: httpx.AsyncClient,
    issuer: str,
    client_id: str,
    redirect_uri: str = REDIRECT,
    **extra: str,
) -> tuple[str, str]:
    """Open the consent page and approve; return our verifier and OpenRouter's page URL."""
    browser = Browser(http)
    verifier = pkce.new_verifier()
    page = await browser.open_consent(
        authorize_url(issuer, client_id, redirect_uri, pkce.s256(verifier), **extra)
    )
    to_openrouter = await browser.decide(page, "approve")
    assert to_openrouter.status_code == 303, to_openrouter.text
    return verifier, to_openrouter.headers["location"]


async def openrouter_callback(
    http: httpx.AsyncClient, openrouter_url: str, decision: str = "approve"
) -> str:
    """Decide on OpenRouter's page; return the callback URL it sends the browser to."""
    return (await Browser(http).openrouter(openrouter_url, decision)).headers["location"]


async def code_from(http: httpx.AsyncClient, callback_url: str) -> str:
    landing = await http.get(callback_url)
    assert landing.status_code == 302, landing.text
    return query_of(landing.headers["location"])["code"][0]


async def authorized(
    http: httpx.AsyncClient,
    issuer: str,
    client_id: str | None = None,
    redirect_uri: str = REDIRECT,
    **extra: str,
) -> Grant:
    """Register (unless given a client), approve in the browser, and return our code.
    ``extra`` goes into the authorization request (``resource``, for instance)."""
    client_id = client_id or await register(http, issuer)
    verifier, openrouter_url = await approved(http, issuer, client_id, redirect_uri, **extra)
    code = await code_from(http, await openrouter_callback(http, openrouter_url))
    return Grant(issuer, client_id, code, verifier, redirect_uri)


async def logged_in(http: httpx.AsyncClient, issuer: str) -> str:
    """A whole login (as authorized), the code redeemed, the key checked; returns the key."""
    grant = await authorized(http, issuer)
    token = await grant.redeem(http)
    assert token.status_code == 200, token.text
    key = token.json()["access_token"]
    me = await http.get(f"{issuer}/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text
    return key

"""OpenRouterKeyVerifier(resource=…), bound mode, against a scripted authorization server:
the audience check, the exchange (one in flight per token, cached until the token's
expiry), and what a refused or failed exchange means."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from urllib.parse import parse_qs

import httpx
import pytest

from openrouter_oauth import mcp_verifier
from openrouter_oauth.mcp_verifier import IntrospectionUnavailable, OpenRouterKeyVerifier
from tests.unit.test_mcp_verifier import ACTIVE, ISSUER, KEY, Clock

RESOURCE = "https://mcp.example.com/mcp"
TOKEN = "eyJ" + "t" * 600  # a bound token: longer than any key
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


class AuthorizationServer:
    """/introspect and /token as a bound-mode issuer answers them; records every call."""

    def __init__(self, audience: str = RESOURCE) -> None:
        self.audience = audience
        self.exchange_status = 200
        self.calls: list[str] = []
        self.exchange_delay = 0.0
        self.key_seconds = 60

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        self.calls.append(request.url.path)
        if request.url.path == "/introspect":
            claims = {**ACTIVE, "aud": self.audience, "client_id": "mcp_client", "exp": _soon()}
            return httpx.Response(200, json=claims)
        assert form["grant_type"] == [EXCHANGE] and form["subject_token"] == [TOKEN]
        await asyncio.sleep(self.exchange_delay)
        if self.exchange_status == 400:
            return httpx.Response(400, json={"error": "invalid_grant"})
        if self.exchange_status != 200:
            return httpx.Response(self.exchange_status, json={"error": "x"})
        return httpx.Response(200, json={"access_token": KEY, "expires_in": self.key_seconds})


def _soon() -> int:
    return int(time.time()) + 60


def verifier(server: AuthorizationServer, clock: Clock, resource: str = RESOURCE):
    http = httpx.AsyncClient(transport=httpx.MockTransport(server), base_url=ISSUER)
    return OpenRouterKeyVerifier(
        ISSUER,
        client_id="mcp",
        client_secret="s" * 40,
        resource=resource,
        cache_seconds=10,
        http_client=http,
        clock=clock,
    )


async def test_a_token_for_this_resource_gives_the_key_by_exchange():
    server = AuthorizationServer()
    accepted = await verifier(server, Clock()).verify_token(TOKEN)
    assert accepted is not None
    assert accepted.key == KEY and accepted.token == TOKEN  # the key, not the bearer token
    assert accepted.client_id == "mcp_client" and accepted.resource == RESOURCE
    assert KEY not in repr(accepted) and KEY not in accepted.model_dump_json()
    assert server.calls == ["/introspect", "/token"]


@pytest.mark.parametrize(
    "resource", ["HTTPS://MCP.example.com/mcp/", "https://mcp.example.com:443/mcp"]
)
async def test_the_audience_is_compared_canonically(resource):
    assert await verifier(AuthorizationServer(), Clock(), resource).verify_token(TOKEN)


async def test_a_token_for_another_resource_is_refused_without_an_exchange():
    server = AuthorizationServer(audience="https://other.example.com/mcp")
    assert await verifier(server, Clock()).verify_token(TOKEN) is None
    assert server.calls == ["/introspect"]


async def test_a_cached_answer_is_not_checked_again(monkeypatch):
    """The audience is compared once per introspection answer: a cache hit parses no URL
    (that parsing was most of a tool call's verification cost; see docs/benchmarks.md).
    A refused audience stays refused from the cache too."""
    compared = []
    real = mcp_verifier.canonical_resource
    monkeypatch.setattr(
        mcp_verifier, "canonical_resource", lambda url: compared.append(url) or real(url)
    )
    check = verifier(AuthorizationServer(), Clock())
    assert await check.verify_token(TOKEN)
    after_first = len(compared)
    for _ in range(5):
        assert (await check.verify_token(TOKEN)).key == KEY
    assert len(compared) == after_first
    other = verifier(AuthorizationServer(audience="https://other.example.com/mcp"), Clock())
    for _ in range(3):
        assert await other.verify_token(TOKEN) is None


async def test_a_cached_answer_ends_at_the_tokens_expiry(monkeypatch):
    """Hits share one answer, built once, but none outlives the token's ``exp``: past it
    the token is refused even while the introspection answer is still fresh."""
    server = AuthorizationServer()
    check = verifier(server, Clock())
    first = await check.verify_token(TOKEN)
    assert first is not None and await check.verify_token(TOKEN) is first
    later = SimpleNamespace(time=lambda: first.expires_at + 1)
    monkeypatch.setattr(mcp_verifier, "time", later)
    assert await check.verify_token(TOKEN) is None
    assert server.calls == ["/introspect", "/token"]  # refused from the cache, not asked


async def test_a_cached_answer_lasts_no_longer_than_its_exchanged_key():
    """Past the exchange's ``expires_in`` the key is asked for again, even while the
    introspection answer is fresh: a grant ended meanwhile is seen then."""
    server = AuthorizationServer()
    server.key_seconds = 5  # shorter than cache_seconds=10
    clock = Clock()
    check = verifier(server, clock)
    assert await check.verify_token(TOKEN) is not None
    clock.now += 6
    server.exchange_status = 400
    assert await check.verify_token(TOKEN) is None
    assert server.calls == ["/introspect", "/token", "/token"]


async def test_one_exchange_per_token_however_many_ask_and_kept_until_it_expires():
    server = AuthorizationServer()
    server.exchange_delay = 0.05
    clock = Clock()
    check = verifier(server, clock)
    answers = await asyncio.gather(*(check.verify_token(TOKEN) for _ in range(20)))
    assert all(a is not None and a.key == KEY for a in answers)
    assert server.calls.count("/token") == 1
    clock.now += 30  # introspection asked again (cache_seconds=10), the key still kept
    assert (await check.verify_token(TOKEN)).key == KEY
    assert server.calls.count("/token") == 1
    clock.now += 31  # past the token's expires_in: exchanged again
    await check.verify_token(TOKEN)
    assert server.calls.count("/token") == 2


async def test_a_refused_exchange_is_401_and_a_failed_one_is_unavailable():
    server = AuthorizationServer()
    server.exchange_status = 400  # the grant ended between introspection and exchange
    assert await verifier(server, Clock()).verify_token(TOKEN) is None
    for status in (401, 500):
        server.exchange_status = status
        with pytest.raises(IntrospectionUnavailable):
            await verifier(server, Clock()).verify_token(TOKEN)

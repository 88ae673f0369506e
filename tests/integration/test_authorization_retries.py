"""The login's steps without HTTP in front: every "retry" answer is safe to retry.

The service object runs against the memory store (wrapped so that a write can be
applied and still reported as failed, as an etcd timeout can) and the real
OpenRouter client talking to the fake OpenRouter server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest

from openrouter_oauth import flow, pkce
from openrouter_oauth.authorization import AuthorizationService, Redirect
from openrouter_oauth.clients import ClientResolver
from openrouter_oauth.errors import AlreadyAnswered, InvalidGrant, TemporarilyUnavailable
from openrouter_oauth.grants import Grants
from openrouter_oauth.resources import ACCESS_TOKEN_TYPE, ResourceServer
from openrouter_oauth.sealing import Sealer
from openrouter_oauth.settings import load_settings
from openrouter_oauth.state import StateStore
from openrouter_oauth.store import StoreUnavailable
from openrouter_oauth.store.memory import MemoryStore
from openrouter_oauth.upstream import OpenRouter, UpstreamUnavailable
from tests.harness import Browser, query_of

REDIRECT = "https://app.example/cb"
CSRF, BROWSER = "c" * 43, "b" * 43


class FlakyStore(MemoryStore):
    """The memory store, except that chosen writes are applied and then reported failed."""

    def __init__(self, clock) -> None:
        super().__init__(clock=clock)
        self.fail_after: set[str] = set()  # key prefixes (record kinds)

    async def create(self, key: str, value: bytes, ttl: int) -> bool:
        created = await super().create(key, value, ttl)
        kind = key.split("/", 1)[0]
        if kind in self.fail_after:
            self.fail_after.discard(kind)
            raise StoreUnavailable("applied, but the answer was lost")
        return created


@dataclass
class Parts:
    service: AuthorizationService
    store: FlakyStore
    clock: list[float]
    grants: Grants | None = None


@asynccontextmanager
async def assembled(fake, **env: str) -> AsyncIterator[Parts]:
    clock = [1_000_000.0]
    settings = load_settings({"OPENROUTER_BASE_URL": fake.base_url, **env}, port=8000)
    sealer = Sealer(settings.secret, issuer=settings.issuer_url, clock=lambda: clock[0])
    store = FlakyStore(clock=lambda: clock[0])
    upstream = OpenRouter(fake.base_url, timeout=5)
    state = StateStore(store, sealer, settings.state_ttl_seconds)
    grants = Grants(settings, sealer, state, clock=lambda: clock[0]) if settings.bound else None

    async def no_documents(url: str) -> dict:
        raise AssertionError("no metadata documents here")

    service = AuthorizationService(
        settings=settings,
        sealer=sealer,
        state=state,
        clients=ClientResolver(sealer, no_documents),
        upstream=upstream,
        grants=grants,
    )
    yield Parts(service, store, clock, grants)
    await upstream.aclose()


@pytest.fixture
async def parts(fake) -> AsyncIterator[Parts]:
    async with assembled(fake) as assembled_parts:
        yield assembled_parts


RESOURCE = "https://mcp.example/mcp"


@pytest.fixture
async def bound_parts(fake) -> AsyncIterator[Parts]:
    servers = json.dumps([{"id": "mcp", "secret": "m" * 40, "resource": RESOURCE}])
    async with assembled(fake, ACCESS_TOKENS="bound", RESOURCE_SERVERS=servers) as bound:
        yield bound


def _params(verifier: str) -> flow.Params:
    query = {
        "response_type": "code",
        "client_id": "app.example",
        "redirect_uri": REDIRECT,
        "code_challenge": pkce.s256(verifier),
        "code_challenge_method": "S256",
        "state": "st",
    }
    return {k: [v] for k, v in query.items()}


async def _approved(service: AuthorizationService, verifier: str) -> tuple[object, int, Redirect]:
    consent = await service.show_consent(_params(verifier), CSRF)
    ticket, expires = service.open_ticket(consent.ticket, CSRF)
    return ticket, expires, await service.decide(ticket, expires, "approve", BROWSER)


async def _callback_params(openrouter_url: str) -> flow.Params:
    async with httpx.AsyncClient() as http:
        answer = await Browser(http).openrouter(openrouter_url)
    return query_of(answer.headers["location"])


def _token(code: str, verifier: str) -> flow.TokenRequest:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": "app.example",
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
    }
    return flow.token_request({k: [v] for k, v in form.items()})


async def _code(service: AuthorizationService, verifier: str) -> str:
    _, _, redirect = await _approved(service, verifier)
    done = await service.complete(await _callback_params(redirect.url), BROWSER)
    return query_of(done.url)["code"][0]


async def test_a_decision_whose_answer_was_lost_is_replayed(parts):
    verifier = pkce.new_verifier()
    consent = await parts.service.show_consent(_params(verifier), CSRF)
    ticket, expires = parts.service.open_ticket(consent.ticket, CSRF)
    parts.store.fail_after.add("decision")
    with pytest.raises(StoreUnavailable):
        await parts.service.decide(ticket, expires, "approve", BROWSER)
    retried = await parts.service.decide(ticket, expires, "approve", BROWSER)
    again = await parts.service.decide(ticket, expires, "approve", BROWSER)
    assert retried.url == again.url and retried.error is None
    with pytest.raises(AlreadyAnswered):
        await parts.service.decide(ticket, expires, "deny", BROWSER)


async def test_a_callback_whose_answer_was_lost_is_replayed(parts, fake):
    verifier = pkce.new_verifier()
    _, _, redirect = await _approved(parts.service, verifier)
    params = await _callback_params(redirect.url)
    parts.store.fail_after.add("completion")
    with pytest.raises(StoreUnavailable):
        await parts.service.complete(params, BROWSER)
    code = query_of((await parts.service.complete(params, BROWSER)).url)["code"][0]
    assert (await parts.service.redeem(_token(code, verifier)))["access_token"]


async def test_a_transient_upstream_failure_leaves_the_code_redeemable(parts, fake):
    verifier = pkce.new_verifier()
    code = await _code(parts.service, verifier)
    fake.fail_next("/api/v1/auth/keys", 503)
    with pytest.raises(UpstreamUnavailable):  # the HTTP layer answers 503: retry
        await parts.service.redeem(_token(code, verifier))
    assert (await parts.service.redeem(_token(code, verifier)))["access_token"]
    with pytest.raises(InvalidGrant):
        await parts.service.redeem(_token(code, verifier))


async def test_a_rejection_is_final(parts, fake):
    verifier = pkce.new_verifier()
    code = await _code(parts.service, verifier)
    fake.fail_next("/api/v1/auth/keys", 403)
    before = fake.requests["/api/v1/auth/keys"]
    for _ in range(2):
        with pytest.raises(InvalidGrant):
            await parts.service.redeem(_token(code, verifier))
    assert fake.requests["/api/v1/auth/keys"] - before == 1


async def test_a_lost_claim_lapses_and_the_retry_completes(parts, fake):
    """The claim was written but its answer lost: retries are told to wait until it lapses
    (one upstream deadline), then one completes."""
    verifier = pkce.new_verifier()
    code = await _code(parts.service, verifier)
    parts.store.fail_after.add("redeeming")
    with pytest.raises(StoreUnavailable):
        await parts.service.redeem(_token(code, verifier))
    with pytest.raises(TemporarilyUnavailable, match="being redeemed"):
        await parts.service.redeem(_token(code, verifier))
    parts.clock[0] += 16  # past UPSTREAM_TIMEOUT_SECONDS plus the margin
    assert (await parts.service.redeem(_token(code, verifier)))["access_token"]


async def test_concurrent_redemptions_make_one_exchange(parts, fake):
    verifier = pkce.new_verifier()
    code = await _code(parts.service, verifier)
    before = fake.requests["/api/v1/auth/keys"]
    results = await asyncio.gather(
        *(parts.service.redeem(_token(code, verifier)) for _ in range(20)),
        return_exceptions=True,
    )
    keys = [r for r in results if isinstance(r, dict)]
    assert len(keys) == 1
    assert all(
        isinstance(r, TemporarilyUnavailable | InvalidGrant) for r in results if r not in keys
    )
    assert fake.requests["/api/v1/auth/keys"] - before == 1


async def test_bound_a_grant_whose_answer_was_lost_is_the_retrys_grant(bound_parts, fake):
    """Bound mode: the grant was written (the key is in it) but the store's answer was
    lost. The retry with the same code and verifier receives that grant: no second key,
    no key lost."""
    verifier = pkce.new_verifier()
    code = await _code(bound_parts.service, verifier)
    before = fake.requests["/api/v1/auth/keys"]
    bound_parts.store.fail_after.add("grant")
    with pytest.raises(StoreUnavailable):  # the HTTP layer answers 503: retry
        await bound_parts.service.redeem(_token(code, verifier))
    pair = await bound_parts.service.redeem(_token(code, verifier))
    assert fake.requests["/api/v1/auth/keys"] - before == 1
    server = ResourceServer("mcp", "m" * 40, RESOURCE)
    exchanged = await bound_parts.grants.exchange(server, pair["access_token"], ACCESS_TOKEN_TYPE)
    assert exchanged["access_token"] in fake.keys

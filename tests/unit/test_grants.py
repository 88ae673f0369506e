"""Grants without HTTP: rotation, the reuse rule of SECURITY.md, expiry, secret rotation."""

from __future__ import annotations

import pytest

from openrouter_oauth.errors import InvalidGrant
from openrouter_oauth.grants import REUSE_GRACE_SECONDS, Grants
from openrouter_oauth.resources import ACCESS_TOKEN_TYPE, ResourceServer
from openrouter_oauth.sealing import Sealer
from openrouter_oauth.settings import load_settings
from openrouter_oauth.state import StateStore
from openrouter_oauth.store.memory import MemoryStore

ISSUER = "https://auth.example"
SERVER = ResourceServer("mcp", "m" * 40, "https://mcp.example/mcp")
KEY = "sk-or-v1-" + "k" * 64
OLD, NEW = "o" * 40, "n" * 40


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def grants(clock: Clock, store: MemoryStore, secret: str = OLD, previous=()) -> Grants:
    env = {"ACCESS_TOKENS": "bound", "ISSUER_URL": ISSUER, "GRANT_SECONDS": "3600"}
    env["RESOURCE_SERVERS"] = (
        '[{"id":"mcp","secret":"' + "m" * 40 + '","resource":"' + SERVER.resource + '"}]'
    )
    settings = load_settings(env, port=1)
    sealer = Sealer(secret, previous, issuer=ISSUER, clock=clock)
    return Grants(settings, sealer, StateStore(store, sealer, 600), clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock) -> MemoryStore:
    return MemoryStore(clock=clock)


async def test_a_replay_after_the_grace_window_ends_the_grant(clock, store):
    service = grants(clock, store)
    first = await service.start("code-1", KEY, "client", SERVER.resource)
    second = await service.refresh("client", first["refresh_token"], None)
    clock.now += REUSE_GRACE_SECONDS + 1
    with pytest.raises(InvalidGrant, match="grant has ended"):
        await service.refresh("client", first["refresh_token"], None)
    # Ending the grant took the newer pair with it: the thief and the client both sign in again.
    with pytest.raises(InvalidGrant):
        await service.refresh("client", second["refresh_token"], None)
    with pytest.raises(InvalidGrant):
        await service.exchange(SERVER, second["access_token"], ACCESS_TOKEN_TYPE)
    assert await service.resume("code-1") is None


async def test_within_the_grace_window_a_spent_token_is_refused_and_the_grant_lives(clock, store):
    service = grants(clock, store)
    first = await service.start("code-2", KEY, "client", SERVER.resource)
    second = await service.refresh("client", first["refresh_token"], None)
    clock.now += REUSE_GRACE_SECONDS - 1
    with pytest.raises(InvalidGrant, match="concurrent"):
        await service.refresh("client", first["refresh_token"], None)
    assert (await service.refresh("client", second["refresh_token"], None))["access_token"]


async def test_an_older_generation_ends_the_grant_even_within_the_window(clock, store):
    service = grants(clock, store)
    first = await service.start("code-3", KEY, "client", SERVER.resource)
    second = await service.refresh("client", first["refresh_token"], None)
    third = await service.refresh("client", second["refresh_token"], None)
    with pytest.raises(InvalidGrant, match="grant has ended"):
        await service.refresh("client", first["refresh_token"], None)
    with pytest.raises(InvalidGrant):
        await service.refresh("client", third["refresh_token"], None)


async def test_no_token_outlives_its_grant(clock, store):
    service = grants(clock, store)
    pair = await service.start("code-4", KEY, "client", SERVER.resource)
    assert pair["expires_in"] == 3600  # ACCESS_TOKEN_SECONDS (3600) capped by the grant
    clock.now += 3000
    renewed = await service.refresh("client", pair["refresh_token"], None)
    assert renewed["expires_in"] <= 600  # capped: never beyond the grant's end
    clock.now += 601
    assert service.open_access(renewed["access_token"]) is None
    with pytest.raises(InvalidGrant):
        await service.refresh("client", renewed["refresh_token"], None)


async def test_tokens_and_grants_survive_a_secret_rotation_and_are_resealed(clock, store):
    before = grants(clock, store, secret=OLD)
    pair = await before.start("code-5", KEY, "client", SERVER.resource)
    after = grants(clock, store, secret=NEW, previous=(OLD,))
    assert (await after.exchange(SERVER, pair["access_token"], ACCESS_TOKEN_TYPE))[
        "access_token"
    ] == KEY
    renewed = await after.refresh("client", pair["refresh_token"], None)
    retired = grants(clock, store, secret=NEW)  # the old secret is gone now
    exchanged = await retired.exchange(SERVER, renewed["access_token"], ACCESS_TOKEN_TYPE)
    assert exchanged["access_token"] == KEY


async def test_tokens_never_contain_the_key(clock, store):
    pair = await grants(clock, store).start("code-6", KEY, "client", SERVER.resource)
    sealed = " ".join(str(v) for v in pair.values())
    assert KEY not in sealed and "k" * 16 not in sealed

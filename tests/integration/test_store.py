"""Both stores keep one contract: create-if-absent, atomic take, expiry."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from openrouter_oauth.sealing import Sealer
from openrouter_oauth.settings import EtcdSettings
from openrouter_oauth.state import StateStore
from openrouter_oauth.store import StoreUnavailable
from openrouter_oauth.store.etcd import EtcdStore
from openrouter_oauth.store.memory import MemoryStore
from tests.harness import EtcdServer
from tests.waiting import eventually

ISSUER = "https://auth.example"


@pytest.fixture(params=["memory", "etcd"])
async def store(request, etcd) -> AsyncIterator[object]:
    if request.param == "memory":
        yield MemoryStore()
        return
    opened = EtcdStore(EtcdSettings(endpoints=(etcd.endpoint,), prefix="/contract/"))
    yield opened
    await opened.close()


def key() -> str:
    return "k/" + secrets.token_hex(8)


async def test_create_then_take_once(store):
    k = key()
    assert await store.create(k, b"value", 60)
    assert not await store.create(k, b"other", 60)
    assert await store.take(k) == b"value"
    assert await store.take(k) is None
    assert await store.create(k, b"again", 60)


async def test_concurrent_takes_give_the_value_once(store):
    k = key()
    await store.create(k, b"once", 60)
    results = await asyncio.gather(*(store.take(k) for _ in range(50)))
    assert results.count(b"once") == 1 and results.count(None) == 49


async def test_concurrent_creates_let_one_win(store):
    k = key()
    results = await asyncio.gather(*(store.create(k, b"%d" % i, 60) for i in range(20)))
    assert results.count(True) == 1


async def test_replace_swaps_only_the_value_it_read(store):
    k = key()
    await store.create(k, b"v1", 60)
    assert not await store.replace(k, b"other", b"v2", 60)
    assert await store.get(k) == b"v1"
    assert await store.replace(k, b"v1", b"v2", 60)
    assert await store.get(k) == b"v2"
    assert not await store.replace(key(), b"v1", b"v2", 60)  # absent: nothing written


async def test_concurrent_replaces_of_one_value_let_one_win(store):
    k = key()
    await store.create(k, b"v0", 60)
    results = await asyncio.gather(*(store.replace(k, b"v0", b"%d" % i, 60) for i in range(30)))
    assert results.count(True) == 1
    assert await store.get(k) == b"%d" % results.index(True)


async def test_sealed_records_expire_on_time_whatever_the_store_keeps(store):
    # etcd leases are shared and outlive their records; the sealed expiry is what counts.
    now = [1_000_000.0]
    state = StateStore(store, Sealer("x" * 40, issuer=ISSUER, clock=lambda: now[0]), ttl=60)
    await state.create("t", "fresh", {"n": 1}, ttl=1)
    await state.create("t", "stale", {"n": 2}, ttl=1)
    taken = await state.take("t", "fresh")
    assert taken is not None and taken.data == {"n": 1}
    now[0] += 2  # the store still holds "stale"; its sealed expiry has passed
    assert await state.get("t", "stale") is None
    assert await state.take("t", "stale") is None


async def test_store_keys_are_hashes_of_handles(etcd):
    store = EtcdStore(EtcdSettings(endpoints=(etcd.endpoint,), prefix="/hashed/"))
    try:
        await StateStore(store, Sealer("x" * 40, issuer=ISSUER), ttl=60).create(
            "code", "the-handle", {}
        )
        keys = [kv.key for kv in await _all(store)]
        assert len(keys) == 1 and b"the-handle" not in keys[0]
        assert keys[0].startswith(b"/hashed/code/")
    finally:
        await store.close()


async def _all(store: EtcdStore):
    return await store._client.get_prefix(b"/hashed/")


async def test_etcd_outage_is_store_unavailable_and_recovers():
    server = EtcdServer().start()
    store = EtcdStore(EtcdSettings(endpoints=(server.endpoint,), timeout_seconds=0.5))
    try:
        assert await store.create(key(), b"v", 60)
        server.stop()
        with pytest.raises(StoreUnavailable):
            await store.create(key(), b"v", 60)
        with pytest.raises(StoreUnavailable):
            await store.ping()
        server.start()
        k = key()
        assert await eventually(
            lambda: store.create(k, b"back", 60), within=5, retry_on=(StoreUnavailable,)
        )
        assert await store.take(k) == b"back"
    finally:
        await store.close()
        server.destroy()


async def test_a_lost_shared_lease_is_replaced(etcd):
    store = EtcdStore(EtcdSettings(endpoints=(etcd.endpoint,), prefix="/lease/"))
    try:
        assert await store.create(key(), b"first", 60)
        ((_, lease_id),) = store._leases.values()
        await store._client.revoke_lease(lease_id)
        k = key()
        assert await store.create(k, b"second", 60)
        assert await store.take(k) == b"second"
    finally:
        await store.close()

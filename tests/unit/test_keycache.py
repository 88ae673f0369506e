import asyncio

import pytest

from openrouter_oauth.keycache import KeyInfoCache
from openrouter_oauth.upstream import InvalidKey, UpstreamUnavailable


class Upstream:
    def __init__(self) -> None:
        self.calls = 0
        self.valid = {"sk-good"}
        self.down = False

    async def __call__(self, key: str) -> dict:
        self.calls += 1
        await asyncio.sleep(0.01)
        if self.down:
            raise UpstreamUnavailable("down")
        if key not in self.valid:
            raise InvalidKey("no")
        return {"label": key}


def cache(upstream, now, ttl=10.0, negative_ttl=2.0) -> KeyInfoCache:
    return KeyInfoCache(upstream, ttl=ttl, negative_ttl=negative_ttl, clock=lambda: now[0])


async def test_hits_within_the_ttl_then_asks_again():
    upstream, now = Upstream(), [0.0]
    keys = cache(upstream, now)
    assert await keys.get("sk-good") == {"label": "sk-good"}
    now[0] = 9.9
    await keys.get("sk-good")
    assert upstream.calls == 1
    now[0] = 10.1
    await keys.get("sk-good")
    assert upstream.calls == 2


async def test_concurrent_misses_share_one_upstream_call():
    upstream, now = Upstream(), [0.0]
    keys = cache(upstream, now)
    results = await asyncio.gather(*(keys.get("sk-good") for _ in range(50)))
    assert upstream.calls == 1 and all(r == {"label": "sk-good"} for r in results)


async def test_rejections_are_remembered_briefly():
    upstream, now = Upstream(), [0.0]
    keys = cache(upstream, now)
    for _ in range(3):
        with pytest.raises(InvalidKey):
            await keys.get("sk-bad")
    assert upstream.calls == 1
    now[0] = 2.1
    upstream.valid.add("sk-bad")
    assert await keys.get("sk-bad") == {"label": "sk-bad"}


async def test_outages_are_not_cached_and_reach_every_waiter():
    upstream, now = Upstream(), [0.0]
    upstream.down = True
    keys = cache(upstream, now)
    results = await asyncio.gather(*(keys.get("sk-good") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, UpstreamUnavailable) for r in results)
    upstream.down = False
    assert await keys.get("sk-good") == {"label": "sk-good"}


async def test_the_key_itself_is_never_kept():
    upstream, now = Upstream(), [0.0]
    keys = cache(upstream, now)
    await keys.get("sk-good")
    assert all(isinstance(k, bytes) and b"sk-good" not in k for k in keys._entries)


async def test_ttl_zero_disables_the_cache():
    upstream, now = Upstream(), [0.0]
    keys = cache(upstream, now, ttl=0)
    await keys.get("sk-good")
    await keys.get("sk-good")
    assert upstream.calls == 2

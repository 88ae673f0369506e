"""A short-lived cache of OpenRouter key checks for ``/me``.

Resource servers may check a key on every request they serve; asking
OpenRouter each time would make /me as slow as OpenRouter and multiply its
load. Entries are keyed by SHA-256 of the key (the key itself is never kept),
concurrent checks of one key share a single upstream call, and a rejected key
is remembered briefly so a flood of bad keys does not reach OpenRouter either.

The trade-off: a key revoked at OpenRouter stays valid here for at most the
TTL, and its usage figures are up to that old. ``ME_CACHE_SECONDS=0`` turns it off.

At most ``concurrency`` checks go to OpenRouter at once (per process): a flood of
distinct keys queues briefly, then gets "unavailable" instead of piling up calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .metrics import ME_CACHE
from .upstream import InvalidKey, UpstreamUnavailable

Fetch = Callable[[str], Awaitable[dict[str, Any]]]
# How long a check may wait for a free slot before it is refused as unavailable.
QUEUE_SECONDS = 1.0


@dataclass(frozen=True)
class _Entry:
    expires: float
    info: dict[str, Any] | None  # None: OpenRouter rejected the key


class KeyInfoCache:
    """OpenRouter's answer about each key, briefly remembered, fetched once at a time."""

    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl: float,
        negative_ttl: float,
        concurrency: int = 32,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Future[_Entry]] = {}
        self._slots = asyncio.Semaphore(concurrency)

    @staticmethod
    def _digest(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    def is_cached(self, key: str) -> bool:
        """True when ``get`` would answer without a new call to OpenRouter."""
        digest = self._digest(key)
        entry = self._entries.get(digest)
        fresh = entry is not None and entry.expires > self._clock()
        return self._ttl > 0 and (fresh or digest in self._inflight)

    async def get(self, key: str) -> dict[str, Any]:
        """The key's information; raises InvalidKey or UpstreamUnavailable like the fetch."""
        if self._ttl <= 0:
            return await self._limited_fetch(key)
        digest = self._digest(key)
        entry = self._entries.get(digest)
        if entry is not None and entry.expires > self._clock():
            ME_CACHE.labels("hit").inc()
            return self._answer(entry)
        pending = self._inflight.get(digest)
        if pending is not None:
            ME_CACHE.labels("shared").inc()
            return self._answer(await asyncio.shield(pending))
        ME_CACHE.labels("miss").inc()
        future: asyncio.Future[_Entry] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            entry = await self._check(key)
        except BaseException as exc:  # unavailable: nothing cached, waiters see the same
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        else:
            future.set_result(entry)
            self._store(digest, entry)
        finally:
            del self._inflight[digest]
        return self._answer(entry)

    async def _limited_fetch(self, key: str) -> dict[str, Any]:
        try:
            async with asyncio.timeout(QUEUE_SECONDS):
                await self._slots.acquire()
        except TimeoutError:
            raise UpstreamUnavailable("too many key checks in flight") from None
        try:
            return await self._fetch(key)
        finally:
            self._slots.release()

    async def _check(self, key: str) -> _Entry:
        try:
            info = await self._limited_fetch(key)
        except InvalidKey:
            return _Entry(self._clock() + self._negative_ttl, None)
        return _Entry(self._clock() + self._ttl, info)

    def _store(self, digest: bytes, entry: _Entry) -> None:
        self._entries[digest] = entry
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    @staticmethod
    def _answer(entry: _Entry) -> dict[str, Any]:
        if entry.info is None:
            raise InvalidKey("OpenRouter does not accept this key")
        return entry.info

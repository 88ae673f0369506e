"""The embedded store: one process, no persistence, same semantics as etcd.

Each method runs without an ``await`` between its check and its write, so on
one event loop it is atomic without a lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_SWEEP_EVERY = 1024


class MemoryStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._items: dict[str, tuple[float, bytes]] = {}
        self._writes = 0

    async def create(self, key: str, value: bytes, ttl: int) -> bool:
        now = self._clock()
        current = self._items.get(key)
        if current is not None and current[0] > now:
            return False
        self._items[key] = (now + ttl, value)
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:
            self._sweep(now)
        return True

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None or item[0] <= self._clock():
            return None
        return item[1]

    async def replace(self, key: str, old: bytes, new: bytes, ttl: int) -> bool:
        if await self.get(key) != old:
            return False
        self._items[key] = (self._clock() + ttl, new)
        return True

    async def take(self, key: str) -> bytes | None:
        item = self._items.pop(key, None)
        if item is None or item[0] <= self._clock():
            return None
        return item[1]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def _sweep(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._items.items() if expires <= now]:
            del self._items[key]

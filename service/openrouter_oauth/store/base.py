"""The store protocol. Values are opaque (already sealed); keys are already hashed."""

from __future__ import annotations

from typing import Protocol


class StoreUnavailable(Exception):
    """The store could not be reached or did not answer in time."""


class Store(Protocol):
    async def create(self, key: str, value: bytes, ttl: int) -> bool:
        """Write ``value`` under ``key`` for ``ttl`` seconds unless the key exists.

        Returns False, writing nothing, when the key is already there.
        """
        ...

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None."""
        ...

    async def replace(self, key: str, old: bytes, new: bytes, ttl: int) -> bool:
        """Compare-and-swap: write ``new`` for ``ttl`` seconds only if ``key`` holds ``old``.

        Returns False, writing nothing, when the value changed or the key is gone: of
        concurrent replacers of one value exactly one wins.
        """
        ...

    async def take(self, key: str) -> bytes | None:
        """Atomically read and delete ``key``: of concurrent takers exactly one gets the value."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        ...

    async def close(self) -> None: ...

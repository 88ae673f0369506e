"""Sealed, short-lived records in the store, addressed by hashes of their handles.

A handle (our authorization code, a pending-authorization id) is a bearer
secret: the store only ever sees SHA-256 of it, and the value is a JWE that
carries its own expiry, so neither a store dump nor a stale lease gives anything away.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

from .metrics import STORE_ERRORS, STORE_SECONDS, timed
from .sealing import Sealer, SealError
from .store import Store


@dataclass(frozen=True)
class Opened:
    """A stored record's data and its expiry (epoch seconds)."""

    data: dict[str, Any]
    expires: int
    raw: bytes = field(default=b"", repr=False)  # as stored: what a replace compares

    def remaining(self) -> float:
        return self.expires - time.time()


class StateStore:
    """Sealed records with an expiry, under hashed handles, in a :class:`Store`."""

    def __init__(self, store: Store, sealer: Sealer, ttl: int) -> None:
        self._store = store
        self._sealer = sealer
        self.ttl = ttl

    @staticmethod
    def _key(kind: str, handle: str) -> str:
        return f"{kind}/{hashlib.sha256(handle.encode()).hexdigest()}"

    async def create(
        self, kind: str, handle: str, data: dict[str, Any], ttl: float | None = None
    ) -> bool:
        """Store ``data`` under ``handle`` unless something is there already."""
        ttl = self.ttl if ttl is None else ttl
        sealed = self._sealer.seal(kind, data, ttl=ttl)
        async with timed(STORE_SECONDS, "create", STORE_ERRORS):
            return await self._store.create(
                self._key(kind, handle), sealed.encode(), max(1, math.ceil(ttl))
            )

    async def get(self, kind: str, handle: str) -> Opened | None:
        """The record and its expiry; None if absent, expired or not ours."""
        async with timed(STORE_SECONDS, "get", STORE_ERRORS):
            raw = await self._store.get(self._key(kind, handle))
        return self._open(kind, raw)

    async def replace(
        self, kind: str, handle: str, current: Opened, data: dict[str, Any], ttl: float
    ) -> bool:
        """Write ``data`` (sealed afresh, so under the current secret) in place of
        ``current``, unless the record changed since it was read: one of concurrent
        replacers wins."""
        sealed = self._sealer.seal(kind, data, ttl=ttl)
        async with timed(STORE_SECONDS, "replace", STORE_ERRORS):
            return await self._store.replace(
                self._key(kind, handle), current.raw, sealed.encode(), max(1, math.ceil(ttl))
            )

    async def take(self, kind: str, handle: str) -> Opened | None:
        """Like :meth:`get`, and the record is removed: of concurrent takers one gets it."""
        async with timed(STORE_SECONDS, "take", STORE_ERRORS):
            raw = await self._store.take(self._key(kind, handle))
        return self._open(kind, raw)

    def _open(self, kind: str, raw: bytes | None) -> Opened | None:
        if raw is None:
            return None
        try:
            claims = self._sealer.open_claims(kind, raw.decode())
        except (SealError, UnicodeDecodeError):
            return None
        return Opened(claims["d"], claims["exp"], raw)

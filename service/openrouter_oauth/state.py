"""Sealed, short-lived records in the store, addressed by hashes of their handles.

A handle (our authorization code, a pending-authorization id) is a bearer
secret: the store only ever sees SHA-256 of it, and the value is a JWE that
carries its own expiry, so neither a store dump nor a stale lease gives anything away.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from .metrics import STORE_ERRORS, STORE_SECONDS, timed
from .sealing import Sealer, SealError
from .store import Store

# Record kinds: the decision on a consent ticket (kept for the ticket's whole life, so a
# ticket is answered once), an approval waiting for OpenRouter, and our code.
DECISION = "decision"
PENDING = "pending"
CODE = "code"


class StateStore:
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

    async def take(self, kind: str, handle: str) -> tuple[dict[str, Any], int] | None:
        """The record and its expiry (epoch seconds), removed; None if absent, expired or bad."""
        async with timed(STORE_SECONDS, "take", STORE_ERRORS):
            raw = await self._store.take(self._key(kind, handle))
        if raw is None:
            return None
        try:
            claims = self._sealer.open_claims(kind, raw.decode())
        except (SealError, UnicodeDecodeError):
            return None
        return claims["d"], claims["exp"]

    async def put_back(self, kind: str, handle: str, data: dict[str, Any], exp: int) -> bool:
        """Return a taken record for its remaining lifetime (after a transient failure)."""
        remaining = exp - time.time()
        if remaining < 1:
            return False
        return await self.create(kind, handle, data, ttl=remaining)

"""``bound`` mode: grants, and the access and refresh tokens of ours that stand for them.

A grant is one login's result: the OpenRouter key, the client it was issued to and
the resource server (audience) its tokens are for, in one sealed record whose lease
is the grant's remaining life (``GRANT_SECONDS`` from the login, never extended).
Ending a grant (revocation, refresh-token reuse, expiry) deletes that record; every
token then stops working, since each one is checked against it.

Tokens are opaque sealed values (see :mod:`.sealing`: issuer-bound, expiring, and
readable after a secret rotation). They carry the grant id, never the key:

- access token: grant id, audience, client_id, scope, iat; expires after
  ``ACCESS_TOKEN_SECONDS`` or with the grant, whichever is first;
- refresh token: grant id, client_id and its *generation*. The grant record names the
  one generation that may be used next; using it moves the record on by one
  (a compare-and-swap), so of concurrent uses exactly one wins.

Reuse (RFC 9700 §4.14.2): a refresh token of an older generation ends the grant,
except the generation just replaced during :data:`REUSE_GRACE_SECONDS` after it was
replaced, which answers ``invalid_grant`` and leaves the grant alone: those are the
losers of a concurrent refresh (a client with several workers), and ending the grant
would also end the winner's new pair.

The grant id is derived from our authorization code, so a retried ``/token`` with the
same code and verifier (the first answer lost) finds the grant again: while its
first refresh token is unused it gets a pair for it (the same generation; whichever
of the two refresh tokens is used first wins, the other is then a replay).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .errors import InvalidClient, InvalidGrant, InvalidRequest, InvalidTarget
from .flow import GRANTED_SCOPE, same
from .metrics import GRANT_EVENTS
from .records import BOUND_GRANT, BoundGrant
from .resources import ACCESS_TOKEN_TYPE, ResourceServer, canonical_resource
from .sealing import Sealer, SealError
from .settings import Settings
from .state import Opened, StateStore

ACCESS_PURPOSE = "access"
REFRESH_PURPOSE = "refresh"
# How long the refresh token just replaced is taken for a concurrent loser, not a replay.
REUSE_GRACE_SECONDS = 30.0


def grant_id(code: str) -> str:
    """The grant a code became: found again from the code, but not the code itself."""
    digest = hashlib.sha256(b"grant\0" + code.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class AccessToken:
    """An opened access token: what it says, and the grant behind it."""

    grant: str
    audience: str
    client_id: str
    scope: str
    issued_at: int
    expires: int


class Grants:
    def __init__(
        self,
        settings: Settings,
        sealer: Sealer,
        state: StateStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._sealer = sealer
        self._state = state
        self._clock = clock

    # -- login -----------------------------------------------------------------

    async def start(self, code: str, key: str, client_id: str, audience: str) -> dict[str, Any]:
        """The grant a redeemed code becomes, and its first pair of tokens."""
        handle = grant_id(code)
        record = BoundGrant(key, client_id, audience)
        ttl = self._settings.grant_seconds
        if not await self._state.create(BOUND_GRANT, handle, record.to_record(), ttl=ttl):
            resumed = await self.resume(code)  # this very grant, made by a request like ours
            if resumed is None:
                raise InvalidGrant("the code is invalid, expired or already used")
            return resumed
        GRANT_EVENTS.labels("started").inc()
        return self._pair(handle, record, self._clock() + ttl)

    async def resume(self, code: str) -> dict[str, Any] | None:
        """For a retried redemption: the grant's first pair again, while it is unused."""
        found = await self._state.get(BOUND_GRANT, grant_id(code))
        if found is None:
            return None
        record = BoundGrant.from_record(found.data)
        if record.generation != 0:
            return None  # refreshed since: the first answer did arrive
        return self._pair(grant_id(code), record, found.expires)

    def _pair(self, handle: str, record: BoundGrant, grant_expires: float) -> dict[str, Any]:
        now = self._clock()
        life = max(1.0, grant_expires - now)
        access_life = min(float(self._settings.access_token_seconds), life)
        access = {
            "g": handle,
            "aud": record.audience,
            "cid": record.client_id,
            "scope": GRANTED_SCOPE,
            "iat": int(now),
        }
        refresh = {"g": handle, "cid": record.client_id, "n": record.generation}
        return {
            "access_token": self._sealer.seal(ACCESS_PURPOSE, access, ttl=access_life),
            "token_type": "Bearer",
            "expires_in": int(access_life),
            "refresh_token": self._sealer.seal(REFRESH_PURPOSE, refresh, ttl=life),
            "scope": GRANTED_SCOPE,
        }

    # -- refresh ---------------------------------------------------------------

    async def refresh(self, client_id: str, token: str, resource: str | None) -> dict[str, Any]:
        """A new pair for a refresh token, once; a replay of a spent one ends the grant."""
        claims = self._open(REFRESH_PURPOSE, token)
        if claims is None or not same(str(claims.get("cid", "")), client_id):
            raise InvalidGrant("the refresh token is invalid, expired or for another client")
        handle, generation = str(claims.get("g", "")), claims.get("n")
        found, record = await self._grant(handle)
        if resource is not None and canonical_resource(resource) != canonical_resource(
            record.audience
        ):
            raise InvalidTarget("resource is not the one this grant was issued for")
        if generation == record.generation:
            rotated = replace(record, generation=record.generation + 1, rotated=self._clock())
            ttl = found.expires - self._clock()
            if await self._state.replace(BOUND_GRANT, handle, found, rotated.to_record(), ttl):
                GRANT_EVENTS.labels("refreshed").inc()
                return self._pair(handle, rotated, found.expires)
            raise InvalidGrant("this refresh token was used by a concurrent request")
        just_replaced = generation == record.generation - 1
        if just_replaced and self._clock() - record.rotated < REUSE_GRACE_SECONDS:
            raise InvalidGrant("this refresh token was used by a concurrent request")
        await self._end(handle, "reused")
        raise InvalidGrant("this refresh token was already used; the grant has ended")

    # -- revocation ------------------------------------------------------------

    async def revoke(self, token: str, client_id: str) -> None:
        """RFC 7009: end the grant behind an access or refresh token of ``client_id``.
        Anything that is not a live token of ours is ignored (the RFC's 200)."""
        claims = self._open(ACCESS_PURPOSE, token) or self._open(REFRESH_PURPOSE, token)
        if claims is None:
            return
        if not same(str(claims.get("cid", "")), client_id):
            raise InvalidClient("the token was issued to another client")
        await self._end(str(claims.get("g", "")), "revoked")

    async def _end(self, handle: str, why: str) -> None:
        if await self._state.take(BOUND_GRANT, handle) is not None:
            GRANT_EVENTS.labels(why).inc()

    # -- resource servers --------------------------------------------------------

    async def exchange(
        self, caller: ResourceServer, subject_token: str, subject_token_type: str
    ) -> dict[str, Any]:
        """RFC 8693: the key, for the resource server the access token is for."""
        if subject_token_type != ACCESS_TOKEN_TYPE:
            raise InvalidRequest(f"subject_token_type must be {ACCESS_TOKEN_TYPE}")
        access = self.open_access(subject_token)
        if access is None or canonical_resource(access.audience) != caller.canonical:
            raise InvalidGrant("the subject token is invalid, expired or for another resource")
        _, record = await self._grant(access.grant)
        GRANT_EVENTS.labels("exchanged").inc()
        return {
            "access_token": record.key,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": max(1, int(access.expires - self._clock())),
        }

    async def introspect(
        self, caller: ResourceServer | None, token: str
    ) -> tuple[AccessToken, BoundGrant] | None:
        """The access token and its grant, if the token is live and ``caller`` its audience."""
        access = self.open_access(token)
        if access is None or caller is None:
            return None
        if canonical_resource(access.audience) != caller.canonical:
            return None
        found = await self._state.get(BOUND_GRANT, access.grant)
        return (access, BoundGrant.from_record(found.data)) if found else None

    def open_access(self, token: str) -> AccessToken | None:
        claims = self._open(ACCESS_PURPOSE, token, with_expiry=True)
        if claims is None:
            return None
        data = claims["d"]
        try:
            return AccessToken(
                str(data["g"]),
                str(data["aud"]),
                str(data["cid"]),
                str(data["scope"]),
                int(data["iat"]),
                int(claims["exp"]),
            )
        except (KeyError, TypeError, ValueError):
            return None

    # -- helpers -----------------------------------------------------------------

    def _open(
        self, purpose: str, token: str, *, with_expiry: bool = False
    ) -> dict[str, Any] | None:
        try:
            claims = self._sealer.open_claims(purpose, token)
        except SealError:
            return None
        return claims if with_expiry else claims["d"]

    async def _grant(self, handle: str) -> tuple[Opened, BoundGrant]:
        found = await self._state.get(BOUND_GRANT, handle)
        if found is None:
            raise InvalidGrant("the grant has ended (revoked, expired or replaced); sign in again")
        return found, BoundGrant.from_record(found.data)

"""Sealed records: compact JWE (``dir`` + ``A256GCM``) under keys derived from the secrets.

Every record names its purpose and (except client ids) its expiry inside the
ciphertext, so a record sealed for one use cannot be replayed as another and an
expired one is refused whatever the store still holds. The header's ``kid``
picks the key, so records sealed under a secret still listed in
``PREVIOUS_SECRETS`` keep opening after a rotation.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwcrypto import jwe, jwk
from jwcrypto.common import JWException

_ALGS = ["dir", "A256GCM"]
_HEADER = {"alg": "dir", "enc": "A256GCM"}


class SealError(Exception):
    """A sealed value is malformed, tampered with, sealed for another purpose, or expired."""


def _hkdf(secret: str, info: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"openrouter-oauth/v1", info=info
    ).derive(secret.encode("utf-8"))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Sealer:
    """Seals with the current secret; opens with the current or any previous one."""

    def __init__(
        self, secret: str, previous: Sequence[str] = (), clock: Callable[[], float] = time.time
    ) -> None:
        self._keys: dict[str, jwk.JWK] = {}
        for s in (secret, *previous):
            kid = _b64(_hkdf(s, b"key id"))[:11]
            self._keys.setdefault(kid, jwk.JWK(kty="oct", k=_b64(_hkdf(s, b"state sealing"))))
        self._current = next(iter(self._keys))
        self._clock = clock

    def seal(self, purpose: str, data: dict[str, Any], ttl: float | None = None) -> str:
        claims: dict[str, Any] = {"p": purpose, "d": data}
        if ttl is not None:
            claims["exp"] = int(self._clock() + ttl)
        token = jwe.JWE(
            json.dumps(claims, separators=(",", ":")).encode(),
            protected={**_HEADER, "kid": self._current},
        )
        token.add_recipient(self._keys[self._current])
        return token.serialize(compact=True)

    def open(self, purpose: str, sealed: str) -> dict[str, Any]:
        claims = self.open_claims(purpose, sealed)
        return claims["d"]

    def open_claims(self, purpose: str, sealed: str) -> dict[str, Any]:
        """The record's claims: ``d`` (data) and ``exp`` when it has one."""
        try:
            token = jwe.JWE()
            token.allowed_algs = _ALGS
            token.deserialize(sealed)
            key = self._keys.get(token.jose_header.get("kid", ""))
            if key is None:
                raise SealError("sealed with an unknown key")
            token.decrypt(key)
            claims = json.loads(token.payload)
        except (JWException, ValueError, TypeError, KeyError) as exc:
            raise SealError("not a valid sealed record") from exc
        if not isinstance(claims, dict) or claims.get("p") != purpose:
            raise SealError("sealed for another purpose")
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, int) or exp <= self._clock()):
            raise SealError("expired")
        if not isinstance(claims.get("d"), dict):
            raise SealError("not a valid sealed record")
        return claims

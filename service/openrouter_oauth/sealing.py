"""Sealed records: compact JWE (``dir`` + ``A256GCM``) under keys derived from the secrets.

Every record names its purpose, its issuer and (except client ids) its expiry
inside the ciphertext, so a record sealed for one use cannot be replayed as
another, two issuers that share a secret cannot accept each other's client ids
or codes, and an expired one is refused whatever the store still holds. The header's ``kid``
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
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

# joserfc rather than jwcrypto: sealing is on every step of a login, and joserfc is the
# faster of the two (figures in the README's dependency table, from bench.components).
_ALGS = ["dir", "A256GCM"]


class SealError(Exception):
    """A sealed value is malformed, tampered with, sealed for another purpose or issuer, or
    expired."""


def _hkdf(secret: str, info: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"openrouter-oauth/v1", info=info
    ).derive(secret.encode("utf-8"))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Sealer:
    """Seals with the current secret; opens with the current or any previous one."""

    def __init__(
        self,
        secret: str,
        previous: Sequence[str] = (),
        *,
        issuer: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys: dict[str, OctKey] = {}
        for s in (secret, *previous):
            kid = _b64(_hkdf(s, b"key id"))[:11]
            keys.setdefault(kid, OctKey.import_key(_hkdf(s, b"state sealing"), {"kid": kid}))
        self._current_kid, self._current = next(iter(keys.items()))
        self._keys = KeySet(list(keys.values()))
        self._header = {"alg": "dir", "enc": "A256GCM", "kid": self._current_kid}
        self._clock = clock
        self._issuer = issuer

    def seal(self, purpose: str, data: dict[str, Any], ttl: float | None = None) -> str:
        claims: dict[str, Any] = {"p": purpose, "i": self._issuer, "d": data}
        if ttl is not None:
            claims["exp"] = int(self._clock() + ttl)
        # UTF-8, not \u escapes: a character costs what it weighs, 1-4 bytes, not 6-12.
        payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()
        return jwe.encrypt_compact(self._header, payload, self._current, algorithms=_ALGS)

    def open(self, purpose: str, sealed: str) -> dict[str, Any]:
        claims = self.open_claims(purpose, sealed)
        return claims["d"]

    def open_claims(self, purpose: str, sealed: str) -> dict[str, Any]:
        """The record's claims: ``d`` (data) and ``exp`` when it has one."""
        try:
            opened = jwe.decrypt_compact(sealed, self._keys, algorithms=_ALGS)
            claims = json.loads(opened.plaintext or b"")
        except JoseError as exc:
            reason = "sealed with an unknown key" if exc.error == "invalid_key_id" else None
            raise SealError(reason or "not a valid sealed record") from None
        except (ValueError, TypeError, KeyError):
            raise SealError("not a valid sealed record") from None
        if not isinstance(claims, dict) or claims.get("p") != purpose:
            raise SealError("sealed for another purpose")
        if claims.get("i") != self._issuer:
            raise SealError("sealed by another issuer")
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, int) or exp <= self._clock()):
            raise SealError("expired")
        if not isinstance(claims.get("d"), dict):
            raise SealError("not a valid sealed record")
        return claims

"""Resource servers calling us: who may ask, at /introspect and (bound mode) /token.

Callers authenticate with an ``id:secret`` pair from ``INTROSPECTION_CREDENTIALS`` or
``RESOURCE_SERVERS`` (``client_secret_basic`` or ``client_secret_post``); secrets are
compared in constant time, as SHA-256 digests so their lengths do not leak either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_plus

from .errors import UnauthenticatedCaller
from .resources import ResourceServer

AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


@dataclass(frozen=True)
class Caller:
    """One resource server allowed to introspect; ``server`` when it is a declared one."""

    client_id: str
    secret_digest: bytes
    server: ResourceServer | None = None


def callers(
    credentials: Sequence[tuple[str, str]], servers: Sequence[ResourceServer] = ()
) -> tuple[Caller, ...]:
    return tuple(
        Caller(cid, hashlib.sha256(secret.encode()).digest()) for cid, secret in credentials
    ) + tuple(Caller(s.id, s.secret_digest, s) for s in servers)


Credentials = tuple[str, str]


def presented_credentials(
    authorization: str, form: Mapping[str, Sequence[str]]
) -> tuple[Credentials, ...]:
    """The caller's id and secret from HTTP Basic or the form body: the readings to try.

    RFC 6749 §2.3.1 has Basic's id and secret form-encoded before base64, so that is read
    first. The raw reading is tried too: many clients (ours before this rule was followed
    among them) send the secret as it is, and a secret such as ``a+b`` reads differently
    decoded. Accepting both gives nothing away: each reading still needs the whole secret.
    """
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ()
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            return ()
        unquoted = (unquote_plus(client_id), unquote_plus(secret))
        raw = (client_id, secret)
        return (unquoted, raw) if unquoted != raw else (raw,)
    client_id, secret = form.get("client_id") or [], form.get("client_secret") or []
    if len(client_id) == 1 and len(secret) == 1:
        return ((client_id[0], secret[0]),)
    return ()


def authenticate(allowed: Sequence[Caller], presented: Sequence[Credentials]) -> Caller:
    """The matching caller; every candidate is compared, so timing tells nothing."""
    if not presented:
        raise UnauthenticatedCaller("the caller's credentials are required")
    found = None
    for client_id, secret in presented:
        digest = hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()
        for caller in allowed:
            same_id = hmac.compare_digest(
                caller.client_id.encode(), client_id.encode("utf-8", "surrogateescape")
            )
            same_secret = hmac.compare_digest(caller.secret_digest, digest)
            if same_id and same_secret:
                found = caller
    if found is None:
        raise UnauthenticatedCaller("the caller's credentials are not valid")
    return found

"""A token verifier for MCP servers built on the official MCP Python SDK (``pip install
'openrouter-oauth-provider[mcp]'``).

The bearer token an MCP client presents is the person's OpenRouter API key, handed out
by this authorization server. :class:`OpenRouterKeyVerifier` checks it at the
server's ``POST /introspect`` (RFC 7662) with the resource server's own credentials,
remembers the answer for a few seconds, and gives the tool an :class:`OpenRouterKey`:
the key itself (to call OpenRouter as that person) and what introspection said
about it (label, budget, usage)::

    from mcp.server.mcpserver import MCPServer
    from openrouter_oauth.mcp_verifier import OpenRouterKeyVerifier, auth_settings, current_key

    verifier = OpenRouterKeyVerifier(ISSUER, client_id="my-server", client_secret=SECRET)
    server = MCPServer("demo", token_verifier=verifier, auth=auth_settings(ISSUER, MCP_URL))

    @server.tool()
    async def budget() -> str:
        return f"{current_key().limit_remaining} USD left"

With ``ACCESS_TOKENS=bound`` on the authorization server, give the verifier this
server's ``resource`` (its MCP endpoint URL, as declared in ``RESOURCE_SERVERS``, whose
id and secret are then the ``client_id`` and ``client_secret``). The bearer token is
then a token of the authorization server's, not the key: the verifier accepts it only if
introspection says it was issued for this resource, and gets the key behind it by token
exchange (RFC 8693), once per token, kept until the token expires. Tools do not change:
``current_key().key`` is the key in both modes.

This module imports the SDK, so it is imported only by servers that use it; the
authorization server itself never does.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import Field

try:
    from mcp.server.auth.middleware.auth_context import get_access_token
    from mcp.server.auth.provider import AccessToken
    from mcp.server.auth.settings import AuthSettings
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "openrouter_oauth.mcp_verifier needs the MCP Python SDK: "
        "pip install 'openrouter-oauth-provider[mcp]'"
    ) from exc

from .resources import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT, canonical_resource

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "SCOPE",
    "IntrospectionOutageMiddleware",
    "IntrospectionUnavailable",
    "OpenRouterKey",
    "OpenRouterKeyVerifier",
    "auth_settings",
    "current_key",
]

log = logging.getLogger(__name__)

SCOPE = "openrouter"
"""The one scope this authorization server grants (the key can do what OpenRouter allows)."""

# Longer than any OpenRouter key by far; a longer bearer token is refused without asking.
_MAX_TOKEN_LENGTH = 512
# Bound mode: the authorization server's own tokens carry the client_id, sealed.
_MAX_BOUND_TOKEN_LENGTH = 8 * 1024


class IntrospectionUnavailable(RuntimeError):
    """The authorization server could not say whether a key works (down, 5xx, timeout,
    or it refused our own credentials). Not the caller's fault, so not a 401."""


class OpenRouterKey(AccessToken):
    """An accepted bearer token: the person's OpenRouter key and what introspection said.

    :attr:`key` is the key itself, to call OpenRouter on the person's behalf and at their
    expense; never log it or send it anywhere but OpenRouter. ``token`` is the bearer
    token the client sent: the key too, except in bound mode, where it is the
    authorization server's token and the key came from the exchange.
    ``claims`` is the introspection answer (RFC 7662 names where they exist, OpenRouter's
    otherwise) plus ``iss``, the authorization server that was asked.
    """

    exchanged_key: str | None = Field(default=None, exclude=True, repr=False)

    @property
    def key(self) -> str:
        return self.exchanged_key or self.token

    def _claim(self, name: str) -> Any:
        return (self.claims or {}).get(name)

    @property
    def label(self) -> str | None:
        """The name the key was created under: the MCP client's name at login."""
        return self._claim("label")

    @property
    def limit(self) -> float | None:
        """The budget the person chose at OpenRouter, in USD; None means unlimited."""
        return self._claim("limit")

    @property
    def limit_remaining(self) -> float | None:
        """USD left of the budget; None means unlimited."""
        return self._claim("limit_remaining")

    @property
    def usage(self) -> float | None:
        """USD spent with this key so far."""
        return self._claim("usage")

    @property
    def is_free_tier(self) -> bool | None:
        return self._claim("is_free_tier")


def current_key() -> OpenRouterKey:
    """The key of the request being handled, for use inside a tool.

    Raises :class:`LookupError` outside an authenticated request, or when the server's
    ``token_verifier`` is not an :class:`OpenRouterKeyVerifier`.
    """
    token = get_access_token()
    if not isinstance(token, OpenRouterKey):
        raise LookupError(
            "no OpenRouter key for this request: is the server's token_verifier "
            "an OpenRouterKeyVerifier, and is auth configured?"
        )
    return token


def auth_settings(
    issuer_url: str, resource_server_url: str, *, bound: bool = False
) -> AuthSettings:
    """The SDK's ``AuthSettings`` for a server that accepts this issuer's tokens.

    ``resource_server_url`` is the MCP endpoint's public URL (``https://host/mcp``); the
    SDK serves its protected-resource metadata (RFC 9728), naming ``issuer_url``, and
    points 401 answers at it, which is how clients find the authorization server.
    ``validate_token_resource`` is on only when ``bound`` (``ACCESS_TOKENS=bound``): an
    OpenRouter key has no audience (RFC 8707), so no verifier can truthfully say it was
    issued for this server (see "Keys are not bound to a resource" in SECURITY.md),
    while a bound token's audience is checked by the verifier and by the SDK.
    """
    return AuthSettings(
        issuer_url=issuer_url,
        resource_server_url=resource_server_url,
        required_scopes=[SCOPE],
        validate_token_resource=bound,
    )


@dataclass
class _Entry:
    until: float
    claims: dict[str, Any] | None  # None: the key does not work, or not for this server
    # Bound mode: the whole answer with its exchanged key, built once and shared by the
    # cache's hits (building it was most of a hit's cost). Never in key mode, where the
    # bearer token is the key and the cache keeps no key.
    ready: OpenRouterKey | None = None


@dataclass(frozen=True)
class _Exchanged:
    until: float  # the access token's expiry, on the verifier's clock
    key: str


class OpenRouterKeyVerifier:
    """``TokenVerifier`` for the MCP Python SDK, checking keys at ``{issuer}/introspect``.

    - A working key gives an :class:`OpenRouterKey`; anything else gives ``None``, and
      the SDK answers 401 with ``WWW-Authenticate`` pointing at the resource metadata,
      on which clients log in again.
    - Answers are cached per token (by its SHA-256; in key mode, where the token is the
      key, the key itself is never kept) for ``cache_seconds``, refusals for
      ``negative_cache_seconds``. Trade-off: a key revoked
      at OpenRouter still works here for up to ``cache_seconds``. ``0`` disables either.
    - When the authorization server cannot answer (unreachable, timeout, 5xx, or it
      refuses this server's credentials) the verifier raises
      :class:`IntrospectionUnavailable`: the client sees a failure it can retry with the
      same key, instead of a 401 that would send the person through a new login that
      cannot succeed either. With :class:`IntrospectionOutageMiddleware` around the app
      that failure is a 503 with ``Retry-After``; without it, Starlette answers 500 and
      logs the exception. Pass ``refuse_when_unavailable=True`` to answer ``None``
      (401) instead, as most verifiers do. Either way the failure is logged, without
      the key.
    - ``resource`` (bound mode): only tokens whose audience is this resource are
      accepted; the key comes from one token exchange per token (concurrent requests
      with a new token share it), kept until the token expires. Revocation at the
      authorization server reaches this server within ``cache_seconds``.
    """

    def __init__(
        self,
        issuer_url: str,
        *,
        client_id: str,
        client_secret: str,
        cache_seconds: float = 10.0,
        negative_cache_seconds: float = 2.0,
        timeout_seconds: float = 5.0,
        refuse_when_unavailable: bool = False,
        max_cache_entries: int = 10_000,
        introspection_url: str | None = None,
        resource: str | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not client_id or not client_secret:
            raise ValueError("introspection needs this server's client_id and client_secret")
        self.issuer_url = issuer_url.rstrip("/")
        self.introspection_url = introspection_url or f"{self.issuer_url}/introspect"
        self.token_url = f"{self.issuer_url}/token"
        self.resource = resource
        self._audience = canonical_resource(resource) if resource else None
        self._max_length = _MAX_BOUND_TOKEN_LENGTH if resource else _MAX_TOKEN_LENGTH
        self._keys: dict[bytes, _Exchanged] = {}
        self._exchanges: dict[bytes, asyncio.Future[str | None]] = {}
        self.cache_seconds = cache_seconds
        self.negative_cache_seconds = negative_cache_seconds
        self.refuse_when_unavailable = refuse_when_unavailable
        self.max_cache_entries = max_cache_entries
        self._auth = httpx.BasicAuth(client_id, client_secret)
        self._timeout = timeout_seconds
        self._http = http_client
        self._owns_http = http_client is None
        self._clock = clock
        self._cache: dict[bytes, _Entry] = {}

    async def verify_token(self, token: str) -> OpenRouterKey | None:
        if not token or len(token) > self._max_length:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        try:
            now = self._clock()
            entry = self._cache.get(digest)
            if entry is None or entry.until <= now:
                entry = self._remember(digest, await self._introspect(token))
            if entry.ready is not None and self._kept_key(digest, now) is not None:
                return None if _expired(entry.ready) else entry.ready
            accepted = self._accepted(token, entry.claims)
            if accepted is None or self.resource is None:
                return accepted
            key = await self._exchanged_key(token, digest)
        except IntrospectionUnavailable as exc:
            log.warning("key check failed, introspection unavailable: %s", exc)
            if self.refuse_when_unavailable:
                return None
            raise
        if not key:
            return None
        entry.ready = accepted.model_copy(update={"exchanged_key": key})
        return entry.ready

    async def aclose(self) -> None:
        """Close the HTTP client, if this verifier made it."""
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None

    def _client(self) -> httpx.AsyncClient:
        # Made on first use, inside the server's event loop, and reused for its pool.
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
        return self._http

    async def _introspect(self, token: str) -> dict[str, Any] | None:
        """The introspection answer for an active key, None for an inactive one."""
        form = {"token": token, "token_type_hint": "access_token"}
        body = self._json_object(
            await self._post(self.introspection_url, form), self.introspection_url
        )
        return body if body.get("active") is True else None

    async def _post(self, url: str, form: dict[str, str]) -> httpx.Response:
        """A call with this server's own credentials; no answer is "unavailable"."""
        try:
            response = await self._client().post(
                url, data=form, auth=self._auth, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise IntrospectionUnavailable(f"{type(exc).__name__} from {url}") from exc
        if response.status_code == 401:
            raise IntrospectionUnavailable(
                f"{url} refused this server's credentials (401): check the client id and "
                "secret against INTROSPECTION_CREDENTIALS (or RESOURCE_SERVERS)"
            )
        return response

    @staticmethod
    def _json_object(response: httpx.Response, url: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise IntrospectionUnavailable(f"{url} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise IntrospectionUnavailable(f"{url} answered non-JSON") from None
        if not isinstance(body, dict):
            raise IntrospectionUnavailable(f"{url} answered a non-object")
        return body

    async def _exchanged_key(self, token: str, digest: bytes) -> str | None:
        """The key behind a bound token: cached, or one exchange shared by all who ask."""
        kept = self._kept_key(digest, self._clock())
        if kept is not None:
            return kept
        pending = self._exchanges.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._exchange(token, digest))
            self._exchanges[digest] = pending
            pending.add_done_callback(lambda _: self._exchanges.pop(digest, None))
        return await asyncio.shield(pending)

    def _kept_key(self, digest: bytes, now: float) -> str | None:
        """The exchanged key, until the token's expiry (or until the cache evicts it)."""
        cached = self._keys.get(digest)
        return cached.key if cached is not None and cached.until > now else None

    async def _exchange(self, token: str, digest: bytes) -> str | None:
        """RFC 8693 at the token endpoint; None when the token is refused (its grant ended)."""
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
        }
        response = await self._post(self.token_url, form)
        if response.status_code == 400 and _error_code(response) == "invalid_grant":
            return None
        body = self._json_object(response, self.token_url)
        key, lifetime = body.get("access_token"), body.get("expires_in")
        if not isinstance(key, str) or not key or not _is_epoch(lifetime):
            raise IntrospectionUnavailable(f"{self.token_url} answered no key")
        now = self._clock()
        _make_room(self._keys, now, self.max_cache_entries)
        self._keys[digest] = _Exchanged(now + float(lifetime), key)
        return key

    def _remember(self, digest: bytes, claims: dict[str, Any] | None) -> _Entry:
        now = self._clock()
        ttl = self.cache_seconds if claims is not None else self.negative_cache_seconds
        # The audience is checked once per answer, not on every cached call: parsing the
        # URLs was most of a cache hit's cost.
        for_us = claims is not None and self._for_this_resource(claims)
        entry = _Entry(now + ttl, claims if for_us else None)
        if ttl <= 0:
            return entry
        _make_room(self._cache, now, self.max_cache_entries)
        self._cache[digest] = entry
        return entry

    def _accepted(self, token: str, claims: dict[str, Any] | None) -> OpenRouterKey | None:
        if claims is None:  # inactive, or for another resource (see _remember)
            return None
        exp = claims.get("exp")
        if exp is not None and not _is_epoch(exp):
            return None  # an expiry we cannot read is no promise that the key still works
        scope = claims.get("scope")
        accepted = OpenRouterKey(
            token=token,
            client_id=self._client_id(token, claims),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=int(exp) if exp is not None else None,
            resource=self.resource,
            subject=claims.get("sub") if isinstance(claims.get("sub"), str) else None,
            claims={**claims, "iss": self.issuer_url},
        )
        return None if _expired(accepted) else accepted

    def _for_this_resource(self, claims: dict[str, Any]) -> bool:
        """Bound mode: the token's audience is this server (MCP: "issued specifically
        for them"); the authorization server already said inactive otherwise."""
        if self.resource is None:
            return True
        audience = claims.get("aud")
        return isinstance(audience, str) and canonical_resource(audience) == self._audience

    def _client_id(self, token: str, claims: dict[str, Any]) -> str:
        """The SDK ties a session to (client_id, iss, sub). A bound token names its OAuth
        client; for a key, introspection does not, so the key's fingerprint stands in: a
        session opened with one key cannot be used with another."""
        named = claims.get("client_id")
        if self.resource is not None and isinstance(named, str) and named:
            return named
        return "key-" + hashlib.sha256(token.encode()).hexdigest()[:16]


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def _make_room(cache: dict[bytes, Any], now: float, limit: int) -> None:
    """Before adding to a full cache: drop expired entries; if that frees nothing, the
    oldest tenth (insertion order)."""
    if len(cache) < limit:
        return
    for digest in [d for d, e in cache.items() if e.until <= now]:
        del cache[digest]
    if len(cache) >= limit:
        for digest in list(cache)[: max(1, limit // 10)]:
            del cache[digest]


def _expired(token: OpenRouterKey) -> bool:
    """Checked on every cached hit too: a cached answer never outlives its ``exp``."""
    return token.expires_at is not None and token.expires_at <= time.time()


def _is_epoch(value: object) -> bool:
    """A JSON number of seconds (RFC 7662 ``exp``): not a string, a boolean or NaN."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class IntrospectionOutageMiddleware:
    """Answers 503 ``temporarily_unavailable`` (with ``Retry-After``) when a key could not
    be checked, instead of the 500 and logged traceback an unexpected exception gets.

    The SDK calls the verifier from Starlette's authentication middleware, outside the
    app's exception handlers, so this has to wrap it::

        app = server.streamable_http_app()
        app.add_middleware(IntrospectionOutageMiddleware)
        uvicorn.run(app, host=..., port=...)
    """

    def __init__(self, app: ASGIApp, retry_after_seconds: int = 5) -> None:
        self.app = app
        self.retry_after = str(retry_after_seconds).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except IntrospectionUnavailable:
            if started:  # too late to change the answer
                raise
            await self._unavailable(send)

    async def _unavailable(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": "temporarily_unavailable",
                "error_description": "the key could not be checked right now; retry shortly",
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"retry-after", self.retry_after),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

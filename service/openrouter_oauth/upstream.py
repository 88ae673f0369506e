"""The OpenRouter client: the authorization page URL, code exchange, key information.

Failures are sorted by what the caller should do: :class:`UpstreamRejected`
(the code or verifier is bad; final), :class:`InvalidKey` (401 on a key), and
:class:`UpstreamUnavailable` (network, timeout, 5xx, a malformed answer; retryable).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from .metrics import UPSTREAM_ERRORS, UPSTREAM_SECONDS, timed


class UpstreamError(Exception):
    kind = "error"  # the metrics label


class UpstreamRejected(UpstreamError):
    """OpenRouter refused the exchange (4xx): the code is unusable."""

    kind = "rejected"


class InvalidKey(UpstreamError):
    """OpenRouter does not know this key (401)."""

    kind = "invalid_key"


class UpstreamUnavailable(UpstreamError):
    """OpenRouter could not answer properly; the same request may succeed later."""

    kind = "unavailable"


@asynccontextmanager
async def _observed(operation: str) -> AsyncIterator[None]:
    try:
        async with timed(UPSTREAM_SECONDS, operation):
            yield
    except UpstreamError as exc:
        UPSTREAM_ERRORS.labels(operation, exc.kind).inc()
        raise


@dataclass(frozen=True)
class IssuedKey:
    key: str
    user_id: str | None


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes


class OpenRouter:
    """One pooled aiohttp session per worker (made inside the running event loop).

    aiohttp rather than httpx here: these calls are on the hot path, and aiohttp is
    the faster of the two (figures in the README's dependency table, ``bench.components``).
    """

    def __init__(self, base_url: str, *, timeout: float) -> None:
        self.base_url = base_url
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout),
            connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
            headers={"User-Agent": "openrouter-oauth-provider"},
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.close()

    def authorization_url(self, *, callback_url: str, code_challenge: str, key_label: str) -> str:
        query = urlencode(
            {
                "callback_url": callback_url,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
                "key_label": key_label,
            }
        )
        return f"{self.base_url}/auth?{query}"

    async def _request(self, method: str, path: str, **kwargs: Any) -> _Reply:
        try:
            async with self._http.request(method, self.base_url + path, **kwargs) as response:
                reply = _Reply(response.status, await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable(f"OpenRouter unreachable ({type(exc).__name__})") from None
        if reply.status >= 500 or reply.status == 429:
            raise UpstreamUnavailable(f"OpenRouter answered HTTP {reply.status}")
        return reply

    @staticmethod
    def _json(reply: _Reply) -> dict[str, Any]:
        try:
            body = json.loads(reply.body)
        except ValueError:
            raise UpstreamUnavailable("OpenRouter answered with malformed JSON") from None
        if not isinstance(body, dict):
            raise UpstreamUnavailable("OpenRouter answered with an unexpected shape")
        return body

    async def exchange(self, code: str, verifier: str) -> IssuedKey:
        async with _observed("exchange"):
            return await self._exchange(code, verifier)

    async def _exchange(self, code: str, verifier: str) -> IssuedKey:
        response = await self._request(
            "POST",
            "/api/v1/auth/keys",
            json={"code": code, "code_verifier": verifier, "code_challenge_method": "S256"},
        )
        if response.status != 200:
            raise UpstreamRejected(f"OpenRouter refused the code (HTTP {response.status})")
        body = self._json(response)
        key, user_id = body.get("key"), body.get("user_id")
        if not isinstance(key, str) or not key:
            raise UpstreamUnavailable("OpenRouter answered without a key")
        return IssuedKey(key, user_id if isinstance(user_id, str) else None)

    async def key_info(self, key: str) -> dict[str, Any]:
        async with _observed("key_info"):
            return await self._key_info(key)

    async def _key_info(self, key: str) -> dict[str, Any]:
        response = await self._request(
            "GET", "/api/v1/key", headers={"Authorization": f"Bearer {key}"}
        )
        if response.status in (401, 403):
            raise InvalidKey("OpenRouter does not accept this key")
        if response.status != 200:
            raise UpstreamUnavailable(f"OpenRouter answered HTTP {response.status}")
        data = self._json(response).get("data")
        if not isinstance(data, dict):
            raise UpstreamUnavailable("OpenRouter answered without key data")
        return data

"""The OpenRouter client: the authorization page URL, code exchange, key information.

Failures are sorted by what the caller should do: :class:`UpstreamRejected`
(the code or verifier is bad; final), :class:`InvalidKey` (401 on a key), and
:class:`UpstreamUnavailable` (network, timeout, 5xx, a malformed answer; retryable).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

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


class OpenRouter:
    def __init__(
        self, base_url: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.base_url = base_url
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            trust_env=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            headers={"User-Agent": "openrouter-oauth-provider"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

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

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"OpenRouter unreachable ({type(exc).__name__})") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise UpstreamUnavailable(f"OpenRouter answered HTTP {response.status_code}")
        return response

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
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
        if response.status_code != 200:
            raise UpstreamRejected(f"OpenRouter refused the code (HTTP {response.status_code})")
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
        if response.status_code in (401, 403):
            raise InvalidKey("OpenRouter does not accept this key")
        if response.status_code != 200:
            raise UpstreamUnavailable(f"OpenRouter answered HTTP {response.status_code}")
        data = self._json(response).get("data")
        if not isinstance(data, dict):
            raise UpstreamUnavailable("OpenRouter answered without key data")
        return data

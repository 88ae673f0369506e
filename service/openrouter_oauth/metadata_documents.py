"""Fetching Client ID Metadata Documents without becoming an SSRF proxy.

The host is resolved once, every address must be public, and the request goes
to that very address (with the original name for TLS and ``Host``), so a DNS
answer that changes between check and connect cannot point us inward. No
redirects, a small size cap, a short timeout; documents are cached as their
``Cache-Control`` allows.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .errors import InvalidClient

MAX_DOCUMENT_BYTES = 16 * 1024
DEFAULT_CACHE_SECONDS = 300
MAX_CACHE_SECONDS = 86400
_MAX_AGE = re.compile(r"max-age=(\d+)")

AddressPolicy = Callable[[ipaddress.IPv4Address | ipaddress.IPv6Address], bool]


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True only for globally routable unicast addresses."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local or ip.is_private
    )


def cache_seconds(cache_control: str) -> int:
    """How long a document may be reused, from its Cache-Control header."""
    value = cache_control.lower()
    if "no-store" in value or "no-cache" in value:
        return 0
    found = _MAX_AGE.search(value)
    if found is None:
        return DEFAULT_CACHE_SECONDS
    return min(int(found.group(1)), MAX_CACHE_SECONDS)


class MetadataDocumentFetcher:
    def __init__(
        self,
        *,
        timeout: float = 5.0,
        address_allowed: AddressPolicy = is_public_address,
        verify: ssl.SSLContext | bool = True,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._address_allowed = address_allowed
        self._clock = clock
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._http = httpx.AsyncClient(
            timeout=timeout, verify=verify, follow_redirects=False, trust_env=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __call__(self, url: str) -> dict[str, Any]:
        cached = self._cache.get(url)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        document, max_age = await self._fetch(url)
        if max_age > 0:
            self._cache[url] = (self._clock() + max_age, document)
            self._cache.move_to_end(url)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return document

    async def _resolve(self, host: str, port: int) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise InvalidClient("client metadata document host does not resolve") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses or not all(self._address_allowed(a) for a in addresses):
            raise InvalidClient("client metadata document host is not a public address")
        return addresses[0]

    async def _fetch(self, url: str) -> tuple[dict[str, Any], int]:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 443
        ip = await self._resolve(host, port)
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        pinned = urlunsplit(parts._replace(netloc=f"{literal}:{port}"))
        headers = {"Host": parts.netloc, "Accept": "application/json"}
        try:
            async with self._http.stream(
                "GET", pinned, headers=headers, extensions={"sni_hostname": host}
            ) as response:
                if response.status_code != 200:
                    raise InvalidClient(
                        f"client metadata document answered HTTP {response.status_code}"
                    )
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise InvalidClient("client metadata document is too large")
                max_age = cache_seconds(response.headers.get("cache-control", ""))
        except httpx.HTTPError:
            raise InvalidClient("client metadata document could not be fetched") from None
        try:
            document = json.loads(body)
        except ValueError:
            raise InvalidClient("client metadata document is not JSON") from None
        if not isinstance(document, dict):
            raise InvalidClient("client metadata document is not a JSON object")
        return document, max_age

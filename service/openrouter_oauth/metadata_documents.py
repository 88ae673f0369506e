"""Fetching Client ID Metadata Documents without becoming an SSRF proxy or a memory sink.

The host is resolved once, every address must be public, and the request goes
to that very address (with the original name for TLS and ``Host``), so a DNS
answer that changes between check and connect cannot point us inward. No
redirects; one deadline for the whole fetch (a host that drips bytes cannot
hold a request longer); the body is capped as received and as decoded (we ask
for ``identity``; a single ``gzip`` layer is decoded incrementally and never
beyond the cap; stacked or other encodings are refused). Documents are cached
as their ``Cache-Control`` allows.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
import ssl
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from .errors import InvalidClient

MAX_DOCUMENT_BYTES = 16 * 1024
FETCH_DEADLINE_SECONDS = 5.0
DEFAULT_CACHE_SECONDS = 300
MAX_CACHE_SECONDS = 86400
_MAX_AGE = re.compile(r"max-age=(\d+)")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]

# IPv6 forms that carry an IPv4 address, which must then pass the IPv4 rules:
# NAT64 (RFC 6052, well-known and local-use prefixes) and IPv4-compatible (::a.b.c.d).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Teredo tunnels to a host whose address is obfuscated: never a document host.
_TEREDO = ipaddress.ip_network("2001::/32")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the embedding forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _NAT64) or ip in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses, judging embedded IPv4 as IPv4."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _TEREDO or ip.is_site_local:
            return False
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_public_address(inner)
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local or ip.is_private
    )


def public_or_loopback(ip: IPAddress) -> bool:
    """The development policy (METADATA_DOCUMENTS_ALLOW_LOOPBACK): public, or this machine."""
    return ip.is_loopback or is_public_address(ip)


def cache_seconds(cache_control: str) -> int:
    """How long a document may be reused, from its Cache-Control header."""
    value = cache_control.lower()
    if "no-store" in value or "no-cache" in value:
        return 0
    found = _MAX_AGE.search(value)
    if found is None:
        return DEFAULT_CACHE_SECONDS
    return min(int(found.group(1)), MAX_CACHE_SECONDS)


def _too_large() -> InvalidClient:
    return InvalidClient(f"client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes")


async def read_capped(chunks: AsyncIterator[bytes], encoding: str) -> bytes:
    """The decoded body, refusing more than the cap on the wire or after decoding."""
    encoding = encoding.strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise InvalidClient("client metadata document uses an unsupported Content-Encoding")
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if encoding == "gzip" else None
    received, body = 0, bytearray()
    async for chunk in chunks:
        received += len(chunk)
        if received > MAX_DOCUMENT_BYTES:
            raise _too_large()
        body += _inflate(inflate, chunk, MAX_DOCUMENT_BYTES + 1 - len(body))
        if len(body) > MAX_DOCUMENT_BYTES:
            raise _too_large()
    if inflate is not None and not inflate.eof:
        raise InvalidClient("client metadata document is not valid gzip")
    return bytes(body)


def _inflate(inflate: Any, chunk: bytes, room: int) -> bytes:
    """Decode at most ``room`` bytes; more input than that room can hold means too large."""
    if inflate is None:
        return chunk
    try:
        out = inflate.decompress(chunk, room)
    except zlib.error:
        raise InvalidClient("client metadata document is not valid gzip") from None
    if inflate.unconsumed_tail:
        raise _too_large()
    return out


class MetadataDocumentFetcher:
    """Fetches and caches client metadata documents under the rules above."""

    def __init__(
        self,
        *,
        deadline: float = FETCH_DEADLINE_SECONDS,
        address_allowed: AddressPolicy = is_public_address,
        verify: ssl.SSLContext | bool = True,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deadline = deadline
        self._address_allowed = address_allowed
        self._clock = clock
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._http = httpx.AsyncClient(
            timeout=deadline, verify=verify, follow_redirects=False, trust_env=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __call__(self, url: str) -> dict[str, Any]:
        cached = self._cache.get(url)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        try:
            async with asyncio.timeout(self._deadline):
                document, max_age = await self._fetch(url)
        except TimeoutError:
            raise InvalidClient(
                f"client metadata document did not arrive within {self._deadline:g} seconds"
            ) from None
        if max_age > 0:
            self._cache[url] = (self._clock() + max_age, document)
            self._cache.move_to_end(url)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return document

    async def _resolve(self, host: str, port: int) -> IPAddress:
        # One answer whether the name does not resolve or resolves inward: two would
        # tell anyone which internal names (cluster services, say) exist.
        refused = InvalidClient("client metadata document host is not a public address")
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise refused from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses or not all(self._address_allowed(a) for a in addresses):
            raise refused
        return addresses[0]

    async def _fetch(self, url: str) -> tuple[dict[str, Any], int]:
        parts = urlsplit(url)
        default_port = 443 if parts.scheme == "https" else 80
        host, port = parts.hostname or "", parts.port or default_port
        ip = await self._resolve(host, port)
        literal = f"[{ip}]" if ip.version == 6 else str(ip)
        pinned = urlunsplit(parts._replace(netloc=f"{literal}:{port}"))
        headers = {
            "Host": parts.netloc,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        }
        try:
            async with self._http.stream(
                "GET", pinned, headers=headers, extensions={"sni_hostname": host}
            ) as response:
                if response.status_code != 200:
                    raise InvalidClient(
                        f"client metadata document answered HTTP {response.status_code}"
                    )
                encoding = response.headers.get("content-encoding", "")
                body = await read_capped(response.aiter_raw(), encoding)
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

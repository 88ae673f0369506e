"""The resource servers (MCP servers) declared in ``RESOURCE_SERVERS``, and RFC 8707
``resource`` values compared the way the MCP specification's canonical URIs are.

In ``bound`` mode every token names one of them as its audience; only that server
may exchange it for the key or learn anything about it by introspection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from .errors import InvalidTarget

_DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 8693 names, shared by the token endpoint and the resource servers' verifier.
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a name
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 - a name


def canonical_resource(uri: str) -> str:
    """``uri`` with scheme and host lower-cased, a default port and a trailing slash dropped,
    so ``HTTPS://MCP.example.com:443/mcp/`` and ``https://mcp.example.com/mcp`` compare equal.
    A URI that cannot be parsed (a port out of range, an unclosed IPv6 bracket) is
    ``invalid_target``."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise InvalidTarget("resource is not a valid URI") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = port if port not in (None, _DEFAULT_PORTS.get(scheme)) else None
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, ""))


@dataclass(frozen=True)
class ResourceServer:
    """One MCP server allowed to receive tokens: its credentials and its resource URI."""

    id: str
    secret: str = field(repr=False)
    resource: str

    @property
    def canonical(self) -> str:
        return canonical_resource(self.resource)

    @property
    def secret_digest(self) -> bytes:
        return hashlib.sha256(self.secret.encode()).digest()


def resolve_resource(servers: Sequence[ResourceServer], requested: str | None) -> ResourceServer:
    """The declared server ``requested`` names; absent, the only one declared."""
    if requested is None:
        if len(servers) == 1:
            return servers[0]
        raise InvalidTarget("resource is required: this server serves several resources")
    wanted = canonical_resource(requested)
    for server in servers:
        if server.canonical == wanted:
            return server
    raise InvalidTarget("resource names no resource server known here")

"""Redirect-URI rules: which URIs a client may register and how a request's URI matches one.

Loopback URIs match on any port (RFC 8252 §7.3); native apps may use private-use
schemes (``cursor://``); script-bearing schemes and plain http to a non-loopback
host are refused.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlencode, urlsplit, urlunsplit

from .errors import InvalidRedirectUri
from .limits import MAX_URI_LENGTH
from .settings import is_loopback_host

_FORBIDDEN_SCHEMES = frozenset(
    {
        "javascript",
        "data",
        "vbscript",
        "file",
        "blob",
        "about",
        "filesystem",
        "view-source",
        "ws",
        "wss",
        "ftp",
        # OS protocol handlers abused to run code or leak credentials from one click:
        # ms-msdt (Follina), search-ms, ms-officecmd, Office and help viewers, file shares.
        "search",
        "search-ms",
        "its",
        "mk",
        "mhtml",
        "hcp",
        "help",
        "shell",
        "res",
        "jar",
        "smb",
        "nfs",
        "afp",
        "ldap",
        "ldaps",
        "telnet",
        "ssh",
        "sftp",
        "steam",
        "jnlp",
        "x-help-action",
    }
)
# Every Microsoft ``ms-*`` handler (ms-msdt, ms-officecmd, ms-word, ms-cxh, …): no MCP
# client uses one, and new abusable ones keep appearing.
_FORBIDDEN_SCHEME_PREFIXES = ("ms-",)
# RFC 3986 host names as browsers resolve them: LDH labels (ASCII only, so a look-alike
# Unicode host must be registered in its punycode form), or an IP literal.
_HOST_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\Z){_HOST_LABEL}(\.{_HOST_LABEL})*\.?")
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")
# Any whitespace or control character anywhere is refused before parsing: browsers
# strip some of them, which is how `java\tscript:` gets past naive checks.
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f\s\\]")


def parse_redirect_uri(uri: str) -> SplitResult:
    """Validate a redirect URI a client registers or presents; raise InvalidRedirectUri."""
    if not uri or len(uri) > MAX_URI_LENGTH:
        raise InvalidRedirectUri("redirect_uri is empty or too long")
    if _UNSAFE_CHARS.search(uri):
        raise InvalidRedirectUri("redirect_uri contains whitespace or control characters")
    if not uri.isascii():
        raise InvalidRedirectUri("redirect_uri must be ASCII: percent-encode other characters")
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise InvalidRedirectUri("redirect_uri is not a valid URI") from None
    scheme = parts.scheme.lower()
    if (
        not _SCHEME.fullmatch(scheme)
        or scheme in _FORBIDDEN_SCHEMES
        or scheme.startswith(_FORBIDDEN_SCHEME_PREFIXES)
    ):
        raise InvalidRedirectUri("redirect_uri uses a scheme that is not allowed")
    if parts.fragment or "#" in uri:
        raise InvalidRedirectUri("redirect_uri must not contain a fragment")
    if "@" in parts.netloc:
        raise InvalidRedirectUri("redirect_uri must not contain user information")
    if scheme in ("http", "https"):
        if not is_valid_host(parts):
            raise InvalidRedirectUri("redirect_uri must have a valid DNS host name or IP address")
        if scheme == "http" and not is_loopback_host(parts.hostname):
            raise InvalidRedirectUri("redirect_uri must use https unless its host is loopback")
    elif not (parts.netloc or parts.path):
        raise InvalidRedirectUri("redirect_uri is not a valid URI")
    return parts


def is_valid_host(parts: SplitResult) -> bool:
    """The authority is exactly ``host[:port]`` with an ASCII host name or an IP literal."""
    host = parts.hostname or ""
    try:
        bracketed = f"[{ipaddress.IPv6Address(host)}]" if ":" in host else None
    except ValueError:
        return False
    valid = bracketed is not None or _HOST_NAME.fullmatch(host) is not None
    authority = (bracketed or host) + (f":{parts.port}" if parts.port is not None else "")
    return valid and parts.netloc.lower() == authority


def origin(parts: SplitResult) -> str:
    """``scheme://host[:port]`` rebuilt from validated parts (for CSP sources and display)."""
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{host}{port}"


def is_loopback(parts: SplitResult) -> bool:
    return parts.scheme.lower() == "http" and is_loopback_host(parts.hostname or "")


def _without_port(parts: SplitResult) -> tuple[str, str, str, str]:
    return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.path, parts.query)


def matches(registered: str, presented: str) -> bool:
    """Exact string match, except that loopback http URIs ignore the port."""
    if registered == presented:
        return True
    reg, pres = urlsplit(registered), urlsplit(presented)
    return is_loopback(reg) and is_loopback(pres) and _without_port(reg) == _without_port(pres)


def with_params(uri: str, params: dict[str, str]) -> str:
    """``uri`` with ``params`` added to its query, keeping the query it already has."""
    parts = urlsplit(uri)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))

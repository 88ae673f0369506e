"""The three kinds of client_id, none of which needs per-client storage.

- registered: issued by ``/register``; the id itself is a sealed record of the
  redirect URIs and name, so it survives restarts and works on every replica;
- domain: a bare host name (``yourapp.com``), as the original provider took;
  redirect URIs must be https on exactly that host (``localhost``: loopback);
- metadata document: an https URL whose JSON document (CIMD) lists the
  redirect URIs; fetched by :mod:`.metadata_documents`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from . import redirects
from .errors import InvalidClient, InvalidClientMetadata, InvalidRedirectUri
from .limits import MAX_NAME_LENGTH, MAX_PARAM_LENGTH, MAX_REDIRECT_URIS
from .sealing import Sealer, SealError
from .settings import is_loopback_host

REGISTERED_PREFIX = "mcp_"
# Control, format (bidi overrides, zero-width), separator, private-use, surrogate and
# unassigned characters: invisible or reordering on a consent page, so never shown.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_CLIENT_PURPOSE = "client"

Kind = Literal["registered", "domain", "metadata_document"]
DocumentFetcher = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Client:
    client_id: str
    kind: Kind
    name: str
    # Where a person can see who this client is: its host or its document URL.
    identity: str
    redirect_uris: tuple[str, ...] = ()

    def check_redirect_uri(self, uri: str) -> str:
        """Return ``uri`` if this client may be sent there; raise InvalidRedirectUri."""
        parts = redirects.parse_redirect_uri(uri)
        if self.kind == "domain":
            if self.identity == "localhost":
                allowed = redirects.is_loopback(parts)
            else:
                allowed = parts.scheme == "https" and parts.hostname == self.identity
        else:
            allowed = any(redirects.matches(r, uri) for r in self.redirect_uris)
        if not allowed:
            raise InvalidRedirectUri("redirect_uri is not registered for this client")
        return uri

    def default_redirect_uri(self) -> str:
        """The redirect URI to use when a request names none (RFC 6749 §3.1.2.3)."""
        if len(self.redirect_uris) != 1:
            raise InvalidRedirectUri("redirect_uri is required for this client")
        return self.redirect_uris[0]


def has_hidden_characters(text: str) -> bool:
    return any(unicodedata.category(c) in _HIDDEN_CATEGORIES for c in text)


def clean_name(name: object, fallback: str) -> str:
    """A display name with hidden characters removed and whitespace collapsed."""
    if not isinstance(name, str):
        return fallback
    visible = "".join(c for c in name if unicodedata.category(c) not in _HIDDEN_CATEGORIES)
    return " ".join(visible.split())[:MAX_NAME_LENGTH] or fallback


def registered_name(name: object) -> str:
    """The client_name a registration may set: hidden characters are refused, not dropped."""
    if isinstance(name, str) and has_hidden_characters(name):
        raise InvalidClientMetadata(
            "client_name must not contain control, invisible or bidirectional characters"
        )
    if name is not None and not isinstance(name, str):
        raise InvalidClientMetadata("client_name must be a string")
    return clean_name(name, "Unnamed client")


def validate_redirect_uris(uris: object) -> tuple[str, ...]:
    if not isinstance(uris, list) or not uris:
        raise InvalidRedirectUri("redirect_uris must be a non-empty array of URIs")
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUri(f"at most {MAX_REDIRECT_URIS} redirect_uris are allowed")
    for uri in uris:
        if not isinstance(uri, str):
            raise InvalidRedirectUri("redirect_uris must contain only strings")
        redirects.parse_redirect_uri(uri)
    return tuple(uris)


def issue_client_id(sealer: Sealer, redirect_uris: Sequence[str], name: str) -> str:
    """The sealed client_id; refused when it would not fit our own parameter limit."""
    client_id = REGISTERED_PREFIX + sealer.seal(
        _CLIENT_PURPOSE, {"r": list(redirect_uris), "n": name}
    )
    if len(client_id) > MAX_PARAM_LENGTH:
        raise InvalidClientMetadata(
            f"redirect_uris and client_name are too long together: the client_id would be "
            f"{len(client_id)} characters, over the limit of {MAX_PARAM_LENGTH}; "
            "register fewer or shorter redirect_uris"
        )
    return client_id


def is_metadata_document_url(client_id: str, *, allow_loopback: bool = False) -> bool:
    """An https URL with a path and a valid host (development: http(s) on loopback too)."""
    try:
        parts = urlsplit(client_id)
        valid_host = redirects.is_valid_host(parts)
    except ValueError:
        return False
    loopback = is_loopback_host(parts.hostname or "")
    scheme_ok = parts.scheme == "https" or (parts.scheme == "http" and loopback)
    return (
        scheme_ok
        and valid_host
        and parts.path not in ("", "/")
        and not (parts.fragment or parts.username or parts.password)
        and (allow_loopback or not loopback)
    )


class ClientResolver:
    """Turns a presented client_id into a :class:`Client`, or raises InvalidClient."""

    def __init__(
        self,
        sealer: Sealer,
        fetch_document: DocumentFetcher,
        *,
        metadata_documents: bool = True,
        allow_loopback: bool = False,
    ) -> None:
        self._sealer = sealer
        self._fetch_document = fetch_document
        self._metadata_documents = metadata_documents
        self._allow_loopback = allow_loopback

    async def resolve(self, client_id: str) -> Client:
        if not client_id or len(client_id) > MAX_PARAM_LENGTH:
            raise InvalidClient("client_id is missing or too long")
        if client_id.startswith(REGISTERED_PREFIX):
            return self._registered(client_id)
        if client_id.startswith(("https://", "http://")):
            if not self._metadata_documents:
                raise InvalidClient(
                    "this server does not accept client metadata documents (URL client_ids); "
                    "the application must register instead"
                )
            return await self._metadata_document(client_id)
        return self._domain(client_id)

    def _registered(self, client_id: str) -> Client:
        try:
            data = self._sealer.open(_CLIENT_PURPOSE, client_id.removeprefix(REGISTERED_PREFIX))
            uris = validate_redirect_uris(data.get("r"))
        except (SealError, InvalidRedirectUri):
            raise InvalidClient("client_id is not one this server issued; register again") from None
        return Client(
            client_id,
            "registered",
            clean_name(data.get("n"), "Unnamed client"),
            identity="a name the application gave itself (not verified)",
            redirect_uris=uris,
        )

    @staticmethod
    def _domain(client_id: str) -> Client:
        host = client_id.lower()
        if host != client_id or not (host == "localhost" or _HOSTNAME.fullmatch(host)):
            raise InvalidClient(
                "client_id must be a registered id, a domain name such as "
                "example.com, or an https URL of a client metadata document"
            )
        return Client(client_id, "domain", host, identity=host)

    async def _metadata_document(self, url: str) -> Client:
        if not is_metadata_document_url(url, allow_loopback=self._allow_loopback):
            raise InvalidClient("client_id URL must be https with a path and a public host name")
        document = await self._fetch_document(url)
        if document.get("client_id") != url:
            raise InvalidClient("client metadata document names a different client_id")
        try:
            uris = validate_redirect_uris(document.get("redirect_uris"))
        except InvalidRedirectUri as exc:
            raise InvalidClient(f"client metadata document: {exc.description}") from None
        host = urlsplit(url).hostname or url
        return Client(
            url,
            "metadata_document",
            clean_name(document.get("client_name"), host),
            identity=url,
            redirect_uris=uris,
        )

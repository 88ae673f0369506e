"""The two browser cookies of a login, in one place: names, values, how they are set and
read, and what the records keep of them.

- ``oauth_csrf`` (``SameSite=Strict``): proves a decision was posted from our own consent
  page; the consent ticket holds its hash.
- ``oauth_browser`` (``SameSite=Lax``, so OpenRouter's top-level redirect to /callback
  carries it): the callback completes only in the browser that approved; the decision
  holds its hash.

On an https issuer both are ``__Host-`` cookies, which a sibling host cannot set.
"""

from __future__ import annotations

import re
import secrets

from sanic import HTTPResponse, Request
from sanic.request.parameters import RequestParameters

from .records import fingerprint

CSRF = "oauth_csrf"
BROWSER = "oauth_browser"
_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")


def new_value() -> str:
    return secrets.token_urlsafe(32)


def cookie_hash(value: str) -> str:
    """What the records keep of a cookie; no cookie hashes to nothing, which never matches."""
    return fingerprint(value) if value else ""


def _https(request: Request) -> bool:
    return request.app.ctx.settings.issuer_url.startswith("https://")


def read(request: Request, name: str) -> str:
    """A well-formed cookie of ours; on https only its ``__Host-`` form. (Sanic's own lookup
    falls back to the unprefixed name, which would undo that.)"""
    name = f"__Host-{name}" if _https(request) else name
    value = RequestParameters.get(request.cookies, name) or ""
    return value if _VALUE.fullmatch(value) else ""


def put(request: Request, response: HTTPResponse, name: str, value: str) -> None:
    https = _https(request)
    response.add_cookie(
        name,
        value,
        path="/",
        httponly=True,
        samesite="Strict" if name == CSRF else "Lax",
        secure=https,
        host_prefix=https,
        max_age=request.app.ctx.settings.state_ttl_seconds,
    )

"""/me: check an OpenRouter key for a resource server and describe it."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from .. import keyinfo
from ..errors import InvalidToken, TemporarilyUnavailable
from ..upstream import InvalidKey, UpstreamUnavailable
from .responses import oauth_error, oauth_json, rate_limited

MAX_KEY_LENGTH = 512

bp = Blueprint("me")


def _unauthorized(request: Request, error: InvalidToken | None) -> HTTPResponse:
    challenge = f'Bearer resource_metadata="{request.app.ctx.pr_metadata_url}"'
    request.ctx.outcome = error.error if error else "unauthorized"
    if error is None:
        body = {"error": "unauthorized", "error_description": "a Bearer token is required"}
        return oauth_json(body, status=401, headers={"WWW-Authenticate": challenge})
    challenge += f', error="invalid_token", error_description="{error.description}"'
    return oauth_error(error, headers={"WWW-Authenticate": challenge})


def well_formed_key(key: str) -> bool:
    """Keys are printable ASCII (RFC 6750 b64token); anything else cannot be a key."""
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable() and " " not in key


@bp.get("/me")
async def me(request: Request) -> HTTPResponse:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if not header:
        return _unauthorized(request, None)
    key = key.strip()
    if scheme.lower() != "bearer" or not well_formed_key(key):
        return _unauthorized(request, InvalidToken("the Authorization header is malformed"))
    key_info = request.app.ctx.key_info
    # Only checks that would reach OpenRouter count: a resource server re-checking its
    # users' keys is served from the cache, however often it asks.
    limited = None if key_info.is_cached(key) else rate_limited(request, "me")
    if limited is not None:
        return limited
    try:
        info = await key_info.get(key)
    except InvalidKey:
        return _unauthorized(request, InvalidToken("the key is invalid or revoked"))
    except UpstreamUnavailable:
        raise TemporarilyUnavailable("OpenRouter is not answering; retry shortly") from None
    return oauth_json(keyinfo.me_response(key, info))

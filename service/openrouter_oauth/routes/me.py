"""/me: check an OpenRouter key for a resource server and describe it."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from .. import keyinfo
from ..errors import InvalidToken
from ..upstream import InvalidKey
from .responses import oauth_error, oauth_json, rate_limited

MAX_KEY_LENGTH = 512

bp = Blueprint("me")


def well_formed_key(key: str) -> bool:
    """Keys are printable ASCII (RFC 6750 b64token); anything else cannot be a key."""
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable() and " " not in key


def _no_token(request: Request) -> HTTPResponse:
    """RFC 6750 §3.1: a request without credentials gets the challenge and no error code."""
    request.ctx.outcome = "unauthorized"
    body = {"error": "unauthorized", "error_description": "a Bearer token is required"}
    challenge = f'Bearer resource_metadata="{request.app.ctx.pr_metadata_url}"'
    return oauth_json(body, status=401, headers={"WWW-Authenticate": challenge})


def _invalid(request: Request, error: InvalidToken) -> HTTPResponse:
    request.ctx.outcome = error.error
    challenge = error.challenge(request.app.ctx.pr_metadata_url)
    return oauth_error(error, headers={"WWW-Authenticate": challenge})


@bp.get("/me")
async def me(request: Request) -> HTTPResponse:
    header = request.headers.get("authorization", "")
    if not header:
        return _no_token(request)
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not well_formed_key(key):
        return _invalid(request, InvalidToken("the Authorization header is malformed"))
    key_info = request.app.ctx.key_info
    # Only checks that would reach OpenRouter count: a resource server re-checking its
    # users' keys is served from the cache, however often it asks.
    limited = None if key_info.is_cached(key) else rate_limited(request, "me")
    if limited is not None:
        return limited
    try:
        info = await key_info.get(key)
    except InvalidKey:
        return _invalid(request, InvalidToken("the key is invalid or revoked"))
    return oauth_json(keyinfo.me_response(key, info))

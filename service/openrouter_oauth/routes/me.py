"""/me: check an OpenRouter key for a resource server and describe it."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from .. import keyinfo, paths
from ..errors import InvalidToken, MissingToken
from ..upstream import InvalidKey
from .responses import check_rate_limit, oauth_json

bp = Blueprint("me")


@bp.get(paths.ME)
async def me(request: Request) -> HTTPResponse:
    resource_metadata = request.app.ctx.pr_metadata_url
    header = request.headers.get("authorization", "")
    if not header:
        raise MissingToken(resource_metadata)
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not keyinfo.well_formed_key(key):
        raise InvalidToken("the Authorization header is malformed", resource_metadata)
    key_info = request.app.ctx.key_info
    # Only checks that would reach OpenRouter count: a resource server re-checking its
    # users' keys is served from the cache, however often it asks.
    if not key_info.is_cached(key):
        check_rate_limit(request, "me")
    try:
        info = await key_info.get(key)
    except InvalidKey:
        raise InvalidToken("the key is invalid or revoked", resource_metadata) from None
    return oauth_json(keyinfo.me_response(key, info))

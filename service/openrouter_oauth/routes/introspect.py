"""/introspect (RFC 7662): resource servers ask whether a key works, and what it allows.

Only when ``INTROSPECTION_CREDENTIALS`` (or, in bound mode, ``RESOURCE_SERVERS``) names
callers; otherwise the endpoint does not exist (404) and is not advertised. Shares
``/me``'s cache and single flight, and is not subject to the anonymous ``/me`` limits:
its callers are known.

In bound mode only our own access tokens can be active, and only to the resource
server they were issued for: any other caller hears ``{"active": false}``.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request

from .. import flow, introspection, keyinfo, paths
from ..errors import InvalidRequest
from ..introspection import Caller
from ..limits import MAX_TOKEN_LENGTH
from ..upstream import InvalidKey
from .forms import form_params, is_form
from .responses import oauth_json

bp = Blueprint("introspect")


@bp.post(paths.INTROSPECT)
async def introspect(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    if not is_form(request):
        raise InvalidRequest("send the parameters as application/x-www-form-urlencoded")
    form = form_params(request)
    presented = introspection.presented_credentials(request.headers.get("authorization", ""), form)
    caller = introspection.authenticate(ctx.introspection_callers, presented)
    request.ctx.client_id = caller.client_id
    if ctx.settings.bound:
        token = flow.param(form, "token", required=True, max_length=MAX_TOKEN_LENGTH) or ""
        return oauth_json(await _bound(request, caller, token))
    key = flow.param(form, "token", required=True) or ""
    if not keyinfo.well_formed_key(key):
        return oauth_json(keyinfo.INACTIVE)
    return oauth_json(await _described(request, key))


async def _described(request: Request, key: str) -> dict[str, Any]:
    try:
        info = await request.app.ctx.key_info.get(key)
    except InvalidKey:
        return keyinfo.INACTIVE
    return keyinfo.introspection_response(info)


async def _bound(request: Request, caller: Caller, token: str) -> dict[str, Any]:
    """An access token of ours, to its audience: what it says, and what the key allows."""
    found = await request.app.ctx.grants.introspect(caller.server, token)
    if found is None:
        return keyinfo.INACTIVE
    access, grant = found
    described = await _described(request, grant.key)
    if not described["active"]:
        return described
    key_expires = described.get("exp")
    return {
        **described,
        "aud": access.audience,
        "client_id": access.client_id,
        "scope": access.scope,
        "iat": access.issued_at,
        # The token ends first unless the person set the key to expire sooner.
        "exp": min(access.expires, key_expires) if key_expires else access.expires,
    }

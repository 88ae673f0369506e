"""/introspect (RFC 7662): resource servers ask whether a key works, and what it allows.

Only when ``INTROSPECTION_CREDENTIALS`` names callers; otherwise the endpoint does not
exist (404) and is not advertised. Shares ``/me``'s cache and single flight, and is
not subject to the anonymous ``/me`` limits: its callers are known.
"""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.exceptions import NotFound

from .. import flow, introspection, keyinfo
from ..errors import InvalidClient, InvalidRequest
from ..upstream import InvalidKey
from .forms import form_params, is_form
from .me import well_formed_key
from .responses import oauth_error, oauth_json

bp = Blueprint("introspect")
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="introspection"'}


@bp.post("/introspect")
async def introspect(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    if not ctx.introspection_callers:
        raise NotFound("no such endpoint")
    if not is_form(request):
        raise InvalidRequest("send the parameters as application/x-www-form-urlencoded")
    form = form_params(request)
    presented = introspection.presented_credentials(request.headers.get("authorization", ""), form)
    try:
        caller = introspection.authenticate(ctx.introspection_callers, presented)
    except InvalidClient as exc:
        request.ctx.outcome = exc.error
        return oauth_error(exc, headers=_CHALLENGE)
    request.ctx.client_id = caller.client_id
    key = flow.single(form, "token", required=True) or ""
    if not well_formed_key(key):
        return oauth_json(keyinfo.INACTIVE)
    try:
        info = await ctx.key_info.get(key)
    except InvalidKey:
        return oauth_json(keyinfo.INACTIVE)
    return oauth_json(keyinfo.introspection_response(info))

"""/revoke (RFC 7009), ``bound`` mode only: a public client ends the grant behind one of
its access or refresh tokens. Anything that is not a live token of ours gets 200 too,
as the RFC says (the client's aim, that the token not work, holds either way)."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, empty

from .. import flow, paths
from ..errors import InvalidClient
from ..limits import MAX_TOKEN_LENGTH
from .responses import NO_STORE
from .token import token_params

bp = Blueprint("revoke")


@bp.post(paths.REVOKE)
async def revoke(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    params = token_params(request)
    client_id = flow.param(params, "client_id")
    if not client_id:
        raise InvalidClient("client_id is required: public clients name themselves")
    request.ctx.client_id = client_id
    token = flow.param(params, "token", required=True, max_length=MAX_TOKEN_LENGTH) or ""
    await ctx.grants.revoke(token, client_id)
    return empty(status=200, headers=NO_STORE)

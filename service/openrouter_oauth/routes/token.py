"""/token: redeem our one-time code for the OpenRouter key, exactly once.

In ``bound`` mode also: the refresh grant (public clients by ``client_id``) and the
token exchange (RFC 8693) by which a declared resource server gets the key behind an
access token issued for it (see :mod:`..grants`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sanic import Blueprint, HTTPResponse, Request

from .. import flow, introspection, paths
from ..errors import InvalidRequest, UnsupportedGrantType
from ..limits import MAX_TOKEN_LENGTH
from ..resources import TOKEN_EXCHANGE_GRANT
from .forms import form_params, is_form
from .responses import oauth_json

bp = Blueprint("token")

REFRESH_GRANT = "refresh_token"


def token_params(request: Request) -> Mapping[str, Sequence[str]]:
    """Form-encoded parameters (RFC 6749), or a flat JSON object of strings."""
    if is_form(request):
        return form_params(request)
    if request.content_type.split(";")[0].strip().lower() == "application/json":
        body = request.json
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise InvalidRequest("a JSON body must be an object of string parameters")
        return {name: [value] for name, value in body.items()}
    raise InvalidRequest("send the parameters as application/x-www-form-urlencoded")


@bp.post(paths.TOKEN)
async def token(request: Request) -> HTTPResponse:
    params = token_params(request)
    if request.app.ctx.settings.bound:
        grant_type = flow.param(params, "grant_type", required=True)
        if grant_type == REFRESH_GRANT:
            return await _refresh(request, params)
        if grant_type == TOKEN_EXCHANGE_GRANT:
            return await _exchange(request, params)
        if grant_type != flow.GRANT_TYPE:
            raise UnsupportedGrantType(
                f"supported grant types: {flow.GRANT_TYPE}, {REFRESH_GRANT}, {TOKEN_EXCHANGE_GRANT}"
            )
    token_request = flow.token_request(params)
    request.ctx.client_id = token_request.client_id
    return oauth_json(await request.app.ctx.authorization.redeem(token_request))


async def _refresh(request: Request, params: flow.Params) -> HTTPResponse:
    client_id = flow.param(params, "client_id", required=True) or ""
    request.ctx.client_id = client_id
    refresh_token = flow.param(params, "refresh_token", required=True, max_length=MAX_TOKEN_LENGTH)
    resource = flow.param(params, "resource")
    pair = await request.app.ctx.grants.refresh(client_id, refresh_token or "", resource)
    return oauth_json(pair)


async def _exchange(request: Request, params: flow.Params) -> HTTPResponse:
    ctx = request.app.ctx
    presented = introspection.presented_credentials(
        request.headers.get("authorization", ""), params
    )
    caller = introspection.authenticate(ctx.resource_server_callers, presented)
    request.ctx.client_id = caller.client_id
    subject = flow.param(params, "subject_token", required=True, max_length=MAX_TOKEN_LENGTH)
    subject_type = flow.param(params, "subject_token_type", required=True)
    answer = await ctx.grants.exchange(caller.server, subject or "", subject_type or "")
    return oauth_json(answer)

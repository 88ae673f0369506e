"""/token: redeem our one-time code for the OpenRouter key, exactly once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sanic import Blueprint, HTTPResponse, Request

from .. import flow
from ..errors import InvalidGrant, InvalidRequest, TemporarilyUnavailable
from ..metrics import CODES_REDEEMED
from ..state import CODE
from ..upstream import UpstreamRejected, UpstreamUnavailable
from .responses import oauth_json

bp = Blueprint("token")


def token_params(request: Request) -> Mapping[str, Sequence[str]]:
    """Form-encoded parameters (RFC 6749), or a flat JSON object of strings."""
    content_type = request.content_type.split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        return dict(request.form or {})
    if content_type == "application/json":
        body = request.json
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise InvalidRequest("a JSON body must be an object of string parameters")
        return {name: [value] for name, value in body.items()}
    raise InvalidRequest("send the parameters as application/x-www-form-urlencoded")


@bp.post("/token")
async def token(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    token_request = flow.token_request(token_params(request))
    request.ctx.client_id = token_request.client_id
    await ctx.clients.resolve(token_request.client_id)
    taken = await ctx.state.take(CODE, token_request.code)
    if taken is None:
        raise InvalidGrant("the code is invalid, expired or already used")
    grant, expires = taken
    flow.check_redemption(token_request, grant)
    try:
        issued = await ctx.upstream.exchange(grant["upstream_code"], grant["upstream_verifier"])
    except UpstreamRejected:
        raise InvalidGrant("OpenRouter refused the authorization; start again") from None
    except UpstreamUnavailable:
        # The code stays redeemable for the rest of its life, so the client can retry.
        await ctx.state.put_back(CODE, token_request.code, grant, expires)
        raise TemporarilyUnavailable("OpenRouter is not answering; retry shortly") from None
    CODES_REDEEMED.inc()
    return oauth_json(flow.token_response(issued.key))

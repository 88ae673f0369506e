"""/token: redeem our one-time code for the OpenRouter key, exactly once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sanic import Blueprint, HTTPResponse, Request

from .. import flow
from ..errors import InvalidRequest
from .forms import form_params, is_form
from .responses import oauth_json

bp = Blueprint("token")


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


@bp.post("/token")
async def token(request: Request) -> HTTPResponse:
    token_request = flow.token_request(token_params(request))
    request.ctx.client_id = token_request.client_id
    return oauth_json(await request.app.ctx.authorization.redeem(token_request))

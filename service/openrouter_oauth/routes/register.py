"""Dynamic client registration (RFC 7591). Writes nothing: the client_id is the record."""

from __future__ import annotations

import time
from typing import Any

from sanic import Blueprint, HTTPResponse, Request

from .. import paths
from ..clients import issue_client_id, registered_name, validate_redirect_uris
from ..errors import InvalidClientMetadata
from .responses import oauth_json

bp = Blueprint("register")


def _string_list(body: dict[str, Any], name: str, default: list[str], required: str) -> list[str]:
    value = body.get(name, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings")
    if required not in value:
        raise InvalidClientMetadata(f"{name} must include {required}")
    return value


@bp.post(paths.REGISTER)
async def register(request: Request) -> HTTPResponse:
    if request.content_type.split(";")[0].strip() != "application/json":
        raise InvalidClientMetadata("send the client metadata as application/json")
    body = request.json
    if not isinstance(body, dict):
        raise InvalidClientMetadata("client metadata must be a JSON object")
    redirect_uris = validate_redirect_uris(body.get("redirect_uris"))
    if body.get("token_endpoint_auth_method", "none") != "none":
        raise InvalidClientMetadata(
            "only public clients are supported: token_endpoint_auth_method must be none"
        )
    _string_list(body, "grant_types", ["authorization_code"], "authorization_code")
    _string_list(body, "response_types", ["code"], "code")
    name = registered_name(body.get("client_name"))
    client_id = issue_client_id(request.app.ctx.sealer, redirect_uris, name)
    request.ctx.client_id = client_id
    # RFC 7591 §3.2.1: echo the registered metadata, with the values we actually apply.
    return oauth_json(
        {
            **body,
            "client_id": client_id,
            "client_id_issued_at": int(time.time()),
            "client_name": name,
            "redirect_uris": list(redirect_uris),
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
        },
        status=201,
    )

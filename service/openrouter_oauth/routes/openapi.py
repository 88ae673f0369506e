"""/openapi.json."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, json

from .. import paths

bp = Blueprint("openapi")


@bp.get(paths.OPENAPI)
async def openapi(request: Request) -> HTTPResponse:
    return json(request.app.ctx.openapi)

"""/openapi.json."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, json

bp = Blueprint("openapi")


@bp.get("/openapi.json")
async def openapi(request: Request) -> HTTPResponse:
    return json(request.app.ctx.openapi)

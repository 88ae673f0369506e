"""/metrics."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, raw

from ..metrics import exposition

bp = Blueprint("observability")


@bp.get("/metrics")
async def metrics(request: Request) -> HTTPResponse:
    body, content_type = exposition()
    return raw(body, content_type=content_type)

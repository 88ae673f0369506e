"""Liveness and readiness for orchestrators."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, json

from .. import paths
from ..store import StoreUnavailable

bp = Blueprint("health")


@bp.get(paths.HEALTHZ)
async def healthz(request: Request) -> HTTPResponse:
    return json({"status": "ok"})


@bp.get(paths.READYZ)
async def readyz(request: Request) -> HTTPResponse:
    try:
        await request.app.ctx.store.ping()
    except StoreUnavailable:
        return json(
            {"status": "unavailable", "reason": "the state store is not answering"}, status=503
        )
    return json({"status": "ready"})

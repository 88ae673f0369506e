"""``/``: a page for a person who opens the issuer URL, JSON for a program."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request, json

from .. import pages, paths
from .responses import page

bp = Blueprint("landing")


def _links(request: Request) -> dict[str, str]:
    settings = request.app.ctx.settings
    linked = {
        "as_metadata": paths.AS_METADATA,
        "pr_metadata": paths.PR_METADATA,
        "openapi": paths.OPENAPI,
        "me": paths.ME,
        "introspect": paths.INTROSPECT,
    }
    return {name: settings.url(path) for name, path in linked.items()}


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" not in accept and ("json" in accept or not accept or "*/*" in accept)


@bp.get(paths.LANDING)
async def landing(request: Request) -> HTTPResponse:
    settings = request.app.ctx.settings
    links = _links(request)
    introspect = bool(settings.introspection_credentials)
    if not introspect:
        del links["introspect"]
    if _wants_json(request):
        document = {
            "issuer": settings.issuer_url,
            **links,
            "service_documentation": settings.service_documentation_url,
        }
        return json(document, headers={"Cache-Control": "no-store"})
    return page(
        pages.landing_page(
            issuer=settings.issuer_url,
            links=links,
            openrouter=settings.openrouter_base_url,
            operator=settings.operator_name,
            docs=settings.service_documentation_url,
            introspect=introspect,
        )
    )

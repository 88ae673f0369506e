"""Our callback from OpenRouter: its code becomes our own one-time code for the client.

It completes only in the browser that approved on our consent page: otherwise
someone could approve a request naming their own redirect URI, send the
OpenRouter link to a victim, and receive the code for the victim's key.
"""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request

from .. import cookies, paths
from .responses import browser_redirect

bp = Blueprint("callback")


@bp.get(paths.CALLBACK)
async def callback(request: Request) -> HTTPResponse:
    params = dict(request.get_args(keep_blank_values=True))
    browser = cookies.read(request, cookies.BROWSER)
    redirect = await request.app.ctx.authorization.complete(params, browser)
    request.ctx.outcome = redirect.error
    return browser_redirect(redirect.url, 302)

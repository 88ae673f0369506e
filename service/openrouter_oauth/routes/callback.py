"""Our callback from OpenRouter: turn its code into our own one-time code for the client."""

from __future__ import annotations

import secrets

from sanic import Blueprint, HTTPResponse, Request

from .. import flow
from ..errors import OAuthError
from ..metrics import AUTHORIZATIONS
from ..state import CODE, PENDING
from ..store import StoreUnavailable
from .responses import browser_redirect, error_page, redirect_error

# OAuth error codes OpenRouter might send back that mean the same to our client.
_PASSED_ON = frozenset({"access_denied", "temporarily_unavailable", "server_error"})

bp = Blueprint("callback")


@bp.get("/callback")
async def callback(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    params = dict(request.get_args(keep_blank_values=True))
    handle = flow.single_or_none(params, "session")
    taken = await ctx.state.take(PENDING, handle) if handle else None
    if taken is None or taken[0].get("denied"):
        return error_page(
            400,
            "This sign-in link has expired or was already used",
            "Sign-in links from OpenRouter work once, for a few minutes.",
        )
    pending, expires = taken
    auth_request = flow.AuthorizationRequest.from_record(pending["request"])
    request.ctx.client_id = auth_request.client_id
    upstream_code = flow.single_or_none(params, "code")
    if not upstream_code:
        upstream_error = flow.single_or_none(params, "error")
        error = OAuthError(
            "the request was not approved at OpenRouter",
            error=upstream_error if upstream_error in _PASSED_ON else "access_denied",
        )
        return redirect_error(request, auth_request.redirect_uri, auth_request.state, error, 302)
    code = secrets.token_urlsafe(32)
    try:
        await ctx.state.create(CODE, code, flow.grant_record(pending, upstream_code))
    except StoreUnavailable:
        # Keep the approval so that reloading this page can finish the sign-in.
        await ctx.state.put_back(PENDING, handle, pending, expires)
        raise
    AUTHORIZATIONS.labels("completed").inc()
    return browser_redirect(
        flow.client_redirect(
            ctx.settings.issuer_url, auth_request.redirect_uri, auth_request.state, code=code
        ),
        302,
    )

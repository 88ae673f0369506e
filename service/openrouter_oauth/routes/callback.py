"""Our callback from OpenRouter: turn its code into our own one-time code for the client.

It completes only in the browser that approved on our consent page: otherwise
someone could approve a request naming their own redirect URI, send the
OpenRouter link to a victim, and receive the code for the victim's key.
"""

from __future__ import annotations

import secrets

from sanic import Blueprint, HTTPResponse, Request

from .. import flow
from ..errors import OAuthError
from ..metrics import AUTHORIZATIONS
from ..state import CODE, PENDING
from ..store import StoreUnavailable
from .authorize import BROWSER_COOKIE, cookie_hash, read_cookie
from .responses import browser_redirect, error_page, redirect_error

# OAuth error codes OpenRouter might send back that mean the same to our client.
_PASSED_ON = frozenset({"access_denied", "temporarily_unavailable", "server_error"})

bp = Blueprint("callback")


def _other_browser() -> HTTPResponse:
    return error_page(
        403,
        "This sign-in was started in another browser",
        "The sign-in link you followed was approved in a different browser, so nothing "
        "was handed out here. If someone sent you this link, do not trust it: it could "
        "have given them your OpenRouter key.",
        "If you started this sign-in yourself, start it again in this browser.",
    )


@bp.get("/callback")
async def callback(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    params = dict(request.get_args(keep_blank_values=True))
    handle = flow.single_or_none(params, "session")
    taken = await ctx.state.take(PENDING, handle) if handle else None
    if taken is None:
        return error_page(
            400,
            "This sign-in link has expired or was already used",
            "Sign-in links from OpenRouter work once, for a few minutes.",
        )
    pending, expires = taken
    auth_request = flow.AuthorizationRequest.from_record(pending["request"])
    request.ctx.client_id = auth_request.client_id
    if not flow.same_browser(pending, cookie_hash(read_cookie(request, BROWSER_COOKIE))):
        request.ctx.outcome = "other_browser"
        return _other_browser()  # the approval is consumed: the link is now worthless
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

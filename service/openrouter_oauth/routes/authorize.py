"""/authorize: show our consent page, and act on the person's decision.

GET shows the consent page, whose form carries a sealed ticket bound to a
SameSite=Strict cookie; POST records the decision (see :mod:`..authorization`).
Until the person has decided, no error is redirected anywhere: anyone can name
any redirect URI, so an automatic redirect would be an open redirector.
"""

from __future__ import annotations

import re
import secrets

from sanic import Blueprint, HTTPResponse, Request
from sanic.request.parameters import RequestParameters

from .. import flow, pages
from ..errors import InvalidClient, InvalidRedirectUri, OAuthError
from ..limits import MAX_TICKET_LENGTH
from .forms import form_params
from .responses import browser_redirect, error_page, page

_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")
# SameSite=Strict: proves the decision was posted from our own consent page.
CSRF_COOKIE = "oauth_csrf"
# SameSite=Lax: sent on OpenRouter's top-level redirect to /callback (Strict is not), so
# the callback completes only in the browser that approved.
BROWSER_COOKIE = "oauth_browser"

bp = Blueprint("authorize")


def _https(request: Request) -> bool:
    return request.app.ctx.settings.issuer_url.startswith("https://")


def read_cookie(request: Request, name: str) -> str:
    """A well-formed cookie of ours; on https only its ``__Host-`` form, which a sibling host
    cannot set. (Sanic's own lookup falls back to the unprefixed name, which would undo that.)
    """
    name = f"__Host-{name}" if _https(request) else name
    value = RequestParameters.get(request.cookies, name) or ""
    return value if _COOKIE_VALUE.fullmatch(value) else ""


def set_cookie(
    request: Request, response: HTTPResponse, name: str, value: str, samesite: str
) -> None:
    https = _https(request)
    response.add_cookie(
        name,
        value,
        path="/",
        httponly=True,
        samesite=samesite,
        secure=https,
        host_prefix=https,
        max_age=request.app.ctx.settings.state_ttl_seconds,
    )


_CLIENT_PAGES = {
    InvalidClient: (
        "This application is not recognised",
        "The sign-in request names an application this server cannot verify: {}.",
        "Go back to the application and sign in again; if it keeps happening, "
        "the application may need to register again.",
    ),
    InvalidRedirectUri: (
        "This sign-in request cannot be trusted",
        "The address to return to after sign-in is not allowed: {}.",
        "Go back to the application and report this to its developer.",
    ),
}
_INVALID_REQUEST_PAGE = (
    "This sign-in request is invalid",
    "The application sent a request this server cannot accept: {}.",
    "Go back to the application and report this to its developer.",
)


def _request_error_page(exc: OAuthError) -> HTTPResponse:
    title, message, advice = _CLIENT_PAGES.get(type(exc), _INVALID_REQUEST_PAGE)
    return error_page(400, title, message.format(exc.description), advice)


@bp.get("/authorize")
async def authorize(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    params = dict(request.get_args(keep_blank_values=True))
    request.ctx.client_id = flow.single_or_none(params, "client_id")
    cookie = read_cookie(request, CSRF_COOKIE) or secrets.token_urlsafe(32)
    try:
        consent = await ctx.authorization.show_consent(params, cookie)
    except OAuthError as exc:
        request.ctx.outcome = exc.error
        return _request_error_page(exc)
    response = page(
        pages.consent_page(
            client_name=consent.client.name,
            client_identity=consent.client.identity,
            redirect_uri=consent.request.redirect_uri,
            ticket=consent.ticket,
            action="/authorize",
            openrouter=ctx.settings.openrouter_base_url,
            operator=ctx.settings.operator_name,
        ),
        form_targets=(ctx.settings.openrouter_base_url, consent.request.redirect_uri),
    )
    set_cookie(request, response, CSRF_COOKIE, cookie, "Strict")
    # Set before the decision, so a resubmitted approval (its first answer lost) is still
    # made by the browser the callback will check.
    browser = read_cookie(request, BROWSER_COOKIE) or secrets.token_urlsafe(32)
    set_cookie(request, response, BROWSER_COOKIE, browser, "Lax")
    return response


@bp.post("/authorize")
async def decide(request: Request) -> HTTPResponse:
    service = request.app.ctx.authorization
    form = form_params(request)
    raw_ticket = flow.single_or_none(form, "ticket", max_length=MAX_TICKET_LENGTH) or ""
    ticket, expires = service.open_ticket(raw_ticket, read_cookie(request, CSRF_COOKIE))
    request.ctx.client_id = ticket.request.client_id
    browser = read_cookie(request, BROWSER_COOKIE)
    minted = "" if browser else secrets.token_urlsafe(32)  # a browser that dropped it
    action = flow.single_or_none(form, "action")
    redirect = await service.decide(ticket, expires, action, browser or minted)
    request.ctx.outcome = redirect.error
    response = browser_redirect(redirect.url)
    if minted:
        set_cookie(request, response, BROWSER_COOKIE, minted, "Lax")
    return response

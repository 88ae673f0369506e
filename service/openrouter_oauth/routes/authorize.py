"""/authorize: validate the request, show our consent page, and act on the person's decision.

GET shows the consent page. Its form carries a sealed ticket (the validated
request, a fresh handle, and a hash of a SameSite=Strict cookie), so the POST
needs no server-side state until the person decides, and a forged cross-site
POST fails the cookie check. A decision is recorded under the ticket's handle
for the ticket's whole life, so each ticket is answered exactly once.

Until the person has decided, no error is redirected anywhere: anyone can name
any redirect URI, so an automatic redirect would be an open redirector. Errors
are shown as pages; only the decision sends the browser back to the client.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import urlencode

from sanic import Blueprint, HTTPResponse, Request
from sanic.request.parameters import RequestParameters

from .. import flow, pages, pkce
from ..clients import Client
from ..errors import AccessDenied, InvalidClient, InvalidRedirectUri, OAuthError
from ..limits import MAX_TICKET_LENGTH
from ..metrics import AUTHORIZATIONS
from ..sealing import SealError
from ..settings import Settings
from ..state import DECISION, PENDING
from .responses import browser_redirect, error_page, page, redirect_error

CONSENT_PURPOSE = "consent"
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")

bp = Blueprint("authorize")

# SameSite=Strict: proves the decision was posted from our own consent page.
CSRF_COOKIE = "oauth_csrf"
# SameSite=Lax: sent on OpenRouter's top-level redirect to /callback (Strict is not), so
# the callback completes only in the browser that approved.
BROWSER_COOKIE = "oauth_browser"


def _https(settings: Settings) -> bool:
    return settings.issuer_url.startswith("https://")


def read_cookie(request: Request, name: str) -> str:
    """A well-formed cookie of ours; on https only its ``__Host-`` form, which a sibling host
    cannot set. (Sanic's own lookup falls back to the unprefixed name, which would undo that.)
    """
    if _https(request.app.ctx.settings):
        name = f"__Host-{name}"
    value = RequestParameters.get(request.cookies, name) or ""
    return value if _COOKIE_VALUE.fullmatch(value) else ""


def cookie_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest() if value else ""


def set_cookie(
    request: Request, response: HTTPResponse, name: str, value: str, samesite: str
) -> None:
    settings = request.app.ctx.settings
    https = _https(settings)
    response.add_cookie(
        name,
        value,
        path="/",
        httponly=True,
        samesite=samesite,
        secure=https,
        host_prefix=https,
        max_age=settings.state_ttl_seconds,
    )


def _client_error_page(exc: OAuthError) -> HTTPResponse:
    if isinstance(exc, InvalidClient):
        return error_page(
            400,
            "This application is not recognised",
            f"The sign-in request names an application this server cannot verify: "
            f"{exc.description}.",
            "Go back to the application and sign in again; if it keeps happening, "
            "the application may need to register again.",
        )
    if isinstance(exc, InvalidRedirectUri):
        return error_page(
            400,
            "This sign-in request cannot be trusted",
            f"The address to return to after sign-in is not allowed: {exc.description}.",
            "Go back to the application and report this to its developer.",
        )
    return error_page(
        400,
        "This sign-in request is invalid",
        f"The application sent a request this server cannot accept: {exc.description}.",
        "Go back to the application and report this to its developer.",
    )


async def _validated(request: Request) -> tuple[Client, flow.AuthorizationRequest]:
    params = dict(request.get_args(keep_blank_values=True))
    request.ctx.client_id = flow.single_or_none(params, "client_id")
    client: Client = await request.app.ctx.clients.resolve(flow.single(params, "client_id") or "")
    redirect_uri = flow.redirect_uri_for(client, params)
    return client, flow.authorization_request(client, redirect_uri, params)


@bp.get("/authorize")
async def authorize(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    try:
        client, auth_request = await _validated(request)
    except OAuthError as exc:
        request.ctx.outcome = exc.error
        return _client_error_page(exc)
    cookie = read_cookie(request, CSRF_COOKIE) or secrets.token_urlsafe(32)
    ticket = ctx.sealer.seal(
        CONSENT_PURPOSE,
        {
            "request": auth_request.record(),
            "handle": secrets.token_urlsafe(32),
            "csrf": cookie_hash(cookie),
        },
        ttl=ctx.settings.state_ttl_seconds,
    )
    response = page(
        pages.consent_page(
            client_name=client.name,
            client_identity=client.identity,
            redirect_uri=auth_request.redirect_uri,
            ticket=ticket,
            action="/authorize",
            openrouter=ctx.settings.openrouter_base_url,
            operator=ctx.settings.operator_name,
        ),
        form_targets=(ctx.settings.openrouter_base_url, auth_request.redirect_uri),
    )
    AUTHORIZATIONS.labels("started").inc()
    set_cookie(request, response, CSRF_COOKIE, cookie, "Strict")
    return response


def _already_answered() -> HTTPResponse:
    return error_page(
        409,
        "This request was already answered",
        "You already approved or denied this sign-in request.",
        "If the application did not finish signing you in, go back to it and start again.",
    )


def _open_ticket(request: Request) -> tuple[dict, int] | HTTPResponse:
    """The ticket's data and expiry, or the page explaining why it cannot be used."""
    form = dict(request.form or {})
    try:
        raw = flow.single(form, "ticket", max_length=MAX_TICKET_LENGTH) or ""
        claims = request.app.ctx.sealer.open_claims(CONSENT_PURPOSE, raw)
    except (SealError, OAuthError):
        return error_page(
            400,
            "This approval page has expired",
            "The approval page was open too long or was not sent by this server.",
        )
    ticket = claims["d"]
    csrf = cookie_hash(read_cookie(request, CSRF_COOKIE))
    if not csrf or not hmac.compare_digest(csrf, str(ticket.get("csrf", ""))):
        return error_page(
            403,
            "This approval did not come from your browser",
            "The approval was sent without the consent page this server showed "
            "you, so it was refused to protect your account.",
        )
    return ticket, claims["exp"]


@bp.post("/authorize")
async def decide(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    opened = _open_ticket(request)
    if isinstance(opened, HTTPResponse):
        return opened
    ticket, expires = opened
    auth_request = flow.AuthorizationRequest.from_record(ticket["request"])
    request.ctx.client_id = auth_request.client_id
    action = flow.single_or_none(dict(request.form or {}), "action")
    if action not in ("approve", "deny"):
        return error_page(400, "Unknown choice", "Please use the Approve or Deny button.")
    lifetime = max(1.0, expires - time.time())
    if not await ctx.state.create(DECISION, ticket["handle"], {"action": action}, ttl=lifetime):
        return _already_answered()
    if action == "deny":
        AUTHORIZATIONS.labels("denied").inc()
        denied = AccessDenied("the person denied the request")
        return redirect_error(request, auth_request.redirect_uri, auth_request.state, denied)
    browser = read_cookie(request, BROWSER_COOKIE) or secrets.token_urlsafe(32)
    verifier = pkce.new_verifier()
    pending = flow.pending_record(auth_request, verifier, cookie_hash(browser))
    await ctx.state.create(PENDING, ticket["handle"], pending)
    AUTHORIZATIONS.labels("approved").inc()
    callback = ctx.settings.url("/callback") + "?" + urlencode({"session": ticket["handle"]})
    response = browser_redirect(
        ctx.upstream.authorization_url(
            callback_url=callback,
            code_challenge=pkce.s256(verifier),
            key_label=auth_request.client_name,
        )
    )
    set_cookie(request, response, BROWSER_COOKIE, browser, "Lax")
    return response

"""/authorize: validate the request, show our consent page, and act on the person's decision.

GET shows the consent page. Its form carries a sealed ticket (the validated
request, a fresh handle, and a hash of a SameSite=Strict cookie), so the POST
needs no server-side state until the person decides, a forged cross-site POST
fails the cookie check, and a second submission of the same page finds its
handle already used.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import urlencode

from sanic import Blueprint, HTTPResponse, Request
from sanic.request.parameters import RequestParameters

from .. import flow, pages, pkce
from ..clients import Client
from ..errors import AccessDenied, InvalidClient, InvalidRedirectUri, OAuthError
from ..metrics import AUTHORIZATIONS
from ..sealing import SealError
from ..settings import Settings
from ..state import PENDING
from .responses import browser_redirect, error_page, page, redirect_error

CONSENT_PURPOSE = "consent"
_COOKIE_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")

bp = Blueprint("authorize")


CSRF_COOKIE = "oauth_csrf"


def _https(settings: Settings) -> bool:
    return settings.issuer_url.startswith("https://")


def _csrf_cookie(request: Request) -> str:
    """The consent cookie; on https only its ``__Host-`` form, which a sibling host cannot set.

    (Sanic's own lookup falls back to the unprefixed name, which would undo that.)
    """
    name = f"__Host-{CSRF_COOKIE}" if _https(request.app.ctx.settings) else CSRF_COOKIE
    return RequestParameters.get(request.cookies, name) or ""


def _cookie_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


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
    return error_page(
        400,
        "This sign-in request cannot be trusted",
        f"The address to return to after sign-in is not allowed: {exc.description}.",
        "Go back to the application and report this to its developer.",
    )


@bp.get("/authorize")
async def authorize(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    params = dict(request.get_args(keep_blank_values=True))
    request.ctx.client_id = flow.single_or_none(params, "client_id")
    try:
        client: Client = await ctx.clients.resolve(flow.single(params, "client_id") or "")
        redirect_uri = flow.redirect_uri_for(client, params)
    except OAuthError as exc:
        request.ctx.outcome = exc.error
        if isinstance(exc, InvalidClient | InvalidRedirectUri):
            return _client_error_page(exc)
        # e.g. a repeated parameter: still nowhere safe to redirect to
        return error_page(400, "This sign-in request is malformed", f"{exc.description}.")
    try:
        auth_request = flow.authorization_request(client, redirect_uri, params)
    except OAuthError as exc:
        return redirect_error(request, redirect_uri, flow.single_or_none(params, "state"), exc)
    cookie = _csrf_cookie(request)
    if not _COOKIE_VALUE.fullmatch(cookie):
        cookie = secrets.token_urlsafe(32)
    ticket = ctx.sealer.seal(
        CONSENT_PURPOSE,
        {
            "request": auth_request.record(),
            "handle": secrets.token_urlsafe(32),
            "csrf": _cookie_hash(cookie),
        },
        ttl=ctx.settings.state_ttl_seconds,
    )
    response = page(
        pages.consent_page(
            client_name=client.name,
            client_identity=client.identity,
            redirect_uri=redirect_uri,
            ticket=ticket,
            action="/authorize",
        ),
        form_targets=(ctx.settings.openrouter_base_url, redirect_uri),
    )
    AUTHORIZATIONS.labels("started").inc()
    https = _https(ctx.settings)
    response.add_cookie(
        CSRF_COOKIE,
        cookie,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=https,
        host_prefix=https,
        max_age=ctx.settings.state_ttl_seconds,
    )
    return response


def _already_answered() -> HTTPResponse:
    return error_page(
        409,
        "This request was already answered",
        "You already approved or denied this sign-in request.",
        "If the application did not finish signing you in, go back to it and start again.",
    )


@bp.post("/authorize")
async def decide(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    form = dict(request.form or {})
    try:
        ticket = ctx.sealer.open(CONSENT_PURPOSE, flow.single(form, "ticket") or "")
    except (SealError, OAuthError):
        return error_page(
            400,
            "This approval page has expired",
            "The approval page was open too long or was not sent by this server.",
        )
    cookie = _csrf_cookie(request)
    if not hmac.compare_digest(_cookie_hash(cookie), str(ticket.get("csrf", ""))):
        return error_page(
            403,
            "This approval did not come from your browser",
            "The approval was sent without the consent page this server showed "
            "you, so it was refused to protect your account.",
        )
    auth_request = flow.AuthorizationRequest.from_record(ticket["request"])
    request.ctx.client_id = auth_request.client_id
    action = flow.single_or_none(form, "action")
    if action == "deny":
        if not await ctx.state.create(PENDING, ticket["handle"], {"denied": True}):
            return _already_answered()
        AUTHORIZATIONS.labels("denied").inc()
        denied = AccessDenied("the person denied the request")
        return redirect_error(request, auth_request.redirect_uri, auth_request.state, denied)
    if action != "approve":
        return error_page(400, "Unknown choice", "Please use the Approve or Deny button.")
    verifier = pkce.new_verifier()
    if not await ctx.state.create(
        PENDING, ticket["handle"], flow.pending_record(auth_request, verifier)
    ):
        return _already_answered()
    AUTHORIZATIONS.labels("approved").inc()
    callback = ctx.settings.url("/callback") + "?" + urlencode({"session": ticket["handle"]})
    return browser_redirect(
        ctx.upstream.authorization_url(
            callback_url=callback,
            code_challenge=pkce.s256(verifier),
            key_label=auth_request.client_name,
        )
    )

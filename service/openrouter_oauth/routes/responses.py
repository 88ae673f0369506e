"""How answers leave the service: OAuth JSON, browser pages, redirects, security headers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from sanic import HTTPResponse, Request, html, json, redirect

from .. import flow, metrics, pages, redirects
from ..errors import OAuthError, RateLimited

NO_STORE = {"Cache-Control": "no-store"}


def oauth_json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    return json(body, status=status, headers={**NO_STORE, **(headers or {})})


def oauth_error(error: OAuthError, headers: dict[str, str] | None = None) -> HTTPResponse:
    return oauth_json(error.body(), status=error.status, headers=headers)


def origin_source(url: str) -> str:
    """A CSP source naming where ``url`` points: its origin, or its scheme for custom schemes."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return redirects.origin(parts)  # rebuilt from the parsed host and port, never raw
    return f"{parts.scheme}:"


def page(body: str, status: int = 200, form_targets: Iterable[str] = ()) -> HTTPResponse:
    """An HTML page that cannot be framed, scripted, cached or leak a Referer."""
    form_action = " ".join(["'self'", *(origin_source(t) for t in form_targets)])
    csp = (
        f"default-src 'none'; style-src '{pages.STYLE_HASH}'; form-action {form_action}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return html(
        body,
        status=status,
        headers={
            **NO_STORE,
            "Content-Security-Policy": csp,
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        },
    )


def error_page(
    status: int, title: str, message: str, advice: str = pages.RESTART_ADVICE
) -> HTTPResponse:
    return page(pages.error_page(title, message, advice), status=status)


def browser_redirect(url: str, status: int = 303) -> HTTPResponse:
    """Redirect a browser: 303 after a form POST (the next request is a GET), else 302."""
    return redirect(url, status=status, headers={**NO_STORE, "Referrer-Policy": "no-referrer"})


def redirect_error(
    request: Request, redirect_uri: str, state: str | None, error: OAuthError, status: int = 303
) -> HTTPResponse:
    """Send an OAuth error back to a client whose redirect URI is trusted."""
    request.ctx.outcome = error.error
    url = flow.error_redirect(request.app.ctx.settings.issuer_url, redirect_uri, state, error)
    return browser_redirect(url, status)


def wants_html(request: Request) -> bool:
    return request.path in BROWSER_PATHS


BROWSER_PATHS = frozenset({"/authorize", "/callback"})


def route_name(request: Request) -> str:
    """A fixed label for the matched route (never the raw path)."""
    return request.route.name.rsplit(".", 1)[-1] if request.route else "unmatched"


def rate_limited(request: Request, endpoint: str) -> HTTPResponse | None:
    """429 with Retry-After when this address is over its limit for ``endpoint``, else None."""
    address = request.remote_addr or request.ip
    retry_after = request.app.ctx.rate_limiter.retry_after(endpoint, address)
    if retry_after is None:
        return None
    metrics.RATE_LIMITED.labels(route_name(request)).inc()
    request.ctx.outcome = RateLimited.error
    headers = {"Retry-After": str(retry_after)}
    if wants_html(request):
        response = error_page(
            429,
            "Too many attempts",
            "This address has started too many sign-ins in a short time.",
            f"Wait {retry_after} seconds, then try again.",
        )
        response.headers.update(headers)
        return response
    return oauth_error(RateLimited("too many requests from this address; slow down"), headers)

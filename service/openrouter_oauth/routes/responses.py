"""How answers leave the service: OAuth JSON, browser pages, redirects, security headers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from sanic import HTTPResponse, Request, html, json, redirect

from .. import metrics, pages, redirects
from ..errors import Failure, OAuthError, RateLimited

NO_STORE = {"Cache-Control": "no-store"}


def oauth_json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    return json(body, status=status, headers={**NO_STORE, **(headers or {})})


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


def browser_redirect(url: str, status: int = 303) -> HTTPResponse:
    """Redirect a browser: 303 after a form POST (the next request is a GET), else 302."""
    return redirect(url, status=status, headers={**NO_STORE, "Referrer-Policy": "no-referrer"})


def wants_html(request: Request) -> bool:
    return request.path in BROWSER_PATHS


BROWSER_PATHS = frozenset({"/authorize", "/callback"})


def route_name(request: Request) -> str:
    """A fixed label for the matched route (never the raw path)."""
    return request.route.name.rsplit(".", 1)[-1] if request.route else "unmatched"


def check_rate_limit(request: Request, endpoint: str) -> None:
    """Raise RateLimited (429 with Retry-After) when this address is over its limit."""
    address = request.remote_addr or request.ip
    retry_after = request.app.ctx.rate_limiter.retry_after(endpoint, address)
    if retry_after is not None:
        metrics.RATE_LIMITED.labels(route_name(request)).inc()
        raise RateLimited(retry_after)


def failure(request: Request, error: Failure) -> HTTPResponse:
    """The one rendering of every failure: RFC 6749 JSON for a program, a readable page
    for a person (at the browser's endpoints, and for errors only a browser meets)."""
    request.ctx.outcome = error.outcome
    if isinstance(error, OAuthError) and not wants_html(request):
        return oauth_json(error.body(), status=error.status, headers=error.headers())
    response = page(
        pages.error_page(error.title, error.message(), error.advice), status=error.page_status
    )
    response.headers.update(error.headers())
    return response

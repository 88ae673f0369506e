"""``create_app(settings)``: wiring, middleware and the lifecycle of outbound clients."""

from __future__ import annotations

import json
import logging
import time
from types import ModuleType
from typing import Any

from sanic import HTTPResponse, Request, Sanic, empty
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler

from . import introspection, logs, metrics, paths
from .authorization import AuthorizationService
from .clients import ClientResolver
from .errors import (
    Failure,
    HeadersTooLarge,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    OAuthError,
    RequestTimeout,
    RequestTooLarge,
    ServerError,
    TemporarilyUnavailable,
    UnauthenticatedCaller,
)
from .grants import Grants
from .keycache import KeyInfoCache
from .metadata_documents import MetadataDocumentFetcher, is_public_address, public_or_loopback
from .openapi import openapi_document
from .protocol import AddressSlots
from .ratelimit import RateLimiter
from .routes import (
    authorize,
    callback,
    health,
    introspect,
    landing,
    me,
    metadata,
    openapi,
    register,
    revoke,
    token,
)
from .routes.responses import check_rate_limit, failure, route_name
from .sealing import Sealer
from .settings import Settings
from .state import StateStore
from .store import Store, StoreUnavailable, open_store
from .upstream import OpenRouter, UpstreamUnavailable

log = logging.getLogger("openrouter_oauth")

REQUEST_MAX_SIZE = 64 * 1024
REQUEST_MAX_HEADER_SIZE = 16 * 1024
# Answers need only the origin and exposed headers; the rest is for preflights.
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "WWW-Authenticate"}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
    "Access-Control-Max-Age": "86400",
}
# Route name -> the rate limit it counts against.
_RATE_LIMITED = {
    "register": "register",
    "authorize": "authorize",
    "decide": "authorize",
    "token": "token",
    "revoke": "token",
}
# Not a real HTTP status: nginx's "client closed request", so disconnects are counted apart.
CLIENT_CLOSED = 499


def _is_cors_path(path: str) -> bool:
    return path in paths.CORS or path.startswith(paths.CORS_PREFIX)


def strict_json_loads(body: str | bytes) -> Any:
    """JSON whose strings are all valid Unicode: a lone surrogate (``"\\ud800"``) cannot be
    encoded again, so it is refused here as malformed JSON rather than failing later."""
    value = json.loads(body)
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # UnicodeEncodeError: refused
    return value


class FailureHandler(ErrorHandler):
    """Every failure leaves as a standard OAuth error or a readable page; never a traceback."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        if isinstance(exception, RequestCancelled):
            log.info("client closed the connection on %s %s", request.method, route_name(request))
            request.ctx.outcome = "client_closed"
            return empty(status=CLIENT_CLOSED)  # never sent: the connection is gone
        error = _as_failure(exception)
        expected = StoreUnavailable | UpstreamUnavailable | Failure
        if error.status >= 500 and not isinstance(exception, expected):
            log.error(
                "unhandled error on %s %s", request.method, route_name(request), exc_info=exception
            )
        return failure(request, error)  # the response middleware adds CORS and the request id


# Sanic's own refusals (routing, limits, parsing) as OAuth errors.
_SANIC_ERRORS: dict[int, OAuthError] = {
    404: NotFound("no such endpoint"),
    405: MethodNotAllowed("method not allowed for this endpoint"),
    408: RequestTimeout("the request took too long"),
    413: RequestTooLarge("the request is too large"),
    431: HeadersTooLarge("the request headers are too large"),
}


def _as_failure(exception: Exception) -> Failure:
    """Every exception as the failure a client sees: the one place errors are mapped."""
    if isinstance(exception, Failure):
        return exception
    if isinstance(exception, StoreUnavailable):
        return TemporarilyUnavailable("the state store is not answering; retry shortly")
    if isinstance(exception, UpstreamUnavailable):
        return TemporarilyUnavailable("OpenRouter is not answering; retry shortly")
    if isinstance(exception, SanicException) and exception.status_code < 500:
        known = _SANIC_ERRORS.get(exception.status_code)
        return known or InvalidRequest("the request is malformed")
    return ServerError("the server could not complete the request")


def create_app(settings: Settings, name: str = "openrouter_oauth") -> Sanic:
    app = Sanic(
        name, error_handler=FailureHandler(), configure_logging=False, loads=strict_json_loads
    )
    _configure(app, settings)
    for module in _routes(settings):
        app.blueprint(module.bp)
    app.before_server_start(_open_clients)
    app.after_server_stop(_close_clients)
    app.on_request(_start, priority=100)
    app.on_response(_finish)
    return app


def _routes(settings: Settings) -> list[ModuleType]:
    """The route modules this configuration serves: /introspect only with callers,
    /revoke only in bound mode. What is not served is not routed (404), as
    ``/openapi.json`` and the metadata say."""
    modules = [landing, metadata, register, authorize, callback, token, me, health, openapi]
    if settings.introspection_credentials or settings.resource_servers:
        modules.append(introspect)
    if settings.bound:
        modules.append(revoke)
    return modules


def _configure(app: Sanic, settings: Settings) -> None:
    """Sanic's limits from the settings, and what every request shares."""
    app.config.REQUEST_MAX_SIZE = REQUEST_MAX_SIZE
    app.config.REQUEST_MAX_HEADER_SIZE = REQUEST_MAX_HEADER_SIZE
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.NOISY_EXCEPTIONS = False
    app.config.PROXIES_COUNT = settings.trusted_proxies
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = settings.shutdown_timeout_seconds
    # The protocol enforces REQUEST_DEADLINE_SECONDS from the first byte; Sanic's own
    # timer (reset by every byte) then only sets how often that is checked.
    app.config.REQUEST_TIMEOUT = settings.request_deadline_seconds
    app.config.KEEP_ALIVE_TIMEOUT = settings.keep_alive_seconds

    app.ctx.settings = settings
    app.ctx.sealer = Sealer(settings.secret, settings.previous_secrets, issuer=settings.issuer_url)
    app.ctx.as_metadata = metadata.authorization_server_metadata(settings)
    app.ctx.pr_metadata = metadata.protected_resource_metadata(settings)
    app.ctx.pr_metadata_url = settings.url(paths.PR_METADATA)
    app.ctx.openapi = openapi_document(settings)
    app.ctx.rate_limiter = RateLimiter(settings.rate_limits)
    app.ctx.address_slots = AddressSlots(settings.max_connections_per_address)
    app.ctx.introspection_callers = introspection.callers(
        settings.introspection_credentials, settings.resource_servers
    )
    app.ctx.resource_server_callers = introspection.callers((), settings.resource_servers)


async def _open_clients(app: Sanic) -> None:
    settings: Settings = app.ctx.settings
    app.ctx.store = open_store(settings)
    await _check_store(app.ctx.store, settings)
    app.ctx.state = StateStore(app.ctx.store, app.ctx.sealer, settings.state_ttl_seconds)
    app.ctx.upstream = OpenRouter(
        settings.openrouter_base_url, timeout=settings.upstream_timeout_seconds
    )
    app.ctx.key_info = KeyInfoCache(
        app.ctx.upstream.key_info,
        ttl=settings.me_cache_seconds,
        negative_ttl=settings.me_negative_cache_seconds,
        concurrency=settings.key_check_concurrency,
    )
    loopback = settings.metadata_documents_allow_loopback
    app.ctx.documents = MetadataDocumentFetcher(
        address_allowed=public_or_loopback if loopback else is_public_address
    )
    app.ctx.clients = ClientResolver(
        app.ctx.sealer,
        app.ctx.documents,
        metadata_documents=settings.metadata_documents,
        allow_loopback=loopback,
    )
    app.ctx.grants = Grants(settings, app.ctx.sealer, app.ctx.state) if settings.bound else None
    app.ctx.authorization = AuthorizationService(
        settings=settings,
        sealer=app.ctx.sealer,
        state=app.ctx.state,
        clients=app.ctx.clients,
        upstream=app.ctx.upstream,
        grants=app.ctx.grants,
    )


async def _close_clients(app: Sanic) -> None:
    await app.ctx.upstream.aclose()
    await app.ctx.documents.aclose()
    await app.ctx.store.close()


async def _start(request: Request) -> HTTPResponse | None:
    request.ctx.started = time.perf_counter()
    request.ctx.request_id = logs.request_id(request.headers.get("x-request-id"))
    if request.method == "OPTIONS" and _is_cors_path(request.path):
        return empty(status=204, headers=_PREFLIGHT)
    endpoint = _RATE_LIMITED.get(route_name(request))
    if endpoint is not None and not _known_resource_server(request):
        check_rate_limit(request, endpoint)
    return None


async def _finish(request: Request, response: HTTPResponse) -> None:
    if not hasattr(request.ctx, "request_id"):  # refused before the request middleware
        request.ctx.request_id = logs.new_request_id()
    response.headers["X-Request-ID"] = request.ctx.request_id
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if _is_cors_path(request.path):
        response.headers.update(_CORS)
    _record(request, response)


def _known_resource_server(request: Request) -> bool:
    """A declared resource server (HTTP Basic with its RESOURCE_SERVERS credentials): a
    known caller, held to no per-address limit, as at /introspect. Its token exchanges
    come from one address for all its users."""
    callers = request.app.ctx.resource_server_callers
    header = request.headers.get("authorization", "")
    if not callers or not header:
        return False
    try:
        introspection.authenticate(callers, introspection.presented_credentials(header, {}))
    except UnauthenticatedCaller:
        return False
    return True


async def _check_store(store: Store, settings: Settings) -> None:
    """Say at once when etcd does not answer: the service still starts and recovers by
    itself, but an operator should not learn of it only from /readyz."""
    if settings.etcd is None:
        return
    try:
        await store.ping()
    except StoreUnavailable:
        log.warning(
            "etcd at %s is not answering; starting anyway: requests that need it get 503 "
            "and /readyz stays 503 until it answers",
            ",".join(settings.etcd.endpoints),
        )


def _record(request: Request, response: HTTPResponse) -> None:
    """One metrics sample and one log line per request."""
    started = getattr(request.ctx, "started", None)
    duration = time.perf_counter() - started if started is not None else 0.0
    route = route_name(request)
    status = response.status
    outcome = getattr(request.ctx, "outcome", None) or ("ok" if status < 400 else f"http_{status}")
    metrics.requests(route, status, outcome).inc()
    metrics.request_seconds(route).observe(duration)
    logs.access(
        method=request.method,
        route=route,
        status=status,
        outcome=outcome,
        duration_ms=round(duration * 1000, 2),
        request_id=request.ctx.request_id,
        client_id=logs.loggable_client_id(getattr(request.ctx, "client_id", None)),
    )

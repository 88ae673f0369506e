"""``create_app(settings)``: wiring, middleware and the lifecycle of outbound clients."""

from __future__ import annotations

import logging

from sanic import HTTPResponse, Request, Sanic, empty
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler

from .clients import ClientResolver
from .errors import InvalidRequest, OAuthError, TemporarilyUnavailable
from .metadata_documents import MetadataDocumentFetcher
from .routes import authorize, callback, health, me, metadata, register, token
from .routes.responses import error_page, oauth_error, wants_html
from .sealing import Sealer
from .settings import Settings
from .state import StateStore
from .store import StoreUnavailable, open_store
from .upstream import OpenRouter

log = logging.getLogger("openrouter_oauth")

REQUEST_MAX_SIZE = 64 * 1024
CORS_PATHS = ("/register", "/token", "/me")
CORS_PREFIXES = ("/.well-known/",)
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
    "Access-Control-Expose-Headers": "WWW-Authenticate",
    "Access-Control-Max-Age": "86400",
}


def _is_cors_path(path: str) -> bool:
    return path in CORS_PATHS or path.startswith(CORS_PREFIXES)


class OAuthErrorHandler(ErrorHandler):
    """Every failure leaves as a standard OAuth error or a readable page; never a traceback."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        error = _as_oauth_error(exception)
        if error.status >= 500 and not isinstance(exception, StoreUnavailable | OAuthError):
            log.error("unhandled error on %s %s", request.method, request.path, exc_info=exception)
        if wants_html(request):
            return error_page(
                error.status,
                "Something went wrong",
                f"{error.description}.",
                "Wait a moment, then go back to the application and try again.",
            )
        response = oauth_error(error)
        if _is_cors_path(request.path):
            response.headers.update(_CORS)
        return response


def _as_oauth_error(exception: Exception) -> OAuthError:
    if isinstance(exception, OAuthError):
        return exception
    if isinstance(exception, StoreUnavailable):
        return TemporarilyUnavailable("the state store is not answering; retry shortly")
    if isinstance(exception, SanicException) and exception.status_code < 500:
        status = exception.status_code
        code = "not_found" if status == 404 else "invalid_request"
        messages = {
            404: "no such endpoint",
            405: "method not allowed for this endpoint",
            413: "the request is too large",
            408: "the request took too long",
        }
        return InvalidRequest(
            messages.get(status, "the request is malformed"), error=code, status=status
        )
    return OAuthError("the server could not complete the request", error="server_error", status=500)


def create_app(settings: Settings, name: str = "openrouter_oauth") -> Sanic:
    app = Sanic(name, error_handler=OAuthErrorHandler())
    app.config.REQUEST_MAX_SIZE = REQUEST_MAX_SIZE
    app.config.REQUEST_ID_HEADER = "X-Request-ID"
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.NOISY_EXCEPTIONS = False

    app.ctx.settings = settings
    app.ctx.sealer = Sealer(settings.secret, settings.previous_secrets)
    app.ctx.as_metadata = metadata.authorization_server_metadata(settings)
    app.ctx.pr_metadata = metadata.protected_resource_metadata(settings)
    app.ctx.pr_metadata_url = settings.url("/.well-known/oauth-protected-resource")

    for module in (metadata, register, authorize, callback, token, me, health):
        app.blueprint(module.bp)

    @app.before_server_start
    async def open_clients(app: Sanic) -> None:
        app.ctx.store = open_store(settings)
        app.ctx.state = StateStore(app.ctx.store, app.ctx.sealer, settings.state_ttl_seconds)
        app.ctx.upstream = OpenRouter(
            settings.openrouter_base_url, timeout=settings.upstream_timeout_seconds
        )
        app.ctx.documents = MetadataDocumentFetcher()
        app.ctx.clients = ClientResolver(app.ctx.sealer, app.ctx.documents)

    @app.after_server_stop
    async def close_clients(app: Sanic) -> None:
        await app.ctx.upstream.aclose()
        await app.ctx.documents.aclose()
        await app.ctx.store.close()

    @app.on_request(priority=100)
    async def preflight(request: Request) -> HTTPResponse | None:
        if request.method == "OPTIONS" and _is_cors_path(request.path):
            return empty(status=204, headers=_CORS)
        return None

    @app.on_response
    async def common_headers(request: Request, response: HTTPResponse) -> None:
        response.headers["X-Request-ID"] = str(request.id)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if _is_cors_path(request.path):
            response.headers.update(_CORS)

    return app

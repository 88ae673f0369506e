"""The resource server's side of bound mode, for the benchmark: a bare route and a tool.

    .venv/bin/python -m bench.resource_server --port P --issuer URL --resource URL \
        --client-id ID --client-secret SECRET

One Starlette app (the framework the MCP Python SDK serves with), run by uvicorn, with
two routes measured in the same process: ``/hello`` returns a constant; ``/tool``
does what an MCP tool call does with a bound token, through the SDK's own auth
middleware: :class:`OpenRouterKeyVerifier` checks the token (its cached introspection
answer) and the tool reads ``current_key().key`` (the cached exchange). The MCP
JSON-RPC envelope is left out on purpose: it costs the same in both modes and is not
what the verifier's caches are measured against.
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from starlette.applications import Starlette
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp

from openrouter_oauth.mcp_verifier import SCOPE, OpenRouterKeyVerifier, current_key


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def tool(request: Request) -> Response:
    # 200 only with the key itself in hand: a tool that did not get it must not count.
    if not current_key().key.startswith("sk-or-"):
        return PlainTextResponse("no key", status_code=500)
    return PlainTextResponse("ok")


def protected(endpoint: ASGIApp, verifier: OpenRouterKeyVerifier, resource: str) -> ASGIApp:
    """The SDK's stack for an authenticated MCP endpoint, around this one route only (so
    ``/hello`` stays bare)."""
    required = RequireAuthMiddleware(endpoint, required_scopes=[SCOPE])
    backend = BearerAuthBackend(verifier, resource_server_url=resource)
    return AuthenticationMiddleware(AuthContextMiddleware(required), backend=backend)


def create_app(verifier: OpenRouterKeyVerifier, resource: str) -> Starlette:
    return Starlette(
        routes=[
            Route("/hello", hello),
            Route("/tool", protected(request_response(tool), verifier, resource), methods=["GET"]),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True, help="the authorization server's URL")
    parser.add_argument("--resource", required=True, help="this server's declared resource")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args()
    verifier = OpenRouterKeyVerifier(
        args.issuer,
        client_id=args.client_id,
        client_secret=args.client_secret,
        resource=args.resource,
        # Longer than the run: every measured call is a cache hit after the warm-up.
        cache_seconds=3600,
    )
    app = create_app(verifier, args.resource)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

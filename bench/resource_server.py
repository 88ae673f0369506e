"""The resource server's side of bound mode, for the benchmark: a bare route and a tool.

    .venv/bin/python -m bench.resource_server --port P --issuer URL --resource URL \
        --client-id ID --client-secret SECRET

The app is built as ``examples/mcp_server.py`` builds its own: the MCP Python SDK's
``streamable_http_app`` (its authentication middleware around every route) with
:class:`IntrospectionOutageMiddleware` around it, served by uvicorn. Two routes are
measured in the same process: ``/hello``, a custom route returning a constant (what a
health check is on any MCP server), and ``/tool``, which does what an MCP tool call does
with a bound token, behind the SDK's ``RequireAuthMiddleware`` as its ``/mcp`` endpoint
is: :class:`OpenRouterKeyVerifier` checks the token (its cached introspection answer) and
the tool reads ``current_key().key`` (the cached exchange). The MCP JSON-RPC envelope is
left out on purpose: it costs the same in both modes and is not what the verifier's
caches are measured against.

With ``--floor`` the same app gets a verifier that does no work at all (it returns one
prebuilt key for any token): what the SDK's authentication stack alone costs, so that
``/tool`` there against ``/tool`` here is what the verifier's caches cost.
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, request_response

from openrouter_oauth.mcp_verifier import (
    SCOPE,
    IntrospectionOutageMiddleware,
    OpenRouterKey,
    OpenRouterKeyVerifier,
    auth_settings,
    current_key,
)

HOST = "127.0.0.1"


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello")


async def tool(request: Request) -> Response:
    # 200 only with the key itself in hand: a tool that did not get it must not count.
    if not current_key().key.startswith("sk-or-"):
        return PlainTextResponse("no key", status_code=500)
    return PlainTextResponse("ok")


class NoVerification:
    """The floor's verifier: one key, built once, for every token."""

    def __init__(self, resource: str) -> None:
        self._key = OpenRouterKey(
            token="floor",
            client_id="floor",
            scopes=[SCOPE],
            resource=resource,
            exchanged_key="sk-or-floor",
        )

    async def verify_token(self, token: str) -> OpenRouterKey | None:
        return self._key


def create_app(verifier: TokenVerifier, issuer: str, resource: str) -> Starlette:
    auth = auth_settings(issuer, resource, bound=True)
    server = MCPServer("bench", token_verifier=verifier, auth=auth)
    server.custom_route("/hello", methods=["GET"])(hello)
    app = server.streamable_http_app(host=HOST)
    metadata = build_resource_metadata_url(auth.resource_server_url)
    required = RequireAuthMiddleware(request_response(tool), [SCOPE], metadata)
    app.router.routes.append(Route("/tool", required, methods=["GET"]))
    app.add_middleware(IntrospectionOutageMiddleware)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True, help="the authorization server's URL")
    parser.add_argument("--resource", required=True, help="this server's declared resource")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--floor", action="store_true", help="a verifier that does nothing")
    args = parser.parse_args()
    verifier: TokenVerifier = (
        NoVerification(args.resource)
        if args.floor
        else OpenRouterKeyVerifier(
            args.issuer,
            client_id=args.client_id,
            client_secret=args.client_secret,
            resource=args.resource,
            # Longer than the run: every measured call is a cache hit after the warm-up.
            cache_seconds=3600,
        )
    )
    app = create_app(verifier, args.issuer, args.resource)
    uvicorn.run(app, host=HOST, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()

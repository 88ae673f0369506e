"""An MCP server whose users pay for their own model calls with their OpenRouter key.

Clients find the authorization server (this project) through the server's
protected-resource metadata, log the person in there, and call the tools with the
token they got: the OpenRouter key itself, or, with ``ACCESS_TOKENS=bound`` on both
sides, a token issued for this server alone, which it exchanges for the key. Each
call's token is checked by introspection, and the ``ask`` tool calls OpenRouter's chat
completions with the key.

    pip install 'openrouter-oauth-provider[mcp]'
    INTROSPECTION_CLIENT_ID=my-mcp-server INTROSPECTION_CLIENT_SECRET=… \\
        python examples/mcp_server.py

Settings (environment variables):

| variable | default | meaning |
|---|---|---|
| ``ISSUER_URL`` | ``http://127.0.0.1:8000`` | the authorization server (this project) |
| ``INTROSPECTION_CLIENT_ID`` | required | this server's id in ``INTROSPECTION_CREDENTIALS`` |
| ``INTROSPECTION_CLIENT_SECRET`` | required | its secret there |
| ``ACCESS_TOKENS`` | ``openrouter-key`` | ``bound``: as on the authorization server (below) |
| ``CACHE_SECONDS`` | ``10`` | introspection answers are reused (revoked tokens work) that long |
| ``OPENROUTER_BASE_URL`` | ``https://openrouter.ai`` | where the tool sends chat completions |
| ``HOST``, ``PORT`` | ``127.0.0.1``, ``8001`` | where this server listens |
| ``PUBLIC_URL`` | ``http://HOST:PORT`` | public base URL; the MCP endpoint is ``/mcp`` |
| ``MODEL`` | ``openrouter/auto`` | the model ``ask`` uses unless told otherwise |

With ``ACCESS_TOKENS=bound`` the id and secret are this server's entry in the
authorization server's ``RESOURCE_SERVERS``, whose ``resource`` is ``PUBLIC_URL/mcp``.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.applications import Starlette

from openrouter_oauth.mcp_verifier import (
    IntrospectionOutageMiddleware,
    OpenRouterKeyVerifier,
    auth_settings,
    current_key,
)

ISSUER_URL = os.environ.get("ISSUER_URL", "http://127.0.0.1:8000")
OPENROUTER_BASE_URL = os.environ.get("OPENROUTER_BASE_URL", "https://openrouter.ai").rstrip("/")
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8001"))
PUBLIC_URL = os.environ.get("PUBLIC_URL", f"http://{HOST}:{PORT}").rstrip("/")
MODEL = os.environ.get("MODEL", "openrouter/auto")
BOUND = os.environ.get("ACCESS_TOKENS", "openrouter-key") == "bound"
CACHE_SECONDS = float(os.environ.get("CACHE_SECONDS", "10"))


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"{name} is required (see the table at the top of {__file__})")
    return value


def build_server() -> MCPServer:
    verifier = OpenRouterKeyVerifier(
        ISSUER_URL,
        client_id=_required("INTROSPECTION_CLIENT_ID"),
        client_secret=_required("INTROSPECTION_CLIENT_SECRET"),
        cache_seconds=CACHE_SECONDS,
        resource=f"{PUBLIC_URL}/mcp" if BOUND else None,
    )
    server = MCPServer(
        "OpenRouter example",
        instructions="Ask models on OpenRouter; every call is billed to your own key.",
        token_verifier=verifier,
        # Protected-resource metadata at /.well-known/oauth-protected-resource/mcp names
        # ISSUER_URL; 401 answers point there, which is how clients find the login.
        auth=auth_settings(ISSUER_URL, f"{PUBLIC_URL}/mcp", bound=BOUND),
    )
    server.tool()(ask)
    server.tool()(budget)
    return server


async def ask(prompt: str, model: str = MODEL) -> str:
    """Ask a model on OpenRouter. Billed to your own OpenRouter key, within its budget."""
    key = current_key()
    async with httpx.AsyncClient(timeout=120) as http:
        response = await http.post(
            f"{OPENROUTER_BASE_URL}/api/v1/chat/completions",
            # The person's own key, to OpenRouter only: never log it or send it elsewhere.
            headers={"Authorization": f"Bearer {key.key}", "X-Title": "OpenRouter MCP example"},
            json={"model": model, "messages": [{"role": "user", "content": prompt}]},
        )
    body = _json_or_empty(response)
    if response.status_code != 200:
        message = (body.get("error") or {}).get("message") or response.reason_phrase
        raise ToolError(f"OpenRouter answered {response.status_code}: {message}")
    try:
        return str(body["choices"][0]["message"]["content"])
    except (KeyError, IndexError, TypeError):
        raise ToolError("OpenRouter's answer had no message") from None


async def budget() -> dict[str, Any]:
    """What is left of your key's budget, as OpenRouter reported it seconds ago."""
    key = current_key()
    return {
        "label": key.label,
        "limit": key.limit,
        "limit_remaining": key.limit_remaining,
        "usage": key.usage,
    }


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def build_app() -> Starlette:
    """The server's HTTP app; ``build_server().run("streamable-http")`` works too, but
    answers 500 instead of 503 while the authorization server cannot check keys."""
    app = build_server().streamable_http_app(host=HOST)
    app.add_middleware(IntrospectionOutageMiddleware)
    return app


if __name__ == "__main__":
    uvicorn.run(build_app(), host=HOST, port=PORT)

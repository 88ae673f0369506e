"""Every path the service serves, declared once.

The routes, the metadata documents, the OpenAPI document, CORS and the pages take their
paths from here; ``tests/unit/test_paths.py`` checks that the router and
``/openapi.json`` list exactly the same paths and methods.
"""

from __future__ import annotations

LANDING = "/"
AS_METADATA = "/.well-known/oauth-authorization-server"
PR_METADATA = "/.well-known/oauth-protected-resource"
REGISTER = "/register"
AUTHORIZE = "/authorize"
CALLBACK = "/callback"
TOKEN = "/token"  # noqa: S105 (a path, not a password)
REVOKE = "/revoke"
ME = "/me"
INTROSPECT = "/introspect"
HEALTHZ = "/healthz"
READYZ = "/readyz"
OPENAPI = "/openapi.json"

# Called from browsers' scripts (a web MCP client), so they answer CORS requests.
CORS = (REGISTER, TOKEN, REVOKE, ME)
CORS_PREFIX = "/.well-known/"


def route_suffix(path: str) -> str:
    """The route of ``path`` followed by any suffix (RFC 8414 §3.1, RFC 9728 §3.1)."""
    return f"{path}/<_suffix:path>"


def openapi_suffix(path: str) -> str:
    """The same, as OpenAPI writes it."""
    return f"{path}/{{suffix}}"

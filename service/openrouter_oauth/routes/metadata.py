"""Discovery: RFC 8414 authorization server metadata and RFC 9728 protected resource metadata.

Both documents are built once from settings (never from the Host header) and
served at the root and at any path suffix, which is where MCP clients look first.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request, json

from .. import paths
from ..flow import GRANTED_SCOPE
from ..introspection import AUTH_METHODS
from ..resources import TOKEN_EXCHANGE_GRANT
from ..settings import Settings
from .token import REFRESH_GRANT

SCOPES = [GRANTED_SCOPE]
_CACHE = {"Cache-Control": "public, max-age=300"}

bp = Blueprint("metadata")


def authorization_server_metadata(settings: Settings) -> dict[str, Any]:
    document = {
        "issuer": settings.issuer_url,
        "authorization_endpoint": settings.url(paths.AUTHORIZE),
        "token_endpoint": settings.url(paths.TOKEN),
        "registration_endpoint": settings.url(paths.REGISTER),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": settings.metadata_documents,
        "authorization_response_iss_parameter_supported": True,
        "service_documentation": settings.service_documentation_url,
    }
    if settings.introspection_credentials or settings.resource_servers:
        document["introspection_endpoint"] = settings.url(paths.INTROSPECT)
        document["introspection_endpoint_auth_methods_supported"] = AUTH_METHODS
    if settings.bound:
        document.update(_bound_metadata(settings))
    return document


def _bound_metadata(settings: Settings) -> dict[str, Any]:
    """What bound mode adds: refresh, token exchange (for resource servers, with HTTP
    Basic), and revocation by public clients (RFC 7009)."""
    return {
        "grant_types_supported": ["authorization_code", REFRESH_GRANT, TOKEN_EXCHANGE_GRANT],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        "revocation_endpoint": settings.url(paths.REVOKE),
        "revocation_endpoint_auth_methods_supported": ["none"],
    }


def protected_resource_metadata(settings: Settings, suffix: str = "") -> dict[str, Any]:
    """RFC 9728: at ``/.well-known/oauth-protected-resource/<suffix>`` the resource
    identifier is the issuer's origin with that path (§3.1), and must be named as such."""
    return {
        "resource": f"{settings.issuer_url}/{suffix}" if suffix else settings.issuer_url,
        "authorization_servers": [settings.issuer_url],
        "scopes_supported": SCOPES,
        "bearer_methods_supported": ["header"],
        "resource_name": "OpenRouter API key check",
    }


@bp.get(paths.AS_METADATA)
@bp.get(paths.route_suffix(paths.AS_METADATA), name="as_metadata_suffix")
async def as_metadata(request: Request, _suffix: str = "") -> HTTPResponse:
    return json(request.app.ctx.as_metadata, headers=_CACHE)


@bp.get(paths.PR_METADATA)
@bp.get(paths.route_suffix(paths.PR_METADATA), name="pr_metadata_suffix")
async def pr_metadata(request: Request, _suffix: str = "") -> HTTPResponse:
    if not _suffix:
        return json(request.app.ctx.pr_metadata, headers=_CACHE)
    return json(protected_resource_metadata(request.app.ctx.settings, _suffix), headers=_CACHE)

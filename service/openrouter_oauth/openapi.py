"""The OpenAPI 3.0 description of the HTTP API, served at ``/openapi.json``.

Browser endpoints answer HTML pages and redirects; API endpoints answer JSON,
and every JSON error has the RFC 6749 shape ``{"error", "error_description"}``.
"""

from __future__ import annotations

from typing import Any

from . import __version__, paths
from .settings import Settings

_ERROR = {"$ref": "#/components/schemas/OAuthError"}
_HTML = {"text/html": {"schema": {"type": "string"}}}


def _json(schema: dict[str, Any], description: str, **headers: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = {
            name: {"schema": {"type": "string"}, "description": text}
            for name, text in headers.items()
        }
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "Bad request (RFC 6749 error)",
        401: "Unknown client or bad token",
        404: "No such endpoint",
        405: "Method not allowed",
        413: "Body too large",
        429: "Rate limited",
        503: "Store or OpenRouter unavailable; retry",
    }
    return {str(s): _json(_ERROR, texts[s]) for s in statuses}


def _page(description: str) -> dict[str, Any]:
    return {"description": description, "content": _HTML}


def _redirect(description: str) -> dict[str, Any]:
    return {"description": description, "headers": {"Location": {"schema": {"type": "string"}}}}


def _query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def _strings(*names: str) -> dict[str, Any]:
    return {name: {"type": "string"} for name in names}


_CODE_GRANT_FIELDS = (
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "code_verifier",
    "resource",
)
_METADATA_RESPONSES = {"200": _json({"type": "object"}, "Metadata document")}
_SUFFIX = [{"name": "suffix", "in": "path", "required": True, "schema": {"type": "string"}}]

_SCHEMAS: dict[str, Any] = {
    "OAuthError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    },
    "ClientMetadata": {
        "type": "object",
        "required": ["redirect_uris"],
        "properties": {
            "redirect_uris": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "client_name": {"type": "string"},
            "token_endpoint_auth_method": {"type": "string", "enum": ["none"]},
            "grant_types": {"type": "array", "items": {"type": "string"}},
            "response_types": {"type": "array", "items": {"type": "string"}},
            "scope": {"type": "string"},
        },
    },
    "ClientInformation": {
        "type": "object",
        "required": ["client_id", "redirect_uris", "token_endpoint_auth_method"],
        "properties": {
            "client_id": {"type": "string"},
            "client_id_issued_at": {"type": "integer"},
            "client_name": {"type": "string"},
            "redirect_uris": {"type": "array", "items": {"type": "string"}},
            "token_endpoint_auth_method": {"type": "string", "enum": ["none"]},
        },
    },
    "TokenRequest": {
        "type": "object",
        "required": ["grant_type", "code", "client_id", "code_verifier"],
        "properties": _strings(*_CODE_GRANT_FIELDS),
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "scope": {"type": "string"},
        },
    },
    "Me": {
        "type": "object",
        "required": ["id", "name", "username"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "username": {"type": "string"},
            "usage": {"type": "number", "nullable": True},
            "balance": {"type": "number", "nullable": True},
            "label": {"type": "string", "nullable": True},
            "limit": {"type": "number", "nullable": True},
            "limit_remaining": {"type": "number", "nullable": True},
            "limit_reset": {"type": "string", "nullable": True},
            "is_free_tier": {"type": "boolean", "nullable": True},
            "expires_at": {"type": "string", "nullable": True},
        },
    },
    "Introspection": {
        "type": "object",
        "required": ["active"],
        "properties": {
            "active": {"type": "boolean"},
            "token_type": {"type": "string"},
            "scope": {"type": "string"},
            "exp": {"type": "integer"},
            "sub": {"type": "string"},
            "label": {"type": "string", "nullable": True},
            "limit": {"type": "number", "nullable": True},
            "limit_remaining": {"type": "number", "nullable": True},
            "usage": {"type": "number", "nullable": True},
            "is_free_tier": {"type": "boolean", "nullable": True},
        },
    },
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}, "reason": {"type": "string"}},
    },
}


_STATUS = {"$ref": "#/components/schemas/Status"}
_TOKEN_BODY = {"$ref": "#/components/schemas/TokenRequest"}


# Bound mode (ACCESS_TOKENS=bound): three grants at /token, tokens of ours, an audience.
_BOUND_SCHEMAS: dict[str, Any] = {
    "TokenRequest": {
        "type": "object",
        "description": "authorization_code (code, code_verifier, client_id); refresh_token "
        "(refresh_token, client_id); urn:ietf:params:oauth:grant-type:token-exchange "
        "(subject_token, subject_token_type; a resource server, with HTTP Basic)",
        "required": ["grant_type"],
        "properties": _strings(
            *_CODE_GRANT_FIELDS, "refresh_token", "scope", "subject_token", "subject_token_type"
        ),
    },
    "Token": {
        "type": "object",
        "description": "To an MCP client: access_token and refresh_token of ours, never the "
        "key. To a resource server's token exchange: the key, with issued_token_type.",
        "required": ["access_token", "token_type"],
        "properties": {
            **_strings("access_token", "refresh_token", "scope", "issued_token_type"),
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"},
        },
    },
    "Introspection": {
        **_SCHEMAS["Introspection"],
        "properties": {
            **_SCHEMAS["Introspection"]["properties"],
            **_strings("aud", "client_id"),
            "iat": {"type": "integer"},
        },
    },
}


def _landing() -> dict[str, Any]:
    links = {"type": "object", "required": ["issuer"], "additionalProperties": {"type": "string"}}
    return {
        "get": {
            "summary": "What this server is: a page for a browser, JSON for a program",
            "responses": {
                "200": {
                    "description": "The issuer and the links to its documents",
                    "content": {**_HTML, "application/json": {"schema": links}},
                }
            },
        }
    }


def _as_metadata() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Authorization server metadata (RFC 8414)",
            "responses": _METADATA_RESPONSES,
        }
    }


def _at_suffix(path: dict[str, Any]) -> dict[str, Any]:
    """A metadata document served again at a path suffix (where MCP clients look first)."""
    get = path["get"]
    return {"get": {**get, "summary": f"{get['summary']}, at a path suffix", "parameters": _SUFFIX}}


def _pr_metadata() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Protected resource metadata (RFC 9728)",
            "responses": _METADATA_RESPONSES,
        }
    }


def _register() -> dict[str, Any]:
    return {
        "post": {
            "summary": "Dynamic client registration (RFC 7591)",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ClientMetadata"}}
                },
            },
            "responses": {
                "201": _json({"$ref": "#/components/schemas/ClientInformation"}, "Registered"),
                **_errors(400, 413, 429),
            },
        }
    }


def _authorize() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Start authorization: the consent page",
            "parameters": [
                _query("response_type", "code", True),
                _query("client_id", "registered id, domain, or CIMD URL", True),
                _query("redirect_uri", "one of the client's redirect URIs"),
                _query("code_challenge", "PKCE S256 challenge", True),
                _query("code_challenge_method", "S256", True),
                _query("state", "echoed back"),
                _query("scope", "recorded"),
                _query("resource", "RFC 8707 resource indicator"),
            ],
            "responses": {
                "200": _page("Consent page"),
                "303": _redirect("Error redirect to the client"),
                "400": _page("The client or redirect URI is not trusted"),
                "429": _page("Rate limited"),
            },
        },
        "post": {
            "summary": "The consent decision",
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "required": ["ticket", "action"],
                            "properties": {
                                "ticket": {"type": "string"},
                                "action": {"type": "string", "enum": ["approve", "deny"]},
                            },
                        }
                    }
                },
            },
            "responses": {
                "303": _redirect("To OpenRouter, or access_denied"),
                "400": _page("Expired or invalid page"),
                "403": _page("Cross-site request refused"),
                "409": _page("Already answered"),
                "413": _page("Body too large"),
                "429": _page("Rate limited"),
                "503": _page("Store unavailable"),
            },
        },
    }


def _callback() -> dict[str, Any]:
    return {
        "get": {
            "summary": "OpenRouter's return",
            "parameters": [
                _query("session", "the pending authorization", True),
                _query("code", "OpenRouter's code"),
                _query("error", "OpenRouter's error"),
            ],
            "responses": {
                "302": _redirect("To the client with code, state and iss"),
                "400": _page("Expired or used link"),
                "503": _page("Store unavailable"),
            },
        }
    }


def _form_post(summary: str, body: dict[str, Any], ok: dict[str, Any]) -> dict[str, Any]:
    """A POST taking form-encoded (or flat JSON) parameters, as /token and /revoke do."""
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": body},
                    "application/json": {"schema": body},
                },
            },
            "responses": {"200": ok, **_errors(400, 401, 413, 429, 503)},
        }
    }


def _token(summary: str = "Redeem a code for the OpenRouter key") -> dict[str, Any]:
    return _form_post(
        summary, _TOKEN_BODY, _json({"$ref": "#/components/schemas/Token"}, "The key")
    )


def _me() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Check an OpenRouter key and describe it",
            "security": [{"bearer": []}],
            "responses": {
                "200": _json({"$ref": "#/components/schemas/Me"}, "Key information"),
                "401": _json(
                    _ERROR,
                    "Missing or invalid key",
                    **{"WWW-Authenticate": "Bearer challenge"},
                ),
                **_errors(503),
            },
        }
    }


def _healthz() -> dict[str, Any]:
    return {"get": {"summary": "Liveness", "responses": {"200": _json(_STATUS, "Alive")}}}


def _readyz() -> dict[str, Any]:
    return {
        "get": {
            "summary": "Readiness (the store answers)",
            "responses": {"200": _json(_STATUS, "Ready"), "503": _json(_STATUS, "Not ready")},
        }
    }


def _openapi() -> dict[str, Any]:
    return {
        "get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "OpenAPI document")},
        }
    }


def _introspect() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["token"],
        "properties": {
            name: {"type": "string"}
            for name in ("token", "token_type_hint", "client_id", "client_secret")
        },
    }
    return {
        "post": {
            "summary": "Token introspection (RFC 7662) for resource servers",
            "security": [{"basic": []}, {}],
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": body}},
            },
            "responses": {
                "200": _json(
                    {"$ref": "#/components/schemas/Introspection"},
                    "Whether the key works, and what OpenRouter says of it",
                ),
                "401": _json(
                    _ERROR, "Missing or wrong caller credentials", **{"WWW-Authenticate": "Basic"}
                ),
                **_errors(400, 413, 503),
            },
        }
    }


def _revoke() -> dict[str, Any]:
    body = {
        "type": "object",
        "required": ["token", "client_id"],
        "properties": _strings("token", "token_type_hint", "client_id"),
    }
    return _form_post(
        "Revoke (RFC 7009) an access or refresh token: its grant ends",
        body,
        {"description": "Revoked, or not a live token of ours"},
    )


def openapi_document(settings: Settings) -> dict[str, Any]:
    document = _document(settings)
    if settings.introspection_credentials or settings.resource_servers:
        document["paths"][paths.INTROSPECT] = _introspect()
    if settings.bound:
        document["components"]["schemas"] = {**_SCHEMAS, **_BOUND_SCHEMAS}
        document["paths"][paths.TOKEN] = _token(
            "Redeem a code or refresh token for tokens of ours; exchange an access "
            "token for the key (resource servers)"
        )
        document["paths"][paths.REVOKE] = _revoke()
    return document


def _document(settings: Settings) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "OpenRouter OAuth Provider",
            "version": __version__,
            "description": "An MCP-compliant OAuth 2.1 authorization server in front of "
            "OpenRouter's PKCE flow.",
        },
        "servers": [{"url": settings.issuer_url}],
        "paths": {
            paths.LANDING: _landing(),
            paths.AS_METADATA: _as_metadata(),
            paths.openapi_suffix(paths.AS_METADATA): _at_suffix(_as_metadata()),
            paths.PR_METADATA: _pr_metadata(),
            paths.openapi_suffix(paths.PR_METADATA): _at_suffix(_pr_metadata()),
            paths.REGISTER: _register(),
            paths.AUTHORIZE: _authorize(),
            paths.CALLBACK: _callback(),
            paths.TOKEN: _token(),
            paths.ME: _me(),
            paths.HEALTHZ: _healthz(),
            paths.READYZ: _readyz(),
            paths.OPENAPI: _openapi(),
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }

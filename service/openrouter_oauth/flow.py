"""The authorization rules as pure functions: parsing and validating requests, building
redirects, checking a redemption.

consent ticket → decision (approved) → completion + grant (our code) → redeemed.
Nothing here does I/O or knows about Sanic: :mod:`.authorization` runs the steps
and persists what they produce (:mod:`.records`).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from . import pkce
from .clients import Client
from .errors import (
    InvalidGrant,
    InvalidRequest,
    InvalidTarget,
    OAuthError,
    UnsupportedGrantType,
    UnsupportedResponseType,
)
from .limits import MAX_PARAM_LENGTH
from .redirects import with_params
from .resources import canonical_resource

GRANT_TYPE = "authorization_code"
# The scope policy: a key can do what OpenRouter lets that key do, nothing more or less,
# so there is exactly one scope. Requested scopes are not refused (clients send
# "openid offline_access" and the like) but never echoed: the token response names
# only what is granted (RFC 6749 §3.3).
GRANTED_SCOPE = "openrouter"

Params = Mapping[str, Sequence[str]]

# RFC 6749 Appendix A.5: state is 1*VSCHAR (printable ASCII and space).
_VSCHAR = re.compile(r"[\x20-\x7e]+")
# RFC 3986 §2: the characters a URI may hold (reserved, unreserved and percent signs).
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


def param(
    params: Params, name: str, *, required: bool = False, max_length: int = MAX_PARAM_LENGTH
) -> str | None:
    """One parameter's value, or None when absent; a repeated, overlong or (``required``)
    missing parameter raises InvalidRequest (RFC 6749 §3.1)."""
    values = params.get(name) or []
    if len(values) > 1:
        raise InvalidRequest(f"{name} must not be repeated")
    value = values[0] if values else None
    if value is not None and len(value) > max_length:
        raise InvalidRequest(f"{name} is longer than {max_length} characters")
    if required and not value:
        raise InvalidRequest(f"{name} is required")
    return value or None


def lenient_param(params: Params, name: str, max_length: int = MAX_PARAM_LENGTH) -> str | None:
    """A parameter's value when it is given exactly once and within limits, else None;
    never raises (for labels and for what another check refuses anyway)."""
    values = params.get(name) or []
    return values[0] if len(values) == 1 and len(values[0]) <= max_length else None


@dataclass(frozen=True)
class AuthorizationRequest:
    """A validated /authorize request: everything needed to answer the client later."""

    client_id: str
    client_name: str
    redirect_uri: str
    code_challenge: str
    state: str | None = None
    resource: str | None = None

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AuthorizationRequest:
        return cls(**{name: record.get(name) for name in cls.__dataclass_fields__})


def redirect_uri_for(client: Client, params: Params) -> str:
    """Step 1: the redirect URI we may trust. Errors here are shown, never redirected."""
    uri = param(params, "redirect_uri")
    return client.check_redirect_uri(uri) if uri else client.default_redirect_uri()


def authorization_request(
    client: Client, redirect_uri: str, params: Params
) -> AuthorizationRequest:
    """Step 2: the rest of the request. Errors here are shown as pages too: until the
    person has decided, nothing is redirected (see :mod:`.routes.authorize`)."""
    response_type = param(params, "response_type", required=True)
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    challenge = param(params, "code_challenge")
    if not challenge:
        raise InvalidRequest("code_challenge is required (PKCE)")
    if param(params, "code_challenge_method") != "S256":
        raise InvalidRequest("code_challenge_method must be S256")
    if not pkce.is_valid_challenge(challenge):
        raise InvalidRequest("code_challenge is not a valid S256 challenge")
    resource = param(params, "resource")
    if resource is not None:
        check_resource(resource)
    param(params, "scope")  # within the limits, though only GRANTED_SCOPE is ever granted
    state = param(params, "state")
    if state is not None and not _VSCHAR.fullmatch(state):
        raise InvalidRequest("state must be printable ASCII (RFC 6749, Appendix A.5)")
    return AuthorizationRequest(
        client_id=client.client_id,
        client_name=client.name,
        redirect_uri=redirect_uri,
        code_challenge=challenge,
        state=state,
        resource=resource,
    )


def check_resource(resource: str) -> None:
    """RFC 8707 §2: an absolute URI without a fragment."""
    if not _URI_CHARS.fullmatch(resource) or "#" in resource:
        raise InvalidTarget("resource must be an absolute URI without a fragment")
    canonical_resource(resource)  # an unparsable URI (port, brackets) is invalid_target too
    parts = urlsplit(resource)
    if not parts.scheme or not parts.netloc:
        raise InvalidTarget("resource must be an absolute URI without a fragment")


def longest_field(request: AuthorizationRequest) -> str:
    """The parameter that takes the most room once the request is sealed."""
    fields = ("client_id", "redirect_uri", "state", "resource")
    return max(fields, key=lambda name: len(json.dumps(getattr(request, name) or "")))


def client_redirect(issuer: str, redirect_uri: str, state: str | None, **params: str) -> str:
    """The authorization response (success or error), with ``state`` and ``iss`` (RFC 9207)."""
    if state is not None:
        params["state"] = state
    params["iss"] = issuer
    return with_params(redirect_uri, params)


def error_redirect(issuer: str, redirect_uri: str, state: str | None, error: OAuthError) -> str:
    return client_redirect(
        issuer, redirect_uri, state, error=error.error, error_description=error.description
    )


@dataclass(frozen=True)
class TokenRequest:
    client_id: str
    code: str
    code_verifier: str
    redirect_uri: str | None
    resource: str | None = None


def token_request(params: Params) -> TokenRequest:
    grant_type = param(params, "grant_type", required=True)
    if grant_type != GRANT_TYPE:
        raise UnsupportedGrantType("only the authorization_code grant is supported")
    return TokenRequest(
        client_id=param(params, "client_id", required=True) or "",
        code=param(params, "code", required=True) or "",
        code_verifier=param(params, "code_verifier", required=True) or "",
        redirect_uri=param(params, "redirect_uri"),
        resource=param(params, "resource"),
    )


def check_token_resource(token: TokenRequest, request: AuthorizationRequest) -> None:
    """Bound mode, RFC 8707 §2.2: a ``resource`` at /token must be the one authorized."""
    if token.resource is None:
        return
    check_resource(token.resource)
    if canonical_resource(token.resource) != canonical_resource(request.resource or ""):
        raise InvalidTarget("resource is not the one this code was issued for")


def same(a: str | None, b: str | None) -> bool:
    """Equal, compared in constant time (None as empty): for anything a caller presents."""
    return hmac.compare_digest((a or "").encode(), (b or "").encode())


def check_redemption(token: TokenRequest, request: AuthorizationRequest) -> None:
    """The grant's binding to client, redirect URI and PKCE challenge (RFC 6749 §4.1.3)."""
    if not same(token.client_id, request.client_id):
        raise InvalidGrant("the code was issued to another client")
    if token.redirect_uri is not None and not same(token.redirect_uri, request.redirect_uri):
        raise InvalidGrant("redirect_uri does not match the authorization request")
    if not pkce.verify(token.code_verifier, request.code_challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")


def token_response(key: str) -> dict[str, Any]:
    return {"access_token": key, "token_type": "Bearer", "scope": GRANTED_SCOPE}

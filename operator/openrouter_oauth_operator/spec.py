"""An OAuthProvider's spec, parsed and checked: what the operator may act on.

Names become Kubernetes API path segments, so they are checked here as the API server
would check them (the CRD says the same in its schema) before any request is made.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openrouter_oauth.settings import SettingsError, check_issuer_url

GROUP = "openrouter-oauth.io"
VERSION = "v1alpha1"
PLURAL = "oauthproviders"

DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600
MIN_RETENTION_SECONDS = 600  # the service's state lifetime: logins in flight must survive
# A Sealing phase is one rollout: far longer than a Deployment's default progress deadline
# (600 s) means it is stuck, and the previous secret stays readable for as long as it is.
DEFAULT_SEALING_DEADLINE_SECONDS = 3600
MIN_SEALING_DEADLINE_SECONDS = 60
# spec.accessTokens -> ACCESS_TOKENS; the default mode writes nothing, as before it existed.
ACCESS_TOKENS = {"openrouterKey": None, "bound": "bound"}


class InvalidProvider(Exception):
    """The resource, or something it points to, cannot be used; nothing is changed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ProviderSpec:
    issuer_url: str
    deployment: str
    secret_name: str | None
    secret_key: str
    retention_seconds: int
    drop_previous: bool
    sealing_deadline_seconds: int = DEFAULT_SEALING_DEADLINE_SECONDS
    access_tokens: str | None = None  # ACCESS_TOKENS for the service; None: its default

    @property
    def config_secret(self) -> str:
        return config_secret_name(self.deployment)


CONFIG_SUFFIX = "-oauth-config"
MAX_NAME = 253
MAX_DEPLOYMENT_NAME = MAX_NAME - len(CONFIG_SUFFIX)  # the config Secret's name must fit too

# What the API server accepts as an object name (RFC 1123 subdomain) and as a namespace
# (RFC 1123 label). Names become API path segments: these forms can hold no "/" and no
# "." or ".." segment.
OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
NAMESPACE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")  # what a Secret's data key may be


def is_object_name(value: object, max_length: int = MAX_NAME) -> bool:
    return (
        isinstance(value, str) and len(value) <= max_length and bool(OBJECT_NAME.fullmatch(value))
    )


def _checked_name(field: str, value: object, max_length: int) -> str:
    if not is_object_name(value, max_length):
        raise InvalidProvider(
            "InvalidName",
            f"{field} must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', "
            f"starting and ending with a letter or digit, at most {max_length} characters",
        )
    return str(value)


def _checked_key(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_NAME or not SECRET_KEY.fullmatch(value):
        raise InvalidProvider(
            "InvalidName",
            f"spec.secretRef.key must be letters, digits, '-', '_' and '.', at most {MAX_NAME}",
        )
    return value


def config_secret_name(deployment: str) -> str:
    return f"{deployment}{CONFIG_SUFFIX}"


def generated_secret_name(provider: str) -> str:
    return f"{provider}-state-secret"


def parse_spec(spec: Mapping[str, Any], default_deployment: str) -> ProviderSpec:
    issuer = spec.get("issuerURL")
    if not isinstance(issuer, str) or not issuer:
        raise InvalidProvider("InvalidIssuerURL", "spec.issuerURL is required")
    try:
        check_issuer_url("spec.issuerURL", issuer)  # the service's own rule, not a copy
    except SettingsError as exc:
        raise InvalidProvider("InvalidIssuerURL", str(exc)) from None
    secret_ref = spec.get("secretRef") or {}
    retention = int(spec.get("previousSecretRetentionSeconds", DEFAULT_RETENTION_SECONDS))
    if retention < MIN_RETENTION_SECONDS:
        raise InvalidProvider(
            "InvalidRetention",
            f"spec.previousSecretRetentionSeconds must be at least {MIN_RETENTION_SECONDS}",
        )
    sealing_deadline = int(spec.get("sealingDeadlineSeconds", DEFAULT_SEALING_DEADLINE_SECONDS))
    if sealing_deadline < MIN_SEALING_DEADLINE_SECONDS:
        raise InvalidProvider(
            "InvalidSealingDeadline",
            f"spec.sealingDeadlineSeconds must be at least {MIN_SEALING_DEADLINE_SECONDS}",
        )
    secret_name = secret_ref.get("name")
    return ProviderSpec(
        issuer_url=issuer,
        deployment=_checked_name(
            "spec.deploymentName",
            spec.get("deploymentName") or default_deployment,
            MAX_DEPLOYMENT_NAME,
        ),
        secret_name=None
        if secret_name is None
        else _checked_name("spec.secretRef.name", secret_name, MAX_NAME),
        secret_key=_checked_key(secret_ref.get("key") or "secret"),
        retention_seconds=retention,
        drop_previous=bool(spec.get("dropPreviousSecrets", False)),
        sealing_deadline_seconds=sealing_deadline,
        access_tokens=_access_tokens(spec.get("accessTokens", "openrouterKey")),
    )


def _access_tokens(value: object) -> str | None:
    if not isinstance(value, str) or value not in ACCESS_TOKENS:
        raise InvalidProvider(
            "InvalidAccessTokens", "spec.accessTokens must be openrouterKey or bound"
        )
    return ACCESS_TOKENS[value]

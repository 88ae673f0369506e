"""From an OAuthProvider to what the service consumes: pure functions, no I/O.

The service reads ``ISSUER_URL``, ``SECRET`` and ``PREVIOUS_SECRETS`` from a
config Secret (``<deployment>-oauth-config``) through ``envFrom``. When the
current secret changes, the old one moves to ``PREVIOUS_SECRETS`` with a
retirement time (kept in an annotation), so logins in flight and registered
clients keep working until it is retired; ``dropPreviousSecrets`` empties the
list at once. A checksum of the config on the pod template rolls the Deployment
whenever the config changes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

GROUP = "openrouter-oauth.io"
VERSION = "v1alpha1"
PLURAL = "oauthproviders"
KIND = "OAuthProvider"

CHECKSUM_ANNOTATION = f"{GROUP}/config-checksum"
PROVIDER_ANNOTATION = f"{GROUP}/provider"
RETIRED_ANNOTATION = f"{GROUP}/previous-secrets-retire-at"

DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600
MIN_RETENTION_SECONDS = 600  # the service's state lifetime: logins in flight must survive
MIN_SECRET_LENGTH = 32
_LOOPBACK = re.compile(r"localhost|127\.0\.0\.1|\[::1\]")


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

    @property
    def config_secret(self) -> str:
        return config_secret_name(self.deployment)


def config_secret_name(deployment: str) -> str:
    return f"{deployment}-oauth-config"


def generated_secret_name(provider: str) -> str:
    return f"{provider}-state-secret"


def parse_spec(spec: Mapping[str, Any], default_deployment: str) -> ProviderSpec:
    issuer = spec.get("issuerURL")
    if not isinstance(issuer, str) or not issuer:
        raise InvalidProvider("InvalidIssuerURL", "spec.issuerURL is required")
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidProvider("InvalidIssuerURL", f"spec.issuerURL is not an http(s) URL: {issuer}")
    if parts.query or parts.fragment or issuer.endswith("/"):
        raise InvalidProvider(
            "InvalidIssuerURL",
            f"spec.issuerURL must have no trailing slash, query or fragment: {issuer}",
        )
    if parts.scheme == "http" and not _LOOPBACK.fullmatch(parts.netloc.rsplit(":", 1)[0]):
        raise InvalidProvider(
            "InvalidIssuerURL",
            f"spec.issuerURL must use https unless its host is loopback: {issuer}",
        )
    secret_ref = spec.get("secretRef") or {}
    retention = int(spec.get("previousSecretRetentionSeconds", DEFAULT_RETENTION_SECONDS))
    if retention < MIN_RETENTION_SECONDS:
        raise InvalidProvider(
            "InvalidRetention",
            f"spec.previousSecretRetentionSeconds must be at least {MIN_RETENTION_SECONDS}",
        )
    return ProviderSpec(
        issuer_url=issuer,
        deployment=spec.get("deploymentName") or default_deployment,
        secret_name=secret_ref.get("name"),
        secret_key=secret_ref.get("key") or "secret",
        retention_seconds=retention,
        drop_previous=bool(spec.get("dropPreviousSecrets", False)),
    )


def secret_value(secret: Mapping[str, Any] | None, name: str, key: str) -> str:
    """The state secret held in a Secret object, validated."""
    if secret is None:
        raise InvalidProvider("SecretNotFound", f"Secret {name} does not exist")
    encoded = (secret.get("data") or {}).get(key)
    if encoded is None:
        raise InvalidProvider("SecretKeyNotFound", f"Secret {name} has no key {key!r}")
    value = base64.b64decode(encoded).decode("utf-8", errors="replace").strip()
    if len(value) < MIN_SECRET_LENGTH or "," in value:
        raise InvalidProvider(
            "WeakSecret",
            f"the secret in {name}/{key} must be at least {MIN_SECRET_LENGTH} characters "
            "and contain no comma",
        )
    return value


@dataclass(frozen=True)
class Config:
    """What the service is configured with, and when each previous secret retires."""

    issuer_url: str
    secret: str
    previous: tuple[tuple[str, int], ...] = ()  # (secret, retire at, epoch seconds)

    def data(self) -> dict[str, str]:
        return {
            "ISSUER_URL": self.issuer_url,
            "SECRET": self.secret,
            "PREVIOUS_SECRETS": ",".join(value for value, _ in self.previous),
        }

    def retire_annotation(self) -> str:
        """Retirement times by fingerprint: the annotation never holds a secret."""
        return json.dumps({fingerprint(v): at for v, at in self.previous}, sort_keys=True)

    def checksum(self) -> str:
        return hashlib.sha256(json.dumps(self.data(), sort_keys=True).encode()).hexdigest()


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def read_config(secret: Mapping[str, Any] | None) -> Config | None:
    """The config currently in effect, from the config Secret object (None if absent)."""
    if secret is None:
        return None
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    try:
        retire_at = json.loads(annotations.get(RETIRED_ANNOTATION, "{}"))
    except ValueError:
        retire_at = {}
    previous = tuple(
        (value, int(retire_at.get(fingerprint(value), 0)))
        for value in data.get("PREVIOUS_SECRETS", "").split(",")
        if value
    )
    return Config(data.get("ISSUER_URL", ""), data.get("SECRET", ""), previous)


def next_config(spec: ProviderSpec, secret: str, current: Config | None, now: float) -> Config:
    """The config to apply: a changed secret retires the old one after the retention."""
    previous = list(current.previous) if current else []
    if current is not None and current.secret and current.secret != secret:
        previous.insert(0, (current.secret, int(now + spec.retention_seconds)))
    if spec.drop_previous:
        previous = []
    kept: list[tuple[str, int]] = []
    for value, retire_at in previous:
        if retire_at > now and value != secret and value not in {v for v, _ in kept}:
            kept.append((value, retire_at))
    return Config(spec.issuer_url, secret, tuple(kept))


def secret_object(
    name: str, data: Mapping[str, str], annotations: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "annotations": dict(annotations), "labels": dict(labels)},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def claim_conflict(deployment: Mapping[str, Any], provider: str) -> str | None:
    """The other provider that already configures this Deployment, if any."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    owner = annotations.get(PROVIDER_ANNOTATION)
    return owner if owner and owner != provider else None


def deployment_patch(
    deployment: Mapping[str, Any], provider: str, config: Config
) -> dict[str, Any] | None:
    """The merge patch that claims the Deployment and rolls it on a new config (None: no-op)."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    current = (template.get("annotations") or {}).get(CHECKSUM_ANNOTATION)
    if annotations.get(PROVIDER_ANNOTATION) == provider and current == config.checksum():
        return None
    return {
        "metadata": {"annotations": {PROVIDER_ANNOTATION: provider}},
        "spec": {
            "template": {"metadata": {"annotations": {CHECKSUM_ANNOTATION: config.checksum()}}}
        },
    }


def condition(
    ready: bool,
    reason: str,
    message: str,
    generation: int | None,
    previous: list[Mapping[str, Any]] | None,
    now: datetime,
) -> dict[str, Any]:
    """The Ready condition, keeping its transition time while its status holds."""
    status = "True" if ready else "False"
    old = next((c for c in previous or [] if c.get("type") == "Ready"), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == status else None
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since or now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }

"""The Kubernetes objects the operator reads and writes, as plain dicts: no I/O.

Reading: the state secret a provider points to, the config Secret, the Deployment's
rollout and who claims it. Writing: a Secret, and the patch that claims the Deployment
and rolls it onto a new configuration.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from openrouter_oauth.settings import SettingsError, check_secret

from .rotation import Config, Rollout
from .spec import GROUP, NAMESPACE_NAME, InvalidProvider, is_object_name

CHECKSUM_ANNOTATION = f"{GROUP}/config-checksum"
PROVIDER_ANNOTATION = f"{GROUP}/provider"
# A Secret named in spec.secretRef must carry this label with the value "true": creating an
# OAuthProvider must not let anyone have the operator copy any Secret of the namespace.
STATE_SECRET_LABEL = f"{GROUP}/state-secret"


def referenced_secret_value(secret: Mapping[str, Any] | None, name: str, key: str) -> str:
    """The state secret of the Secret ``spec.secretRef`` names: only one marked for us.

    One answer for a missing and an unmarked Secret, so that whoever may create an
    OAuthProvider cannot learn which Secrets exist.
    """
    labels = ((secret or {}).get("metadata") or {}).get("labels") or {}
    if labels.get(STATE_SECRET_LABEL) != "true":
        raise InvalidProvider(
            "SecretNotFound",
            f"Secret {name} does not exist or is not labelled {STATE_SECRET_LABEL}=true "
            f"(kubectl label secret {name} {STATE_SECRET_LABEL}=true)",
        )
    return secret_value(secret, name, key)


def generated_secret_value(secret: Mapping[str, Any], name: str, owner_uid: str) -> str:
    """The state secret the operator generated for this provider, never another Secret.

    A provider's name chooses this Secret's name: a Secret of that name that this provider
    does not own is someone else's, and is left alone.
    """
    if not owned_by(secret, owner_uid):
        raise InvalidProvider(
            "SecretNotOwned",
            f"Secret {name} exists and was not generated for this OAuthProvider; rename the "
            "provider, or mark that Secret and name it in spec.secretRef",
        )
    return secret_value(secret, name, "secret")


def owned_by(obj: Mapping[str, Any] | None, owner_uid: str) -> bool:
    owners = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return any(owner.get("uid") == owner_uid for owner in owners)


def check_config_owner(secret: Mapping[str, Any] | None, name: str, owner_uid: str) -> None:
    """The config Secret is written only if absent or this provider's: never anyone else's."""
    if secret is not None and not owned_by(secret, owner_uid):
        raise InvalidProvider(
            "ConfigSecretNotOwned",
            f"Secret {name} exists and was not written for this OAuthProvider; "
            "the operator does not overwrite it",
        )


def secret_value(secret: Mapping[str, Any] | None, name: str, key: str) -> str:
    """The state secret held in a Secret object, validated."""
    if secret is None:
        raise InvalidProvider("SecretNotFound", f"Secret {name} does not exist")
    encoded = (secret.get("data") or {}).get(key)
    if encoded is None:
        raise InvalidProvider("SecretKeyNotFound", f"Secret {name} has no key {key!r}")
    value = base64.b64decode(encoded).decode("utf-8", errors="replace").strip()
    try:
        return check_secret(f"the secret in {name}/{key}", value)
    except SettingsError as exc:
        raise InvalidProvider("WeakSecret", str(exc)) from None


def rollout_status(deployment: Mapping[str, Any] | None, checksum: str | None) -> Rollout:
    """Like ``kubectl rollout status``, for the pod template carrying ``checksum``.

    apps/v1 semantics: ``status`` describes ``metadata.generation`` only once
    ``observedGeneration`` reached it; ``replicas`` counts the pods of every
    ReplicaSet (old ones included) and ``updatedReplicas`` those of the current
    template. Terminating pods are not counted: they only finish requests that
    started before the rollout, so they never need a secret introduced by it.
    """
    if deployment is None:
        return Rollout(False, "the Deployment does not exist")
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    template = (spec.get("template") or {}).get("metadata") or {}
    if checksum is None or (template.get("annotations") or {}).get(CHECKSUM_ANNOTATION) != checksum:
        return Rollout(False, "the Deployment does not carry the current configuration yet")
    if spec.get("paused"):
        return Rollout(False, "the Deployment is paused")
    generation = (deployment.get("metadata") or {}).get("generation") or 0
    if (status.get("observedGeneration") or 0) < generation:
        return Rollout(False, "the Deployment controller has not observed the change yet")
    stalled = _stalled(status)
    if stalled is not None:
        return Rollout(False, stalled)
    wanted = spec.get("replicas")
    wanted = 1 if wanted is None else wanted  # the API server defaults it to 1
    updated = status.get("updatedReplicas") or 0
    replicas = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < wanted:
        return Rollout(False, f"{updated} of {wanted} replicas updated")
    if replicas > updated:
        return Rollout(False, f"{replicas - updated} old replicas still running")
    if available < updated:
        return Rollout(False, f"{available} of {updated} updated replicas available")
    return Rollout(True, f"all {updated} replicas run the current configuration")


def _stalled(status: Mapping[str, Any]) -> str | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return f"the rollout is stuck: {cond.get('message') or 'progress deadline exceeded'}"
    return None


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


def claimed_by(deployment: Mapping[str, Any]) -> tuple[str, str] | None:
    """The provider (namespace, name) that configures this Deployment, if any.

    Whoever may edit the Deployment may write this annotation: one that names no possible
    provider claims nothing, and never becomes an API path.
    """
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    namespace, _, name = str(annotations.get(PROVIDER_ANNOTATION) or "").partition("/")
    if NAMESPACE_NAME.fullmatch(namespace) and len(namespace) <= 63 and is_object_name(name):
        return namespace, name
    return None


def claim_conflict(deployment: Mapping[str, Any], provider: str) -> tuple[str, str] | None:
    """The other provider that already configures this Deployment, if any."""
    owner = claimed_by(deployment)
    return owner if owner and "/".join(owner) != provider else None


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

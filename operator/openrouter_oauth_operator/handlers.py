"""Thin kopf handlers: read what a provider points to, let :mod:`.reconcile` decide, write it.

Every change also runs on a timer, so a rotated Secret, an expired previous
secret, or a fixed problem (a Secret created later, a conflict resolved) is
picked up without a restart.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import kopf

from . import reconcile as rc
from .config import OperatorConfig
from .kube import Kube, KubeError, deployment_path, provider_path, secrets_path

LABELS = {"app.kubernetes.io/managed-by": "openrouter-oauth-operator"}


def provider_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


async def _state_secret(kube: Kube, body: kopf.Body, spec: rc.ProviderSpec) -> str:
    """The current state secret: the referenced one, or one generated and owned by the provider."""
    namespace = body.metadata.namespace
    if spec.secret_name is not None:
        found = await kube.get(secrets_path(namespace, spec.secret_name))
        return rc.secret_value(found, spec.secret_name, spec.secret_key)
    name = rc.generated_secret_name(body.metadata.name)
    existing = await kube.get(secrets_path(namespace, name))
    if existing is None:
        existing = rc.secret_object(name, {"secret": secrets.token_urlsafe(48)}, {}, LABELS)
        kopf.adopt(existing, owner=body)
        await kube.create(secrets_path(namespace), existing)
    return rc.secret_value(existing, name, "secret")


async def _write_config(
    kube: Kube,
    body: kopf.Body,
    spec: rc.ProviderSpec,
    config: rc.Config,
    current: dict[str, Any] | None,
) -> bool:
    """Create or update the config Secret; True if it changed."""
    namespace = body.metadata.namespace
    desired = rc.secret_object(
        spec.config_secret,
        config.data(),
        {rc.RETIRED_ANNOTATION: config.retire_annotation()},
        LABELS,
    )
    kopf.adopt(desired, owner=body)
    if current is None:
        await kube.create(secrets_path(namespace), desired)
        return True
    if (
        current.get("data") == desired["data"]
        and (current["metadata"].get("annotations") or {}).get(rc.RETIRED_ANNOTATION)
        == config.retire_annotation()
    ):
        return False
    # Every key is always written, so a merge patch replaces the whole configuration.
    await kube.merge_patch(
        secrets_path(namespace, spec.config_secret),
        {
            "metadata": {"annotations": desired["metadata"]["annotations"]},
            "data": desired["data"],
        },
    )
    return True


async def reconcile_provider(
    kube: Kube, config: OperatorConfig, body: kopf.Body
) -> tuple[rc.ProviderSpec, bool]:
    """Apply one provider; return its spec and whether anything changed.

    Raises InvalidProvider, changing nothing.
    """
    namespace, name = body.metadata.namespace, body.metadata.name
    spec = rc.parse_spec(body.spec, config.default_deployment)
    deployment = await kube.get(deployment_path(namespace, spec.deployment))
    if deployment is None:
        raise rc.InvalidProvider(
            "DeploymentNotFound", f"Deployment {spec.deployment} does not exist"
        )
    other = rc.claim_conflict(deployment, provider_id(namespace, name))
    if other is not None and await kube.get(provider_path(*other.split("/", 1))) is not None:
        raise rc.InvalidProvider(
            "DeploymentClaimed", f"Deployment {spec.deployment} is configured by {other}"
        )
    secret = await _state_secret(kube, body, spec)
    current = await kube.get(secrets_path(namespace, spec.config_secret))
    desired = rc.next_config(spec, secret, rc.read_config(current), time.time())
    changed = await _write_config(kube, body, spec, desired, current)
    patch = rc.deployment_patch(deployment, provider_id(namespace, name), desired)
    if patch is not None:
        await kube.merge_patch(deployment_path(namespace, spec.deployment), patch)
    return spec, changed or patch is not None


def _set_status(
    body: kopf.Body,
    patch: kopf.Patch,
    ready: bool,
    reason: str,
    message: str,
    spec: rc.ProviderSpec | None,
) -> bool:
    """Patch the status if it changes; True if the Ready condition changed."""
    previous = list(body.status.get("conditions") or [])
    generation = body.meta.get("generation")
    desired: dict[str, Any] = {
        "conditions": [
            rc.condition(ready, reason, message, generation, previous, datetime.now(UTC))
        ],
        "observedGeneration": generation,
    }
    if spec is not None and ready:
        desired.update(
            issuer=spec.issuer_url, deployment=spec.deployment, configSecret=spec.config_secret
        )
    if any(body.status.get(key) != value for key, value in desired.items()):
        for key, value in desired.items():
            patch.status[key] = value
    old = next((c for c in previous if c.get("type") == "Ready"), {})
    return (old.get("reason"), old.get("message"), old.get("status")) != (
        reason,
        message,
        "True" if ready else "False",
    )


async def reconcile_handler(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    # The resync timer and the change handlers run in separate tasks: one at a time per
    # provider (memo is per object), each reading the latest body.
    lock: asyncio.Lock = memo.setdefault("reconcile_lock", asyncio.Lock())
    async with lock:
        await _reconcile(body, patch, memo)


async def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    config: OperatorConfig = memo.config
    try:
        spec, changed = await reconcile_provider(memo.kube, config, body)
    except rc.InvalidProvider as exc:
        if _set_status(body, patch, False, exc.reason, exc.message, None):
            kopf.warn(body, reason=exc.reason, message=exc.message)
        return
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=10) from None
    message = f"Deployment {spec.deployment} serves issuer {spec.issuer_url}"
    if _set_status(body, patch, True, "Configured", message, spec) or changed:
        kopf.info(body, reason="Configured", message=message)


async def release_handler(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """On deletion: release the Deployment and remove the Secrets this provider made."""
    kube: Kube = memo.kube
    namespace, name = body.metadata.namespace, body.metadata.name
    try:
        spec = rc.parse_spec(body.spec, memo.config.default_deployment)
    except rc.InvalidProvider:
        return
    try:
        deployment = await kube.get(deployment_path(namespace, spec.deployment))
        if deployment is not None and rc.claim_conflict(deployment, "") == provider_id(
            namespace, name
        ):
            await kube.merge_patch(
                deployment_path(namespace, spec.deployment),
                {"metadata": {"annotations": {rc.PROVIDER_ANNOTATION: None}}},
            )
        for secret in (spec.config_secret, rc.generated_secret_name(name)):
            existing = await kube.get(secrets_path(namespace, secret))
            owners = (existing or {}).get("metadata", {}).get("ownerReferences") or []
            if any(o.get("uid") == body.metadata.uid for o in owners):
                await kube.delete(secrets_path(namespace, secret))
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=10) from None


def login_handler(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account, else kubeconfig; the same credentials serve our own calls."""
    info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
    if info is not None:
        memo.kube = Kube(info)
    return info


async def startup_handler(settings: kopf.OperatorSettings, **_: Any) -> None:
    # The resource and namespace are known: no cluster-wide CRD/namespace watching,
    # so the operator needs no cluster-scoped permissions.
    settings.scanning.disabled = True
    settings.persistence.finalizer = f"{rc.GROUP}/cleanup"
    settings.posting.level = 20  # INFO and above become Kubernetes Events


async def cleanup_handler(memo: kopf.Memo, **_: Any) -> None:
    kube: Kube | None = getattr(memo, "kube", None)
    if kube is not None:
        await kube.aclose()


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resource = (rc.GROUP, rc.VERSION, rc.PLURAL)
    kopf.on.login(registry=registry)(login_handler)
    kopf.on.startup(registry=registry)(startup_handler)
    kopf.on.cleanup(registry=registry)(cleanup_handler)
    for decorator in (kopf.on.create, kopf.on.update, kopf.on.resume):
        decorator(*resource, registry=registry, id=f"reconcile-{decorator.__name__}")(
            reconcile_handler
        )
    kopf.timer(
        *resource,
        registry=registry,
        id="resync",
        interval=config.resync_seconds,
        initial_delay=config.resync_seconds,
        idle=None,
    )(reconcile_handler)
    kopf.on.delete(*resource, registry=registry, id="release")(release_handler)
    return registry

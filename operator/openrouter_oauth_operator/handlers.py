"""Thin kopf handlers: read what a provider points to, let the pure modules decide, write it.

The decisions have no I/O: :mod:`.spec` parses the resource, :mod:`.objects` reads and
builds Kubernetes objects, :mod:`.rotation` plans the secret's rotation, :mod:`.status`
says where things stand.

Every change also runs on a timer, so a rotated Secret, a finished rollout (the
next rotation phase), an expired previous secret, or a fixed problem (a Secret
created later, a conflict resolved) is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from .config import OperatorConfig
from .kube import Kube, KubeError, deployment_path, provider_path, secrets_path
from .objects import (
    PROVIDER_ANNOTATION,
    check_config_owner,
    claim_conflict,
    claimed_by,
    deployment_patch,
    generated_secret_value,
    owned_by,
    referenced_secret_value,
    rollout_status,
    secret_object,
)
from .rotation import ACCEPTING, SEALING, Config, Event, Step, plan, read_config
from .spec import (
    GROUP,
    PLURAL,
    VERSION,
    InvalidProvider,
    ProviderSpec,
    generated_secret_name,
    parse_spec,
)
from .status import condition, ready_reason, rotation_status

LABELS = {"app.kubernetes.io/managed-by": "openrouter-oauth-operator"}
ROTATION_POLL_SECONDS = 5.0


def provider_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


async def _state_secret(kube: Kube, body: kopf.Body, spec: ProviderSpec) -> str:
    """The current state secret: the referenced one, or one generated and owned by the provider."""
    namespace = body.metadata.namespace
    if spec.secret_name is not None:
        found = await kube.get(secrets_path(namespace, spec.secret_name))
        return referenced_secret_value(found, spec.secret_name, spec.secret_key)
    name = generated_secret_name(body.metadata.name)
    existing = await kube.get(secrets_path(namespace, name))
    if existing is None:
        existing = secret_object(name, {"secret": secrets.token_urlsafe(48)}, {}, LABELS)
        kopf.adopt(existing, owner=body)
        await kube.create(secrets_path(namespace), existing)
    return generated_secret_value(existing, name, body.metadata.uid)


async def _write_config(
    kube: Kube,
    body: kopf.Body,
    spec: ProviderSpec,
    config: Config,
    current: dict[str, Any] | None,
) -> bool:
    """Create or update the config Secret; True if it changed."""
    namespace = body.metadata.namespace
    desired = secret_object(spec.config_secret, config.data(), config.annotations(), LABELS)
    kopf.adopt(desired, owner=body)
    if current is None:
        await kube.create(secrets_path(namespace), desired)
        return True
    annotations = current["metadata"].get("annotations") or {}
    if current.get("data") == desired["data"] and all(
        annotations.get(key) == value for key, value in config.annotations().items()
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


@dataclass(frozen=True)
class Outcome:
    """What one reconciliation applied."""

    spec: ProviderSpec
    step: Step
    rollout: str  # the Deployment's progress with the config now written
    changed: bool


async def _deployment(kube: Kube, namespace: str, name: str, spec: ProviderSpec) -> dict[str, Any]:
    """The service Deployment, unless it is missing or another provider configures it."""
    deployment = await kube.get(deployment_path(namespace, spec.deployment))
    if deployment is None:
        raise InvalidProvider("DeploymentNotFound", f"Deployment {spec.deployment} does not exist")
    other = claim_conflict(deployment, provider_id(namespace, name))
    if other is not None and await kube.get(provider_path(*other)) is not None:
        raise InvalidProvider(
            "DeploymentClaimed",
            f"Deployment {spec.deployment} is configured by {provider_id(*other)}",
        )
    return deployment


async def reconcile_provider(kube: Kube, config: OperatorConfig, body: kopf.Body) -> Outcome:
    """Apply one provider: the config Secret first, then roll the Deployment onto it.

    In this order, a restart between the two leaves a config whose rollout is not
    done (the template still has the old checksum), so the next pass rolls and waits.
    Raises InvalidProvider, changing nothing.
    """
    namespace, name = body.metadata.namespace, body.metadata.name
    spec = parse_spec(body.spec, config.default_deployment)
    deployment = await _deployment(kube, namespace, name, spec)
    current_obj = await kube.get(secrets_path(namespace, spec.config_secret))
    check_config_owner(current_obj, spec.config_secret, body.metadata.uid)
    secret = await _state_secret(kube, body, spec)
    current = read_config(current_obj)
    rollout = rollout_status(deployment, current.checksum() if current else None)
    step = plan(spec, secret, current, rollout, time.time())
    changed = await _write_config(kube, body, spec, step.config, current_obj)
    patch = deployment_patch(deployment, provider_id(namespace, name), step.config)
    if patch is not None:
        await kube.merge_patch(deployment_path(namespace, spec.deployment), patch)
    rolling = current is None or step.config.checksum() != current.checksum()
    progress = f"rolling out a new configuration to Deployment {spec.deployment}"
    return Outcome(spec, step, progress if rolling else rollout.message, changed or bool(patch))


def _set_status(
    body: kopf.Body,
    patch: kopf.Patch,
    ready: bool,
    reason: str,
    message: str,
    outcome: Outcome | None,
) -> bool:
    """Patch the status if it changes; True if the Ready condition changed."""
    previous = list(body.status.get("conditions") or [])
    generation = body.meta.get("generation")
    desired: dict[str, Any] = {
        "conditions": [condition(ready, reason, message, generation, previous, datetime.now(UTC))],
        "observedGeneration": generation,
    }
    if outcome is not None:
        spec = outcome.spec
        desired.update(
            issuer=spec.issuer_url,
            deployment=spec.deployment,
            configSecret=spec.config_secret,
            rotation=rotation_status(outcome.step.config, outcome.rollout),
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
    # provider (memo is per object), each reading the latest body. The timer is also what
    # moves a rotation on once a rollout has finished: reading the Deployment needs only
    # `get`, where watching it would need list/watch on every Deployment in the namespace.
    lock: asyncio.Lock = memo.setdefault("reconcile_lock", asyncio.Lock())
    async with lock:
        await _reconcile(body, patch, memo)


async def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    config: OperatorConfig = memo.config
    try:
        outcome = await reconcile_provider(memo.kube, config, body)
    except InvalidProvider as exc:
        changed = _set_status(body, patch, False, exc.reason, exc.message, None)
        if changed and memo.get("announced") != (exc.reason, exc.message):
            kopf.warn(body, reason=exc.reason, message=exc.message)
        memo["announced"] = (exc.reason, exc.message)
        return
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=10) from None
    ready = ready_reason(outcome.spec, outcome.step.config, time.time())
    reason, message = ready.reason, ready.message
    condition_changed = _set_status(body, patch, True, reason, message, outcome)
    for event in outcome.step.events:
        _post(body, event)
    # A timer pass right after a change handler may still see the body from before that
    # handler's status patch: the last announcement in memory keeps it from repeating.
    announced = memo.get("announced") == (reason, message)
    if not outcome.step.events and (outcome.changed or (condition_changed and not announced)):
        _post(body, ready)
    memo["announced"] = (reason, message)


def _post(body: kopf.Body, event: Event) -> None:
    post = kopf.warn if event.warning else kopf.info
    post(body, reason=event.reason, message=event.message)


async def release_handler(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """On deletion: release the Deployment and remove the Secrets this provider made."""
    kube: Kube = memo.kube
    namespace, name = body.metadata.namespace, body.metadata.name
    try:
        spec = parse_spec(body.spec, memo.config.default_deployment)
    except InvalidProvider:
        return
    try:
        deployment = await kube.get(deployment_path(namespace, spec.deployment))
        if deployment is not None and claimed_by(deployment) == (namespace, name):
            await kube.merge_patch(
                deployment_path(namespace, spec.deployment),
                {"metadata": {"annotations": {PROVIDER_ANNOTATION: None}}},
            )
        for secret in (spec.config_secret, generated_secret_name(name)):
            existing = await kube.get(secrets_path(namespace, secret))
            if owned_by(existing, body.metadata.uid):
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
    settings.persistence.finalizer = f"{GROUP}/cleanup"
    settings.posting.level = 20  # INFO and above become Kubernetes Events


async def cleanup_handler(memo: kopf.Memo, **_: Any) -> None:
    kube: Kube | None = getattr(memo, "kube", None)
    if kube is not None:
        await kube.aclose()


def _rotating(status: kopf.Status, **_: Any) -> bool:
    """A rotation waits for a rollout (as last reported: the Secret is the truth)."""
    return (status.get("rotation") or {}).get("phase") in (ACCEPTING, SEALING)


def build_registry(config: OperatorConfig) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    resource = (GROUP, VERSION, PLURAL)
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
    # While a rotation waits for a rollout, look more often, so the next phase starts
    # soon after the rollout finishes rather than up to a whole resync later.
    poll = min(ROTATION_POLL_SECONDS, config.resync_seconds)
    kopf.timer(
        *resource,
        registry=registry,
        id="rotation",
        interval=poll,
        initial_delay=poll,
        idle=None,
        when=_rotating,
    )(reconcile_handler)
    kopf.on.delete(*resource, registry=registry, id="release")(release_handler)
    return registry

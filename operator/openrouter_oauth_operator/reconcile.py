"""From an OAuthProvider to what the service consumes: pure functions, no I/O.

The service reads ``ISSUER_URL``, ``SECRET`` and ``PREVIOUS_SECRETS`` from a
config Secret (``<deployment>-oauth-config``) through ``envFrom``; it seals with
``SECRET`` and opens with any of them. A checksum of that config on the pod
template rolls the Deployment whenever the config changes.

A new state secret is rotated in two phases (see :func:`plan`), because a rolling
update runs old and new pods side by side: first every pod is made to accept it,
and only once that rollout has finished do pods seal with it. The old secret then
stays readable for the retention period, so logins in flight and registered
clients keep working; ``dropPreviousSecrets`` drops every previous secret at once.
Where a rotation stands is kept in the config Secret's annotations, never in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from openrouter_oauth.settings import SettingsError, check_issuer_url, check_secret

GROUP = "openrouter-oauth.io"
VERSION = "v1alpha1"
PLURAL = "oauthproviders"
KIND = "OAuthProvider"

CHECKSUM_ANNOTATION = f"{GROUP}/config-checksum"
PROVIDER_ANNOTATION = f"{GROUP}/provider"
RETIRED_ANNOTATION = f"{GROUP}/previous-secrets-retire-at"
ROTATION_ANNOTATION = f"{GROUP}/rotation"
# A Secret named in spec.secretRef must carry this label with the value "true": creating an
# OAuthProvider must not let anyone have the operator copy any Secret of the namespace.
STATE_SECRET_LABEL = f"{GROUP}/state-secret"

DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600
MIN_RETENTION_SECONDS = 600  # the service's state lifetime: logins in flight must survive
# A Sealing phase is one rollout: far longer than a Deployment's default progress deadline
# (600 s) means it is stuck, and the previous secret stays readable for as long as it is.
DEFAULT_SEALING_DEADLINE_SECONDS = 3600
MIN_SEALING_DEADLINE_SECONDS = 60


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
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
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
    )


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


STABLE, ACCEPTING, SEALING = "Stable", "Accepting", "Sealing"

# A previous secret retires at an epoch time, or PENDING: not before the rotation in
# progress completes (the secret being rotated in, or the one just replaced).
PENDING: None = None
RetireAt = int | None


@dataclass(frozen=True)
class Config:
    """What the service is configured with, and where a rotation stands.

    Everything here is stored in the config Secret (data and annotations), so an
    operator restarted in the middle of a rotation carries on from it.
    """

    issuer_url: str
    secret: str
    previous: tuple[tuple[str, RetireAt], ...] = ()  # (secret, retire at, epoch seconds)
    phase: str = STABLE
    target: str | None = None  # fingerprint of the secret being rotated in (Accepting)
    since: int = 0  # when the phase began, epoch seconds

    def data(self) -> dict[str, str]:
        return {
            "ISSUER_URL": self.issuer_url,
            "SECRET": self.secret,
            "PREVIOUS_SECRETS": ",".join(value for value, _ in self.previous),
        }

    def annotations(self) -> dict[str, str]:
        """Retirement times and the rotation by fingerprint: annotations never hold a secret."""
        return {
            RETIRED_ANNOTATION: json.dumps(
                {fingerprint(v): at for v, at in self.previous}, sort_keys=True
            ),
            ROTATION_ANNOTATION: json.dumps(
                {"phase": self.phase, "target": self.target, "since": self.since}, sort_keys=True
            ),
        }

    def checksum(self) -> str:
        """Of what the pods read: a new phase alone (no new data) does not roll the Deployment."""
        return hashlib.sha256(json.dumps(self.data(), sort_keys=True).encode()).hexdigest()

    def holds(self, secret: str) -> bool:
        return any(value == secret for value, _ in self.previous)


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def _json_annotation(annotations: Mapping[str, str], key: str) -> dict[str, Any]:
    try:
        value = json.loads(annotations.get(key, "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def read_config(secret: Mapping[str, Any] | None) -> Config | None:
    """The config currently in effect, from the config Secret object (None if absent)."""
    if secret is None:
        return None
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    retire_at = _json_annotation(annotations, RETIRED_ANNOTATION)
    rotation = _json_annotation(annotations, ROTATION_ANNOTATION)
    # A secret with no known retirement time (a lost annotation, an older operator) is
    # kept as PENDING: it gets a full retention period rather than being dropped at once.
    previous = tuple(
        (value, _retire_at(retire_at.get(fingerprint(value))))
        for value in data.get("PREVIOUS_SECRETS", "").split(",")
        if value
    )
    phase = rotation.get("phase")
    return Config(
        issuer_url=data.get("ISSUER_URL", ""),
        secret=data.get("SECRET", ""),
        previous=previous,
        phase=phase if phase in (ACCEPTING, SEALING) else STABLE,
        target=rotation.get("target") if isinstance(rotation.get("target"), str) else None,
        since=int(rotation.get("since") or 0),
    )


def _retire_at(value: object) -> RetireAt:
    return int(value) if isinstance(value, int | float) else PENDING


@dataclass(frozen=True)
class Rollout:
    """Whether every pod of the Deployment runs the current config (so reads its secrets)."""

    done: bool
    message: str


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


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Step:
    """The config to write now, and what to announce about it."""

    config: Config
    events: tuple[Event, ...] = ()


def plan(
    spec: ProviderSpec, desired: str, current: Config | None, rollout: Rollout, now: float
) -> Step:
    """The config the Secret should hold now: two-phase rotation as a state machine.

    ``desired`` is the state secret the user wants, ``current`` what the config
    Secret holds, ``rollout`` whether every pod runs ``current``. A rolling update
    mixes old and new pods, and a pod can only open what was sealed with a secret
    it knows. So a new secret is first only *accepted* (phase Accepting: it joins
    PREVIOUS_SECRETS while SECRET stays), and only once every pod runs that config
    is it used to *seal* (phase Sealing: it becomes SECRET, the old one joins
    PREVIOUS_SECRETS). When that rollout is done too, the old secret's retention
    starts (Stable). ``dropPreviousSecrets`` skips all of it: an emergency.
    """
    at = int(now)
    if current is None or not current.secret:
        # Nothing is sealed yet: the first secret is used at once.
        return Step(Config(spec.issuer_url, desired, since=at))
    current = replace(current, issuer_url=spec.issuer_url)
    if spec.drop_previous:
        return _drop_all(spec, desired, current, at)
    if desired == current.secret:
        step = _settle(spec, current, rollout, at)
    elif (
        current.phase == ACCEPTING
        and current.target == fingerprint(desired)
        and current.holds(desired)
    ):
        step = _seal(spec, desired, current, at) if rollout.done else Step(current)
    else:
        step = _accept(spec, desired, current, at)
    return _expire(step, at)


def _accept(spec: ProviderSpec, desired: str, current: Config, at: int) -> Step:
    """Phase 1: every pod must know the new secret before any pod seals with it."""
    previous = list(current.previous)
    if current.phase == ACCEPTING:
        # A rotation superseded before it sealed anything: its secret opens nothing.
        previous = [p for p in previous if not _is_pending_target(current, p)]
    if not any(value == desired for value, _ in previous):
        previous.insert(0, (desired, PENDING))
    config = Config(
        spec.issuer_url, current.secret, tuple(previous), ACCEPTING, fingerprint(desired), at
    )
    return Step(
        config,
        (
            Event(
                "RotationAccepting",
                f"rotation phase 1 of 2: rolling Deployment {spec.deployment} so every replica "
                "accepts the new secret; replicas keep sealing with the current one until "
                "the rollout has finished",
            ),
        ),
    )


def _is_pending_target(config: Config, entry: tuple[str, RetireAt]) -> bool:
    value, retire_at = entry
    return retire_at is PENDING and fingerprint(value) == config.target


def _seal(spec: ProviderSpec, desired: str, current: Config, at: int) -> Step:
    """Phase 2: every pod accepts the new secret, so it may now seal with it."""
    previous = ((current.secret, PENDING), *(p for p in current.previous if p[0] != desired))
    config = Config(spec.issuer_url, desired, previous, SEALING, None, at)
    return Step(
        config,
        (
            Event(
                "RotationSealing",
                f"rotation phase 2 of 2: every replica accepts the new secret; rolling "
                f"Deployment {spec.deployment} to seal with it, the previous secret stays "
                "readable",
            ),
        ),
    )


def _settle(spec: ProviderSpec, current: Config, rollout: Rollout, at: int) -> Step:
    """The desired secret already seals: finish or cancel a rotation, or hold."""
    if current.phase == ACCEPTING:
        # The secret was set back before the rotation sealed anything with the new one.
        previous = tuple(p for p in current.previous if not _is_pending_target(current, p))
        # A secret replaced by a sealing phase that had not finished rolling out may still
        # seal on some pods: its retention must wait for this rollout (Sealing).
        phase = SEALING if any(at_ is PENDING for _, at_ in previous) else STABLE
        config = replace(current, previous=previous, phase=phase, target=None, since=at)
        message = "the secret was set back to the one in use; the rotation is cancelled"
        return Step(config, (Event("RotationCancelled", message),))
    if current.phase == SEALING and not rollout.done:
        return Step(current)
    if current.phase == SEALING:
        config = _start_retention(spec, replace(current, phase=STABLE, since=at), at)
        message = (
            f"every replica of Deployment {spec.deployment} seals with the new secret; the "
            f"previous one stays readable for {spec.retention_seconds} s"
        )
        return Step(config, (Event("Rotated", message),))
    return Step(_start_retention(spec, current, at))


def _start_retention(spec: ProviderSpec, config: Config, at: int) -> Config:
    """No pod seals with a PENDING previous secret any more: its retention starts now."""
    previous = tuple(
        (value, at + spec.retention_seconds if retire_at is PENDING else retire_at)
        for value, retire_at in config.previous
    )
    return replace(config, previous=previous)


def _drop_all(spec: ProviderSpec, desired: str, current: Config, at: int) -> Step:
    """Emergency: seal with the desired secret and accept nothing else, at once.

    One phase on purpose: a two-phase rotation would keep sealing with a leaked
    secret for a whole rollout. Logins in flight fail, clients register again.
    """
    if current.secret == desired and not current.previous and current.phase == STABLE:
        return Step(current)
    config = Config(spec.issuer_url, desired, (), STABLE, None, at)
    message = (
        "dropPreviousSecrets: no previous secret is accepted any more; logins in flight "
        "fail and registered clients must register again"
    )
    return Step(config, (Event("PreviousSecretsDropped", message, warning=True),))


def _expire(step: Step, at: int) -> Step:
    """Drop previous secrets past their retirement, the sealing one, and duplicates."""
    config = step.config
    kept: list[tuple[str, RetireAt]] = []
    expired = 0
    for value, retire_at in config.previous:
        if value == config.secret or any(value == v for v, _ in kept):
            continue
        incoming = config.phase == ACCEPTING and fingerprint(value) == config.target
        if retire_at is not PENDING and retire_at <= at and not incoming:
            expired += 1
            continue
        kept.append((value, retire_at))
    if len(kept) == len(config.previous):
        return step
    events = step.events
    if expired:
        message = f"{expired} previous secret(s) reached the end of retention and are dropped"
        events = (*events, Event("PreviousSecretRetired", message))
    return Step(replace(config, previous=tuple(kept)), events)


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
    if _LABEL.fullmatch(namespace) and len(namespace) <= 63 and is_object_name(name):
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


_PHASES = {
    STABLE: ("Configured", ""),
    ACCEPTING: (
        "RotationAccepting",
        "; rotating the secret, phase 1 of 2: every replica must accept the new secret "
        "before any seals with it",
    ),
    SEALING: (
        "RotationSealing",
        "; rotating the secret, phase 2 of 2: replicas now seal with the new secret; the "
        "previous one stays readable",
    ),
}


SEALING_DEADLINE_EXCEEDED = "SealingDeadlineExceeded"


def ready_reason(spec: ProviderSpec, config: Config, now: float) -> Event:
    """The Ready condition's reason and message: which rotation phase, if any.

    The message does not carry rollout progress, so it only changes (and makes an
    Event) when the phase does; progress is in ``status.rotation.rollout``. A Sealing
    phase past ``sealingDeadlineSeconds`` is a warning: until it ends, the previous
    secret's retention has not even started.
    """
    served = f"Deployment {spec.deployment} serves issuer {spec.issuer_url}"
    if _sealing_overdue(spec, config, now):
        return Event(
            SEALING_DEADLINE_EXCEEDED,
            f"{served}; rotating the secret, phase 2 of 2 has lasted more than "
            f"{spec.sealing_deadline_seconds} s: the previous secret stays readable until "
            "every replica seals with the new one (status.rotation.rollout says what is "
            "waited for); if the previous secret leaked, set spec.dropPreviousSecrets",
            warning=True,
        )
    reason, suffix = _PHASES[config.phase]
    return Event(reason, f"{served}{suffix}")


def _sealing_overdue(spec: ProviderSpec, config: Config, now: float) -> bool:
    # since is 0 in a config written by an operator before it was recorded: unknown.
    return (
        config.phase == SEALING
        and config.since > 0
        and now - config.since > spec.sealing_deadline_seconds
    )


def rotation_status(config: Config, rollout: str) -> dict[str, Any]:
    """``status.rotation``: no secret and no fingerprint (status is more widely readable)."""
    status: dict[str, Any] = {
        "phase": config.phase,
        "previousSecrets": len(config.previous),
        "rollout": rollout,
    }
    if config.since:  # unknown for a config written by an operator before this one
        status["since"] = _timestamp(datetime.fromtimestamp(config.since, UTC))
    return status


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        "lastTransitionTime": since or _timestamp(now),
    }

"""The two-phase rotation of the state secret, as a state machine: pure functions, no I/O.

The service reads ``ISSUER_URL``, ``SECRET`` and ``PREVIOUS_SECRETS`` from a config
Secret (``<deployment>-oauth-config``): ``ISSUER_URL`` as an environment variable, the
secrets as files the chart mounts from it. It seals with ``SECRET`` and opens with any
of them. ``spec.accessTokens: bound`` adds ``ACCESS_TOKENS=bound`` there (absent: the
service's default, the OpenRouter key). A checksum of that config on the pod template
rolls the Deployment whenever the config changes.

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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .spec import GROUP, ProviderSpec

RETIRED_ANNOTATION = f"{GROUP}/previous-secrets-retire-at"
ROTATION_ANNOTATION = f"{GROUP}/rotation"

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
    access_tokens: str | None = None  # ACCESS_TOKENS, when not the service's default

    def data(self) -> dict[str, str]:
        data = {
            "ISSUER_URL": self.issuer_url,
            "SECRET": self.secret,
            "PREVIOUS_SECRETS": ",".join(value for value, _ in self.previous),
        }
        if self.access_tokens is not None:
            data["ACCESS_TOKENS"] = self.access_tokens
        return data

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
        access_tokens=data.get("ACCESS_TOKENS") or None,
    )


def _retire_at(value: object) -> RetireAt:
    return int(value) if isinstance(value, int | float) else PENDING


@dataclass(frozen=True)
class Rollout:
    """Whether every pod of the Deployment runs the current config (so reads its secrets)."""

    done: bool
    message: str


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
    """The config the Secret should hold now: the spec's token mode, and the secrets of
    :func:`plan_secrets`."""
    step = plan_secrets(spec, desired, current, rollout, now)
    return replace(step, config=replace(step.config, access_tokens=spec.access_tokens))


def plan_secrets(
    spec: ProviderSpec, desired: str, current: Config | None, rollout: Rollout, now: float
) -> Step:
    """The secrets the config should hold now: two-phase rotation as a state machine.

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

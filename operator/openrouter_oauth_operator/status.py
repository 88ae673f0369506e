"""The provider's status: the Ready condition, and where a rotation stands."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from .rotation import ACCEPTING, SEALING, STABLE, Config, Event
from .spec import ProviderSpec

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

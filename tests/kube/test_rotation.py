"""Rotating the state secret as the operator does it, against the real controllers.

Two phases, each a rollout of the Deployment (a new ReplicaSet made by the controller
manager); the second starts only once the Deployment reports the first finished, which
without a kubelet needs the stand-in in kubelet.py to make the pods ready. Then the
previous secret's retention expiry, and the emergency drop of every previous secret.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from openrouter_oauth_operator.objects import CHECKSUM_ANNOTATION, STATE_SECRET_LABEL
from openrouter_oauth_operator.rotation import (
    ACCEPTING,
    PENDING,
    RETIRED_ANNOTATION,
    SEALING,
    STABLE,
    Config,
    fingerprint,
    read_config,
)
from openrouter_oauth_operator.spec import config_secret_name
from tests.kube.conftest import (
    DEPLOYMENT,
    OPERATOR_ACCOUNT,
    Operator,
    events_about,
    provider,
    ready_condition,
    service_account_user,
    wait_configured,
)
from tests.kube.controlplane import Cli, wait_for
from tests.kube.kubelet import PodReadiness

ISSUER = "https://auth.example.com"
CONFIG_SECRET = config_secret_name(DEPLOYMENT)
NAME = "rot"
# Three values a user could write (at least 32 characters, no comma).
OLD, NEW, NEWEST = "o" * 40, "n" * 40, "x" * 40
REPLICAS = 2  # the chart's replicaCount
# conftest runs the operator with RESYNC_SECONDS=2, so it looks at the rollout every 2 s:
# holding this long is three looks that each must leave the rotation in phase 1.
HOLD_SECONDS = 6.0
ROTATION_REASONS = ("RotationAccepting", "RotationSealing", "Rotated")
StartOperator = Callable[..., Operator]
Kubelet = Callable[[str], PodReadiness]


def write_state(admin: Cli, namespace: str, value: str) -> None:
    """What a user does to rotate: a new value in the Secret the provider points to."""
    metadata = {"name": "state", "labels": {STATE_SECRET_LABEL: "true"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": metadata}
    admin.apply(namespace, {**secret, "stringData": {"secret": value}})


def current_config(admin: Cli, namespace: str) -> Config | None:
    return read_config(admin.get(namespace, "secret", CONFIG_SECRET))


def config_in(admin: Cli, namespace: str, phase: str, secret: str) -> Config:
    """Wait until the config Secret is in this rotation phase, sealing with this secret."""

    def reached() -> Config | None:
        config = current_config(admin, namespace)
        return config if config and (config.phase, config.secret) == (phase, secret) else None

    return wait_for(reached, 60, f"the config Secret in phase {phase}")


def previous(config: Config) -> list[str]:
    return [value for value, _ in config.previous]


def template_checksum(template: dict[str, Any]) -> str | None:
    """The config checksum on a pod template, or on a pod (which carries its template's)."""
    return ((template.get("metadata") or {}).get("annotations") or {}).get(CHECKSUM_ANNOTATION)


def replica_set_of(admin: Cli, namespace: str, config: Config) -> str:
    """The ReplicaSet the controller manager made for the pod template of this config."""

    def made() -> str | None:
        for rs in admin.items(namespace, "replicasets"):
            if template_checksum(rs["spec"]["template"]) == config.checksum():
                return str(rs["metadata"]["name"])
        return None

    return wait_for(made, 30, f"a ReplicaSet for config {config.checksum()[:12]}")


def rolled_out(admin: Cli, namespace: str) -> None:
    """kubectl's own idea of a finished rollout, independent of the operator's."""
    admin.kubectl("-n", namespace, "rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout=60s")


def rotation_status(admin: Cli, namespace: str) -> dict[str, Any]:
    found = admin.get(namespace, "oauthprovider", NAME) or {}
    return dict((found.get("status") or {}).get("rotation") or {})


def reasons(admin: Cli, namespace: str) -> list[str]:
    """The provider's Event reasons in the order the API server stored them.

    creationTimestamp has whole seconds only; resourceVersion comes from etcd's revision,
    which only grows (opaque in the API's contract, but etcd is the storage here).
    """
    events = events_about(admin, namespace, NAME)
    ordered = sorted(events, key=lambda e: int(e["metadata"]["resourceVersion"]))
    return [e["reason"] for e in ordered]


def configured_rotating(
    admin: Cli, namespace: str, start_operator: StartOperator, **spec: Any
) -> None:
    """The operator running as the chart's account, and a provider sealing with OLD."""
    write_state(admin, namespace, OLD)
    start_operator(namespace, service_account_user(admin, namespace, OPERATOR_ACCOUNT))
    admin.apply(namespace, provider(NAME, issuerURL=ISSUER, secretRef={"name": "state"}, **spec))
    wait_configured(admin, namespace, NAME, ISSUER)
    assert config_in(admin, namespace, STABLE, OLD).previous == ()


def hold_in(admin: Cli, namespace: str, phase: str, secret: str) -> dict[str, Any]:
    """For HOLD_SECONDS, while the new pods are not ready, the rotation stays in this phase.

    Returns status.rotation as it is then.
    """
    deadline = time.monotonic() + HOLD_SECONDS
    while time.monotonic() < deadline:
        config = current_config(admin, namespace)
        assert config is not None
        assert (config.phase, config.secret) == (phase, secret), config.phase
        time.sleep(0.5)
    # Why it waits, as the status says: maxSurge 1 made one new pod, which is not ready.
    # Waited for, not asserted at once: the status follows the controllers' pace.
    waiting = {"phase": phase, "rollout": f"1 of {REPLICAS} replicas updated"}

    def says_why() -> dict[str, Any] | None:
        rotation = rotation_status(admin, namespace)
        return rotation if waiting.items() <= rotation.items() else None

    rotation = wait_for(says_why, 30, f"status.rotation {waiting}")
    config = current_config(admin, namespace)
    assert config is not None and (config.phase, config.secret) == (phase, secret)
    condition = ready_condition(admin, namespace, NAME) or {}
    assert (condition.get("status"), condition.get("reason")) == ("True", f"Rotation{phase}")
    return rotation


def pods_of(readied: list[str], replica_set: str) -> list[int]:
    """Where in the stand-in's order the pods of one ReplicaSet became ready."""
    return [i for i, pod in enumerate(readied) if pod.rsplit("-", 1)[0] == replica_set]


def test_rotation_rolls_out_twice_each_phase_after_the_last(
    admin: Cli, installed: str, start_operator: StartOperator, kubelet: Kubelet
) -> None:
    namespace = installed
    pods = kubelet(namespace)
    configured_rotating(admin, namespace, start_operator, previousSecretRetentionSeconds=600)
    # The service runs before the rotation: its pods are ready and the rollout is done.
    with pods:
        rolled_out(admin, namespace)

    # Phase 1: the new secret is only accepted; a ReplicaSet of that config rolls out.
    write_state(admin, namespace, NEW)
    accepting = config_in(admin, namespace, ACCEPTING, OLD)
    assert previous(accepting) == [NEW]
    phase_one = replica_set_of(admin, namespace, accepting)
    # Without ready pods the rollout never finishes, so phase 2 never starts.
    hold_in(admin, namespace, ACCEPTING, OLD)

    # Phase 2 once phase 1's pods are ready: the new secret seals, the old one stays
    # readable. Only phase 1's pods become ready, so phase 2 holds in its turn.
    pods.admit = lambda pod: template_checksum(pod) == accepting.checksum()
    pods.start()
    sealing = config_in(admin, namespace, SEALING, NEW)
    assert previous(sealing) == [OLD]
    phase_two = replica_set_of(admin, namespace, sealing)
    assert phase_two != phase_one
    # Some pods may still seal with the old secret: its retention has not started.
    assert hold_in(admin, namespace, SEALING, NEW)["previousSecrets"] == 1
    assert current_config(admin, namespace) == sealing
    assert sealing.previous == ((OLD, PENDING),)

    pods.admit = None
    stable = config_in(admin, namespace, STABLE, NEW)
    rolled_out(admin, namespace)
    pods.stop()

    # Every pod of phase 1 was ready before the first pod of phase 2 existed.
    first, second = pods_of(pods.readied, phase_one), pods_of(pods.readied, phase_two)
    assert len(first) == len(second) == REPLICAS, pods.readied
    assert max(first) < min(second), pods.readied
    assert previous(stable) == [OLD]
    # Retention starts when no pod seals with the old secret any more: at Stable.
    assert stable.previous[0][1] == stable.since + 600
    assert rotation_status(admin, namespace)["phase"] == STABLE
    condition = ready_condition(admin, namespace, NAME) or {}
    assert (condition.get("status"), condition.get("reason")) == ("True", "Configured")
    rotation = [r for r in reasons(admin, namespace) if r in ROTATION_REASONS]
    assert rotation == list(ROTATION_REASONS)

    retention_expires(admin, namespace, stable)


def retention_expires(admin: Cli, namespace: str, stable: Config) -> None:
    """At its retirement time the old secret is dropped, which rolls the Deployment once more.

    600 s is the CRD's minimum retention (the service's state lifetime), too long to wait
    for. The retirement time is state the operator keeps in the config Secret's annotation,
    so moving it into the past is what the passing of those 600 s would do.
    """
    retire_at = {fingerprint(OLD): int(time.time()) - 1}
    patch = {"metadata": {"annotations": {RETIRED_ANNOTATION: json.dumps(retire_at)}}}
    admin.kubectl(
        "-n", namespace, "patch", "secret", CONFIG_SECRET, "--type=merge", "-p", json.dumps(patch)
    )

    def dropped() -> Config | None:
        config = current_config(admin, namespace)
        return config if config and not config.previous else None

    expired = wait_for(dropped, 30, "the operator to drop the retired secret")
    assert (expired.phase, expired.secret) == (STABLE, NEW)
    replica_set_of(admin, namespace, expired)
    wait_for(lambda: "PreviousSecretRetired" in reasons(admin, namespace), 30, "a Retired Event")


def test_dropping_previous_secrets_seals_at_once_even_mid_rotation(
    admin: Cli, installed: str, start_operator: StartOperator
) -> None:
    """The emergency path: one phase, no waiting for a rollout (no pod is ever ready here)."""
    namespace = installed
    configured_rotating(admin, namespace, start_operator)
    write_state(admin, namespace, NEW)
    accepting = config_in(admin, namespace, ACCEPTING, OLD)
    assert previous(accepting) == [NEW]

    # A leak: yet another value, and nothing previous may be accepted any more.
    write_state(admin, namespace, NEWEST)
    admin.kubectl(
        "-n", namespace, "patch", "oauthprovider", NAME, "--type=merge",
        "-p", json.dumps({"spec": {"dropPreviousSecrets": True}}),
    )  # fmt: skip
    dropped = config_in(admin, namespace, STABLE, NEWEST)
    assert dropped.previous == ()
    replica_set_of(admin, namespace, dropped)
    warnings = wait_for(
        lambda: [
            e
            for e in events_about(admin, namespace, NAME)
            if e["reason"] == "PreviousSecretsDropped"
        ],
        30,
        "a PreviousSecretsDropped Event",
    )
    assert warnings[0]["type"] == "Warning"
    assert rotation_status(admin, namespace)["previousSecrets"] == 0

"""The operator end to end: create, update, two-phase rotation, invalid, conflict, delete."""

from __future__ import annotations

import asyncio
import json

import jsonschema

from openrouter_oauth_operator import handlers
from openrouter_oauth_operator.objects import CHECKSUM_ANNOTATION, PROVIDER_ANNOTATION
from openrouter_oauth_operator.rotation import ROTATION_ANNOTATION
from openrouter_oauth_operator.spec import DEFAULT_SEALING_DEADLINE_SECONDS
from tests.waiting import eventually

from .conftest import (
    DEPLOYMENTS,
    PROVIDERS,
    SCHEMA,
    SECRETS,
    decoded,
    deployment,
    opaque_secret,
    provider,
    rollout,
    running_operator,
)

CONFIG_NAME = "openrouter-oauth-oauth-config"
CONFIG = f"{SECRETS}/{CONFIG_NAME}"
A, B = "a" * 40, "b" * 40


def ready(obj) -> dict | None:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), None)


async def status_is(cluster, name: str, status: str, reason: str) -> dict:
    async def check():
        """the provider's Ready condition"""
        obj = await cluster.get(f"{PROVIDERS}/{name}")
        condition = ready(obj)
        return (
            obj
            if condition and (condition["status"], condition["reason"]) == (status, reason)
            else None
        )

    return await eventually(check)


async def checksum(cluster) -> str | None:
    found = await cluster.get(f"{DEPLOYMENTS}/openrouter-oauth")
    return found["spec"]["template"]["metadata"]["annotations"].get(CHECKSUM_ANNOTATION)


async def test_create_generates_a_secret_and_configures_the_deployment(cluster, operator):
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(PROVIDERS, provider("main"))
    obj = await status_is(cluster, "main", "True", "Configured")
    assert obj["status"]["issuer"] == "https://auth.example.com"
    assert obj["status"]["observedGeneration"] == obj["metadata"].get("generation")
    config = decoded(await cluster.get(CONFIG))
    generated = decoded(await cluster.get(f"{SECRETS}/main-state-secret"))
    assert config == {
        "ISSUER_URL": "https://auth.example.com",
        "SECRET": generated["secret"],
        "PREVIOUS_SECRETS": "",
    }
    assert len(generated["secret"]) >= 48
    for path in (CONFIG, f"{SECRETS}/main-state-secret"):
        owners = (await cluster.get(path))["metadata"]["ownerReferences"]
        assert owners[0]["uid"] == obj["metadata"]["uid"] and owners[0]["kind"] == "OAuthProvider"
    dep = await cluster.get(f"{DEPLOYMENTS}/openrouter-oauth")
    assert dep["metadata"]["annotations"][PROVIDER_ANNOTATION] == "default/main"
    assert await checksum(cluster)
    assert any(e.get("reason") == "Configured" for e in await cluster.events())


async def test_changing_the_issuer_rolls_the_deployment(cluster, operator):
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(PROVIDERS, provider("main"))
    await status_is(cluster, "main", "True", "Configured")
    before = await checksum(cluster)
    await cluster.patch(f"{PROVIDERS}/main", {"spec": {"issuerURL": "https://new.example.com"}})

    async def rolled():
        """a new checksum on the pod template"""
        return (await checksum(cluster)) not in (before, None)

    await eventually(rolled)
    assert decoded(await cluster.get(CONFIG))["ISSUER_URL"] == "https://new.example.com"


async def set_rollout(cluster, generation: int, updated: int, old: int = 0) -> None:
    """Play the Deployment controller: report how the rollout of ``generation`` goes."""
    await cluster.patch(f"{DEPLOYMENTS}/openrouter-oauth", rollout(generation, updated, old))


async def generation(cluster) -> int:
    return (await cluster.get(f"{DEPLOYMENTS}/openrouter-oauth"))["metadata"]["generation"]


async def config_is(cluster, secret: str, previous: str) -> dict:
    async def check():
        """the config Secret holds the expected SECRET and PREVIOUS_SECRETS"""
        config = decoded(await cluster.get(CONFIG))
        return (
            config if (config["SECRET"], config["PREVIOUS_SECRETS"]) == (secret, previous) else None
        )

    return await eventually(check)


async def rotation_is(cluster, phase: str, reason: str) -> dict:
    obj = await status_is(cluster, "main", "True", reason)
    assert obj["status"]["rotation"]["phase"] == phase
    jsonschema.validate(obj, SCHEMA)  # the status the operator writes is what the CRD declares
    return obj


async def stays(cluster, secret: str, previous: str, resyncs: int = 3) -> None:
    """Several resyncs later, the config is unchanged."""
    await asyncio.sleep(resyncs * 1.0 + 0.5)
    config = decoded(await cluster.get(CONFIG))
    assert (config["SECRET"], config["PREVIOUS_SECRETS"]) == (secret, previous)


def reasons(cluster) -> list[str]:
    return [e["reason"] for e in cluster.posted_events()]


async def configured_with(cluster, secret: str) -> None:
    """A provider sealing with ``secret``, its first configuration rolled out."""
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(SECRETS, opaque_secret("mine", secret=secret))
    await cluster.create(PROVIDERS, provider("main", secretRef={"name": "mine"}))
    await status_is(cluster, "main", "True", "Configured")
    await set_rollout(cluster, await generation(cluster), 3)


async def test_rotation_accepts_everywhere_before_sealing(cluster, operator):
    await configured_with(cluster, A)
    await cluster.patch(f"{SECRETS}/mine", opaque_secret("mine", secret=B))

    # Phase 1: B is accepted, A still seals; the Deployment rolls (a new generation).
    await config_is(cluster, A, B)
    obj = await rotation_is(cluster, "Accepting", "RotationAccepting")
    assert "phase 1 of 2" in ready(obj)["message"]
    phase1 = await generation(cluster)

    # While old pods remain, nothing seals with B.
    await set_rollout(cluster, phase1, updated=1, old=2)
    await stays(cluster, A, B)
    obj = await cluster.get(f"{PROVIDERS}/main")
    assert obj["status"]["rotation"]["rollout"] == "1 of 3 replicas updated"

    # Rolled out: every pod accepts B, so now pods seal with it; A stays readable.
    await set_rollout(cluster, phase1, updated=3)
    await config_is(cluster, B, A)
    await rotation_is(cluster, "Sealing", "RotationSealing")
    phase2 = await generation(cluster)
    assert phase2 == phase1 + 1
    await stays(cluster, B, A, resyncs=2)
    assert (await cluster.get(f"{PROVIDERS}/main"))["status"]["rotation"]["phase"] == "Sealing"

    # The second rollout done: the rotation is complete, with no further roll.
    await set_rollout(cluster, phase2, updated=3)
    obj = await rotation_is(cluster, "Stable", "Configured")
    assert obj["status"]["rotation"]["previousSecrets"] == 1
    assert await generation(cluster) == phase2
    assert decoded(await cluster.get(CONFIG))["PREVIOUS_SECRETS"] == A
    rotation = [r for r in reasons(cluster) if r.startswith("Rot")]
    assert rotation == ["RotationAccepting", "RotationSealing", "Rotated"]

    # Never a config sealing with a secret the one before did not accept.
    history = [decoded(v) for v in cluster.kmock.objects["v1/secrets", "default", CONFIG_NAME, :]]
    states = [(c["SECRET"], c["PREVIOUS_SECRETS"]) for c in history]
    assert [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]] == [
        (A, ""),
        (A, B),
        (B, A),
    ]

    await cluster.patch(f"{PROVIDERS}/main", {"spec": {"dropPreviousSecrets": True}})
    await config_is(cluster, B, "")

    async def warned() -> bool:
        """The Warning is posted right after the Secret is written."""
        return any(
            e["reason"] == "PreviousSecretsDropped" and e["type"] == "Warning"
            for e in cluster.posted_events()
        )

    await eventually(warned)


async def test_a_sealing_phase_that_never_ends_warns_once_and_names_the_emergency_drop(
    cluster, operator
):
    await configured_with(cluster, A)
    await cluster.patch(f"{SECRETS}/mine", opaque_secret("mine", secret=B))
    await config_is(cluster, A, B)
    await set_rollout(cluster, await generation(cluster), updated=3)
    await config_is(cluster, B, A)
    await rotation_is(cluster, "Sealing", "RotationSealing")

    # The phase-2 rollout does not finish. Its start, as the operator stored it, is moved
    # back past the default limit, as if that much time had gone by.
    stored = (await cluster.get(CONFIG))["metadata"]["annotations"][ROTATION_ANNOTATION]
    rotation = json.loads(stored)
    rotation["since"] -= DEFAULT_SEALING_DEADLINE_SECONDS + 1
    await cluster.patch(
        CONFIG, {"metadata": {"annotations": {ROTATION_ANNOTATION: json.dumps(rotation)}}}
    )
    obj = await rotation_is(cluster, "Sealing", "SealingDeadlineExceeded")
    assert "spec.dropPreviousSecrets" in ready(obj)["message"]
    await stays(cluster, B, A, resyncs=2)  # a warning, not an action: A stays readable
    warned = [e for e in cluster.posted_events() if e["reason"] == "SealingDeadlineExceeded"]
    assert [e["type"] for e in warned] == ["Warning"]

    # The rollout finishes at last: the rotation completes as it always does.
    await set_rollout(cluster, await generation(cluster), updated=3)
    await rotation_is(cluster, "Stable", "Configured")

    async def rotated() -> bool:
        """the Rotated Event, posted (asynchronously) once the Secret is written"""
        return "Rotated" in reasons(cluster)

    await eventually(rotated)


async def test_emergency_drop_during_a_rotation_seals_with_the_new_secret_at_once(
    cluster, operator
):
    await configured_with(cluster, A)
    await cluster.patch(f"{SECRETS}/mine", opaque_secret("mine", secret=B))
    await config_is(cluster, A, B)
    await set_rollout(cluster, await generation(cluster), updated=1, old=2)
    await cluster.patch(f"{PROVIDERS}/main", {"spec": {"dropPreviousSecrets": True}})
    await config_is(cluster, B, "")
    await rotation_is(cluster, "Stable", "Configured")
    assert "PreviousSecretsDropped" in reasons(cluster)


async def test_a_deployment_gone_mid_rotation_holds_the_phase_until_it_returns(cluster, operator):
    await configured_with(cluster, A)
    await cluster.patch(f"{SECRETS}/mine", opaque_secret("mine", secret=B))
    await config_is(cluster, A, B)
    await cluster.delete(f"{DEPLOYMENTS}/openrouter-oauth")
    await status_is(cluster, "main", "False", "DeploymentNotFound")
    await stays(cluster, A, B, resyncs=2)
    # Recreated: its pods are new and read the phase-1 config, but nothing seals with B
    # until the Deployment reports them rolled out.
    await cluster.create(DEPLOYMENTS, deployment())
    await rotation_is(cluster, "Accepting", "RotationAccepting")
    await stays(cluster, A, B, resyncs=2)
    await set_rollout(cluster, await generation(cluster), updated=3)
    await config_is(cluster, B, A)


async def test_an_operator_restarted_mid_rotation_carries_on(cluster):
    async with running_operator():
        await configured_with(cluster, A)
        await cluster.patch(f"{SECRETS}/mine", opaque_secret("mine", secret=B))
        await config_is(cluster, A, B)
    # While no operator runs, the phase-1 rollout finishes.
    await set_rollout(cluster, await generation(cluster), updated=3)
    async with running_operator():
        await config_is(cluster, B, A)
        await rotation_is(cluster, "Sealing", "RotationSealing")


async def test_missing_secret_is_a_condition_and_recovers_when_created(cluster, operator):
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(PROVIDERS, provider("main", secretRef={"name": "later"}))
    obj = await status_is(cluster, "main", "False", "SecretNotFound")
    assert "later" in ready(obj)["message"]
    assert await cluster.get(CONFIG) is None
    assert await checksum(cluster) is None
    assert any(
        e.get("reason") == "SecretNotFound" and e.get("type") == "Warning"
        for e in await cluster.events()
    )
    await cluster.create(SECRETS, opaque_secret("later", secret=A))
    await status_is(cluster, "main", "True", "Configured")
    assert decoded(await cluster.get(CONFIG))["SECRET"] == A


async def test_missing_deployment_changes_nothing(cluster, operator):
    await cluster.create(PROVIDERS, provider("main", deploymentName="absent"))
    await status_is(cluster, "main", "False", "DeploymentNotFound")
    assert await cluster.get(f"{SECRETS}/absent-oauth-config") is None


async def test_a_second_provider_cannot_claim_the_same_deployment(cluster, operator):
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(PROVIDERS, provider("first"))
    await status_is(cluster, "first", "True", "Configured")
    config_before = await cluster.get(CONFIG)
    await cluster.create(PROVIDERS, provider("second", issuerURL="https://other.example.com"))
    obj = await status_is(cluster, "second", "False", "DeploymentClaimed")
    assert "default/first" in ready(obj)["message"]
    assert (await cluster.get(CONFIG))["data"] == config_before["data"]


async def test_delete_cleans_up_what_the_operator_created(cluster, operator):
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(PROVIDERS, provider("main"))
    await status_is(cluster, "main", "True", "Configured")
    await cluster.delete(f"{PROVIDERS}/main")

    async def cleaned():
        """provider, config and generated secret gone; the Deployment released"""
        gone = [
            await cluster.get(p)
            for p in (f"{PROVIDERS}/main", CONFIG, f"{SECRETS}/main-state-secret")
        ]
        dep = await cluster.get(f"{DEPLOYMENTS}/openrouter-oauth")
        return gone == [None, None, None] and PROVIDER_ANNOTATION not in dep["metadata"].get(
            "annotations", {}
        )

    await eventually(cleaned)


async def test_a_rotation_moves_on_without_waiting_for_the_resync(cluster, monkeypatch):
    monkeypatch.setattr(handlers, "ROTATION_POLL_SECONDS", 0.5)
    async with running_operator(resync_seconds=3600):
        await configured_with(cluster, A)
        await cluster.patch(f"{SECRETS}/mine", opaque_secret("mine", secret=B))
        # With no resync in sight, a spec change makes the operator read the new secret.
        await cluster.patch(f"{PROVIDERS}/main", {"spec": {"previousSecretRetentionSeconds": 900}})
        await config_is(cluster, A, B)
        await set_rollout(cluster, await generation(cluster), updated=3)
        await config_is(cluster, B, A)
        await set_rollout(cluster, await generation(cluster), updated=3)
        await rotation_is(cluster, "Stable", "Configured")

"""The operator end to end: create, update, rotate, invalid, conflict, delete."""

from __future__ import annotations

from openrouter_oauth_operator.reconcile import CHECKSUM_ANNOTATION, PROVIDER_ANNOTATION

from .conftest import (
    DEPLOYMENTS,
    PROVIDERS,
    SECRETS,
    decoded,
    deployment,
    eventually,
    opaque_secret,
    provider,
)

CONFIG = f"{SECRETS}/openrouter-oauth-oauth-config"
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


async def test_rotating_the_secret_keeps_the_previous_one(cluster, operator):
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(SECRETS, opaque_secret("mine", secret=A))
    await cluster.create(PROVIDERS, provider("main", secretRef={"name": "mine"}))
    await status_is(cluster, "main", "True", "Configured")
    assert decoded(await cluster.get(CONFIG))["SECRET"] == A
    before = await checksum(cluster)
    await cluster.patch(f"{SECRETS}/mine", opaque_secret("mine", secret=B))

    async def rotated():
        """the new secret in effect, the old one still accepted"""
        config = decoded(await cluster.get(CONFIG))
        return config["SECRET"] == B and config["PREVIOUS_SECRETS"] == A

    await eventually(rotated)
    assert await checksum(cluster) != before

    await cluster.patch(f"{PROVIDERS}/main", {"spec": {"dropPreviousSecrets": True}})

    async def dropped():
        """an emergency rotation empties PREVIOUS_SECRETS"""
        return decoded(await cluster.get(CONFIG))["PREVIOUS_SECRETS"] == ""

    await eventually(dropped)


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

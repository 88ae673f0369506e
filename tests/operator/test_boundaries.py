"""What creating an OAuthProvider must not let anyone do through the operator (issue 16, item 2).

Names become API paths; a Secret named in ``spec.secretRef`` is copied into the config
Secret. The emulator does not apply the CRD's schema, so a provider here can carry what
the API server would refuse: the operator's own checks are what is tested.
"""

from __future__ import annotations

import pytest

from openrouter_oauth_operator.objects import STATE_SECRET_LABEL
from tests.waiting import eventually

from .conftest import (
    DEPLOYMENTS,
    NS,
    PROVIDERS,
    SECRETS,
    decoded,
    deployment,
    opaque_secret,
    provider,
)
from .test_operator import CONFIG, A, ready, status_is

ESCAPES: dict[str, object] = {
    "secretRef": {"name": "../../kube-system/secrets/x"},
    "deploymentName": "../../kube-system/deployments/x",
}


def outside_the_namespace(cluster, since: int) -> list[str]:
    """The paths the emulator was asked for, from request ``since`` on, that leave ``NS``.

    Another namespace, a dot segment, or an encoded slash: what a name must never become.
    """
    paths = [request.url.path for request in list(cluster.kmock)[since:]]
    return [
        path
        for path in paths
        if ("/namespaces/" in path and not path.split("/namespaces/", 1)[1].startswith(f"{NS}/"))
        or "/../" in path
        or "%2F" in path
    ]


@pytest.mark.parametrize("field", ESCAPES)
async def test_a_name_climbing_out_of_its_path_is_refused_and_never_requested(
    cluster, operator, field
):
    body = provider("main")  # valid, then changed as an API server would not allow
    body["spec"][field] = ESCAPES[field]
    kube_system = opaque_secret("x", secret=A)
    kube_system["metadata"]["namespace"] = "kube-system"
    await cluster.create("/api/v1/namespaces/kube-system/secrets", kube_system)
    await cluster.create(DEPLOYMENTS, deployment())
    since = len(list(cluster.kmock))
    await cluster.create(PROVIDERS, body)
    obj = await status_is(cluster, "main", "False", "InvalidName")
    assert "DNS-1123" in ready(obj)["message"]
    assert await cluster.get(CONFIG) is None
    assert outside_the_namespace(cluster, since) == []


async def test_an_unmarked_secret_is_not_copied_until_its_owner_labels_it(cluster, operator):
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(SECRETS, opaque_secret("db-password", marked=False, password=A))
    await cluster.create(
        PROVIDERS, provider("main", secretRef={"name": "db-password", "key": "password"})
    )
    obj = await status_is(cluster, "main", "False", "SecretNotFound")
    # The same answer as for a Secret that does not exist: nothing to learn from it.
    assert ready(obj)["message"] == (
        f"Secret db-password does not exist or is not labelled {STATE_SECRET_LABEL}=true "
        f"(kubectl label secret db-password {STATE_SECRET_LABEL}=true)"
    )
    assert await cluster.get(CONFIG) is None
    await cluster.patch(
        f"{SECRETS}/db-password", {"metadata": {"labels": {STATE_SECRET_LABEL: "true"}}}
    )
    await status_is(cluster, "main", "True", "Configured")
    assert decoded(await cluster.get(CONFIG))["SECRET"] == A


async def test_a_secret_named_like_the_generated_one_is_not_read(cluster, operator):
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(SECRETS, opaque_secret("main-state-secret", secret=A))
    await cluster.create(PROVIDERS, provider("main"))
    await status_is(cluster, "main", "False", "SecretNotOwned")
    assert await cluster.get(CONFIG) is None


async def test_a_config_secret_the_provider_does_not_own_is_not_overwritten(cluster, operator):
    await cluster.create(DEPLOYMENTS, deployment())
    await cluster.create(SECRETS, opaque_secret("openrouter-oauth-oauth-config", other=A))
    await cluster.create(PROVIDERS, provider("main"))
    await status_is(cluster, "main", "False", "ConfigSecretNotOwned")
    assert decoded(await cluster.get(CONFIG)) == {"other": A}
    assert await cluster.get(f"{SECRETS}/main-state-secret") is None  # nothing was written


async def test_a_claim_annotation_naming_no_provider_claims_nothing(cluster, operator):
    claimed = deployment()
    claimed["metadata"]["annotations"]["openrouter-oauth.io/provider"] = "../../x"
    await cluster.create(DEPLOYMENTS, claimed)
    since = len(list(cluster.kmock))
    await cluster.create(PROVIDERS, provider("main"))
    await status_is(cluster, "main", "True", "Configured")

    async def claimed_by_main() -> bool:
        found = await cluster.get(f"{DEPLOYMENTS}/openrouter-oauth")
        return found["metadata"]["annotations"]["openrouter-oauth.io/provider"] == "default/main"

    await eventually(claimed_by_main)
    assert outside_the_namespace(cluster, since) == []

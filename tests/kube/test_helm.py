"""The chart as a user installs, upgrades and uninstalls it, against a real API server."""

from __future__ import annotations

from typing import Any

import yaml

from tests.chart.render import REPOSITORY
from tests.kube.conftest import CHART, DEPLOYMENT, RELEASE, leftovers, provider
from tests.kube.controlplane import Cli, wait_for

CRD = "oauthproviders.openrouter-oauth.io"
# Kinds the API server and controllers make on their own in every namespace.
# The bundled etcd's volume claim (StatefulSet volumeClaimTemplates "data", pod 0).
ETCD_CLAIM = f"persistentvolumeclaim/data-{DEPLOYMENT}-etcd-0"
AMBIENT = {"serviceaccount/default", "configmap/kube-root-ca.crt"}


def rendered(admin: Cli, namespace: str) -> list[dict[str, Any]]:
    manifest = admin.helm("get", "manifest", RELEASE, "--namespace", namespace).stdout
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def replica_sets(admin: Cli, namespace: str) -> set[str]:
    """The service Deployment's ReplicaSets (the operator's Deployment has its own)."""
    return {
        rs["metadata"]["name"]
        for rs in admin.items(namespace, "replicasets")
        if owned_by(rs, "Deployment") == DEPLOYMENT
    }


def owned_by(obj: dict[str, Any], kind: str) -> str | None:
    refs = obj["metadata"].get("ownerReferences") or []
    return next((r["name"] for r in refs if r["kind"] == kind), None)


def test_install_creates_every_template(admin: Cli, installed: str) -> None:
    """Every template passed the API server's validation and defaulting and exists."""
    namespace = installed
    for doc in rendered(admin, namespace):
        kind, name = doc["kind"], doc["metadata"]["name"]
        assert admin.get(namespace, kind, name) is not None, f"{kind}/{name} missing"
    assert admin.get("", "crd", CRD) is not None
    # The controller manager acts on them: the Deployment gets its ReplicaSet, the
    # StatefulSet its volume claim.
    wait_for(lambda: replica_sets(admin, namespace), 30, "the service's first ReplicaSet")
    deployment = admin.get(namespace, "deployment", DEPLOYMENT)
    assert deployment is not None
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    wait_for(lambda: admin.items(namespace, "pvc"), 30, "the bundled etcd's volume claim")


def test_upgrade_with_a_changed_value_rolls_the_deployment(admin: Cli, installed: str) -> None:
    namespace = installed
    first = wait_for(lambda: replica_sets(admin, namespace), 30, "the first ReplicaSet")
    admin.helm(
        "upgrade", RELEASE, str(CHART), "--namespace", namespace, "--reset-then-reuse-values",
        "--set", "image.tag=0.2.0",
    )  # fmt: skip
    rolled = wait_for(
        lambda: replica_sets(admin, namespace) - first, 30, "a new ReplicaSet after the upgrade"
    )
    (new,) = rolled
    template = admin.get(namespace, "replicaset", new)
    assert template is not None
    images = [c["image"] for c in template["spec"]["template"]["spec"]["containers"]]
    assert images == [f"{REPOSITORY}:0.2.0"]
    assert owned_by(template, "Deployment") == DEPLOYMENT


def test_uninstall_leaves_only_what_the_readme_says(admin: Cli, installed: str) -> None:
    """The uninstall steps of docs/deploy.md, in order: provider, release, then the kept volume."""
    namespace = installed
    admin.apply(namespace, provider("openrouter-oauth"))
    wait_for(lambda: replica_sets(admin, namespace), 30, "the first ReplicaSet")
    wait_for(lambda: admin.items(namespace, "pvc"), 30, "the bundled etcd's volume claim")
    admin.kubectl("-n", namespace, "delete", "oauthprovider", "--all", "--wait=false")
    admin.helm("uninstall", RELEASE, "--namespace", namespace)

    # The garbage collector removes what the Deployment and StatefulSet owned; what remains
    # is the volume claim (kept so data survives, as docs/deploy.md says) and the CRD.
    def only_the_claim() -> set[str] | None:
        left = leftovers(admin, namespace)
        return (
            left if left == {"persistentvolumeclaim/data-oauth-openrouter-oauth-etcd-0"} else None
        )

    wait_for(only_the_claim, 60, "only the etcd volume claim to remain")
    assert admin.get("", "crd", CRD) is not None, "helm must leave the CRD in place"
    # The document's command for the volume matches it by label.
    admin.kubectl("-n", namespace, "delete", "pvc", f"-l=app.kubernetes.io/instance={RELEASE}")
    wait_for(lambda: not leftovers(admin, namespace), 30, "an empty namespace")

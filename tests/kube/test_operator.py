"""The operator as a process, logged in as the chart's own ServiceAccount, on a real API server.

Secret rotation, which needs rollouts to finish, is in test_rotation.py.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Callable
from pathlib import Path

import kopf
import pytest

from openrouter_oauth_operator.kube import _ssl_context
from openrouter_oauth_operator.objects import (
    CHECKSUM_ANNOTATION,
    PROVIDER_ANNOTATION,
    STATE_SECRET_LABEL,
)
from openrouter_oauth_operator.spec import config_secret_name, generated_secret_name
from tests.certs import CertificateAuthority
from tests.kube.conftest import (
    DEPLOYMENT,
    OPERATOR_ACCOUNT,
    Operator,
    events_about,
    operated,
    provider,
    service_account_user,
    wait_configured,
    wait_ready,
)
from tests.kube.controlplane import Cli, ControlPlane, b64, wait_for

ISSUER = "https://auth.example.com"
CONFIG_SECRET = config_secret_name(DEPLOYMENT)
StartOperator = Callable[..., Operator]


def pod_template_checksum(replica_set: dict) -> str | None:
    annotations = replica_set["spec"]["template"]["metadata"].get("annotations") or {}
    return annotations.get(CHECKSUM_ANNOTATION)


def test_apply_configures_the_service_and_rolls_it(
    admin: Cli, installed: str, start_operator: StartOperator
) -> None:
    namespace = installed
    operated(admin, start_operator, namespace, "openrouter-oauth", ISSUER)
    first = wait_for(
        lambda: configured_replica_sets(admin, namespace),
        30,
        "the controller manager to make a ReplicaSet of the annotated pod template",
    )
    condition = wait_ready(admin, namespace, "openrouter-oauth")
    assert condition["message"] == f"Deployment {DEPLOYMENT} serves issuer {ISSUER}"
    header, row = admin.kubectl("-n", namespace, "get", "oap").stdout.splitlines()
    assert header.split() == ["NAME", "ISSUER", "READY", "AGE"]
    assert row.split()[:3] == ["openrouter-oauth", ISSUER, "True"]

    # A changed spec rolls the service again: one more ReplicaSet, one more Event.
    moved = "https://login.example.com"
    admin.apply(namespace, provider("openrouter-oauth", issuerURL=moved))
    wait_configured(admin, namespace, "openrouter-oauth", moved)
    wait_for(lambda: configured_replica_sets(admin, namespace) - first, 30, "a new ReplicaSet")

    # Each Event is an object of its own, named by the server from kopf's generateName
    # (kmock keeps only the first Event of a name; a real API server keeps them all).
    def one_event_each() -> list[dict] | None:
        events = configured_events(admin, namespace, "openrouter-oauth")
        return events if len(events) >= 2 else None

    events = wait_for(one_event_each, 30, "an Event for each configuration")
    names = {e["metadata"]["name"] for e in events}
    assert len(names) == len(events)
    assert all(re.fullmatch(r"kopf-event-[a-z0-9]{5}", name) for name in names), names
    described = admin.kubectl("-n", namespace, "describe", "oauthprovider", "openrouter-oauth")
    listed = described.stdout.split("Events:", 1)[1]
    for issuer in (ISSUER, moved):
        assert any(
            "Configured" in line and line.endswith(f"serves issuer {issuer}")
            for line in listed.splitlines()
        ), listed


def configured_replica_sets(admin: Cli, namespace: str) -> set[str]:
    """The service's ReplicaSets whose pod template carries the operator's config checksum."""
    return {
        rs["metadata"]["name"]
        for rs in admin.items(namespace, "replicasets")
        if pod_template_checksum(rs)
    }


def configured_events(admin: Cli, namespace: str, name: str) -> list[dict]:
    return [e for e in events_about(admin, namespace, name) if e["reason"] == "Configured"]


def test_missing_secret_is_reported_then_recovered(
    admin: Cli, installed: str, start_operator: StartOperator
) -> None:
    namespace = installed
    start_operator(namespace, service_account_user(admin, namespace, OPERATOR_ACCOUNT))
    admin.apply(namespace, provider("byo", issuerURL=ISSUER, secretRef={"name": "state"}))
    condition = wait_ready(admin, namespace, "byo", status="False")
    assert condition["reason"] == "SecretNotFound"
    warnings = wait_for(
        lambda: [e for e in events_about(admin, namespace, "byo") if e["type"] == "Warning"],
        30,
        "a Warning Event",
    )
    assert warnings[0]["reason"] == "SecretNotFound"
    assert admin.get(namespace, "secret", CONFIG_SECRET) is None

    # Created later and labelled for the operator, the Secret is picked up by the resync
    # timer without touching the provider.
    admin.kubectl(
        "-n", namespace, "create", "secret", "generic", "state", "--from-literal=secret=" + "k" * 40
    )
    admin.kubectl("-n", namespace, "label", "secret", "state", f"{STATE_SECRET_LABEL}=true")
    wait_configured(admin, namespace, "byo", ISSUER)


def owner_uids(obj: dict | None) -> set[str]:
    return {ref["uid"] for ref in ((obj or {}).get("metadata", {}).get("ownerReferences") or [])}


def test_delete_runs_the_finalizer_cleanup(
    admin: Cli, installed: str, start_operator: StartOperator
) -> None:
    namespace = installed
    operated(admin, start_operator, namespace, "gen", ISSUER)
    found = admin.get(namespace, "oauthprovider", "gen")
    assert found is not None
    assert "openrouter-oauth.io/cleanup" in found["metadata"]["finalizers"]

    admin.kubectl("-n", namespace, "delete", "oauthprovider", "gen", "--timeout=60s")
    assert admin.get(namespace, "secret", CONFIG_SECRET) is None
    assert admin.get(namespace, "secret", generated_secret_name("gen")) is None
    deployment = admin.get(namespace, "deployment", DEPLOYMENT)
    assert deployment is not None
    assert PROVIDER_ANNOTATION not in (deployment["metadata"].get("annotations") or {})


def test_owned_secrets_are_garbage_collected_without_the_operator(
    admin: Cli, installed: str, start_operator: StartOperator
) -> None:
    """The owner references the operator writes are valid: the garbage collector acts on them."""
    namespace = installed
    operator = operated(admin, start_operator, namespace, "gen", ISSUER)
    owner = admin.get(namespace, "oauthprovider", "gen")
    assert owner is not None
    uid = owner["metadata"]["uid"]
    secrets = (CONFIG_SECRET, generated_secret_name("gen"))
    for name in secrets:
        assert owner_uids(admin.get(namespace, "secret", name)) == {uid}

    # With the operator gone and its finalizer removed, only the garbage collector is left.
    operator.stop()
    admin.kubectl(
        "-n", namespace, "patch", "oauthprovider", "gen", "--type=merge",
        "-p", json.dumps({"metadata": {"finalizers": None}}),
    )  # fmt: skip
    admin.kubectl("-n", namespace, "delete", "oauthprovider", "gen")
    wait_for(
        lambda: all(admin.get(namespace, "secret", name) is None for name in secrets),
        60,
        "the garbage collector to delete the provider's Secrets",
    )


@pytest.mark.parametrize("embed", [False, True], ids=["file-paths", "embedded-data"])
def test_kubeconfig_with_client_certificates(
    admin: Cli,
    control_plane: ControlPlane,
    installed: str,
    start_operator: StartOperator,
    embed: bool,
) -> None:
    """Both kubeconfig forms: files (as in a pod) and base64 data (as kind and clouds write).

    A certificate's common name cannot hold a ServiceAccount's user name (64 characters at
    most), so its user is bound to the chart's own Role, which is what is tested.
    """
    namespace = installed
    user_name = "operator-by-certificate"
    admin.kubectl(
        "-n", namespace, "create", "rolebinding", user_name,
        f"--role={OPERATOR_ACCOUNT}", f"--user={user_name}",
    )  # fmt: skip
    issued = control_plane.authority.issue(user_name, client=True)
    if embed:
        user = {
            "client-certificate-data": b64(issued.cert.read_bytes()),
            "client-key-data": b64(issued.key.read_bytes()),
        }
    else:
        user = {"client-certificate": str(issued.cert), "client-key": str(issued.key)}
    operator = start_operator(namespace, user, embed=embed)
    admin.apply(namespace, provider("certs", issuerURL=ISSUER))
    try:
        wait_configured(admin, namespace, "certs", ISSUER)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\noperator log:\n{operator.log()[-3000:]}") from None


@pytest.mark.parametrize("form", ["base64-text", "base64-bytes", "pem-text", "pem-bytes"])
def test_operator_client_takes_every_form_kopf_accepts(tmp_path: Path, form: str) -> None:
    """kopf's own client takes *-data as base64 or PEM, str or bytes; so does ours."""
    authority = CertificateAuthority(tmp_path)
    client = authority.issue("someone", client=True)

    def shaped(pem: bytes) -> str | bytes:
        data = pem if form.startswith("pem") else b64(pem).encode()
        return data if form.endswith("bytes") else data.decode()

    info = kopf.ConnectionInfo(
        server="https://127.0.0.1:1",
        ca_data=shaped(authority.ca.read_bytes()),
        certificate_data=shaped(client.cert.read_bytes()),
        private_key_data=shaped(client.key.read_bytes()),
    )
    context = _ssl_context(info)
    assert isinstance(context, ssl.SSLContext)
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test CA"),),)]

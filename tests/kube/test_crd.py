"""The OAuthProvider CRD's validation, as the API server evaluates it (CEL rules included)."""

from __future__ import annotations

import json

import yaml

from tests.kube.conftest import CHART, provider
from tests.kube.controlplane import Cli

CEL_MESSAGE = "issuerURL must use https unless its host is loopback"


def refused(admin: Cli, namespace: str, **spec: object) -> str:
    result = admin.kubectl(
        "-n", namespace, "apply", "-f", "-",
        stdin=yaml.safe_dump(provider("bad", **spec)), check=False,
    )  # fmt: skip
    assert result.returncode != 0, f"accepted: {spec}"
    return result.stderr


def test_crd_from_the_chart_is_accepted_by_the_api_server(admin: Cli) -> None:
    # As docs/deploy.md applies it before an upgrade. The CEL rule is compiled and cost-checked
    # here; a rule too expensive or not compiling fails this.
    admin.kubectl("apply", "-f", str(CHART / "crds"))
    admin.kubectl("wait", "--for=condition=Established", "crd/oauthproviders.openrouter-oauth.io")


def test_http_issuer_on_a_public_host_is_refused_with_the_rules_message(
    admin: Cli, installed: str
) -> None:
    error = refused(admin, installed, issuerURL="http://auth.example.com")
    assert CEL_MESSAGE in error
    assert "spec.issuerURL" in error


def test_schema_refuses_what_the_operator_could_not_use(admin: Cli, installed: str) -> None:
    assert "spec.issuerURL" in refused(admin, installed, issuerURL="https://auth.example.com/")
    assert "previousSecretRetentionSeconds" in refused(
        admin, installed, previousSecretRetentionSeconds=60
    )
    # An http look-alike of a loopback host is still a public host.
    assert CEL_MESSAGE in refused(admin, installed, issuerURL="http://localhost.example.com")


def test_names_that_would_leave_their_api_path_are_refused(admin: Cli, installed: str) -> None:
    """Names the operator puts in API paths: DNS-1123 only, so no '/', '.' or '..' segment."""
    for secret in ("../../kube-system/secrets/x", "..", "a/b", "Upper"):
        assert "spec.secretRef.name" in refused(admin, installed, secretRef={"name": secret})
    for deployment in ("../../kube-system/deployments/x", ".", "a" * 241):
        assert "spec.deploymentName" in refused(admin, installed, deploymentName=deployment)
    assert "spec.secretRef.key" in refused(
        admin, installed, secretRef={"name": "state", "key": "../key"}
    )


def test_valid_providers_are_accepted_defaulted_and_printed(admin: Cli, installed: str) -> None:
    namespace = installed
    admin.apply(
        namespace,
        provider("public", issuerURL="https://auth.example.com/mcp"),
        provider("laptop", issuerURL="http://127.0.0.1:8000", secretRef={"name": "mine"}),
    )
    laptop = admin.get(namespace, "oauthprovider", "laptop")
    assert laptop is not None
    # Defaults from the schema are applied by the API server.
    assert laptop["spec"]["secretRef"] == {"name": "mine", "key": "secret"}
    assert laptop["spec"]["previousSecretRetentionSeconds"] == 2592000
    assert laptop["spec"]["dropPreviousSecrets"] is False

    table = admin.kubectl("-n", namespace, "get", "oap", "-o", "wide").stdout.splitlines()
    # REASON, ROTATION and TOKENS are priority-1 columns: only -o wide shows them.
    assert table[0].split() == [
        "NAME", "ISSUER", "READY", "REASON", "ROTATION", "TOKENS", "AGE",
    ]  # fmt: skip
    # The status subresource is written the way the operator writes it, then printed.
    status = {
        "status": {
            "issuer": "https://auth.example.com/mcp",
            "conditions": [{"type": "Ready", "status": "True", "reason": "RotationAccepting"}],
            "rotation": {"phase": "Accepting", "previousSecrets": 1, "rollout": "0 of 1"},
        }
    }
    admin.kubectl(
        "-n", namespace, "patch", "oauthprovider", "public", "--subresource=status",
        "--type=merge", "-p", json.dumps(status),
    )  # fmt: skip
    rows = admin.kubectl("-n", namespace, "get", "oauthprovider", "-o", "wide").stdout
    public = next(line.split() for line in rows.splitlines() if line.startswith("public"))
    assert public[:6] == [
        "public", "https://auth.example.com/mcp", "True", "RotationAccepting", "Accepting",
        "openrouterKey",
    ]  # fmt: skip

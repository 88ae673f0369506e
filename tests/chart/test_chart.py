"""The helm chart: lint, render several value sets, validate every manifest, check what matters."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from openrouter_oauth.settings import PROJECT_URL
from openrouter_oauth_operator.spec import config_secret_name
from tests.chart.render import (
    CHART,
    IMAGE,
    VALUE_SETS,
    by_kind,
    containers,
    helm,
    render,
    rendered,
)
from tests.harness import REPO

KUBERNETES_VERSION = "1.33.0"
# Custom resources of other projects, checked for their shape by the tests that render them.
FOREIGN_KINDS = {"ServiceMonitor", "HTTPRoute"}


@pytest.mark.parametrize(
    "name", ["defaults", "provider", "hardened", "external-etcd-egress", "gateway"]
)
def test_lint_strict(tmp_path, name):
    result = helm("lint", "--strict", str(CHART), *IMAGE, *VALUE_SETS[name], tmp=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_manifest_is_valid_kubernetes(name):
    docs = rendered(name)
    for doc in docs:
        if doc["kind"] == "OAuthProvider":
            jsonschema.validate(doc, crd_schema())
            continue
        if doc["kind"] in FOREIGN_KINDS:
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        if doc["kind"] != "CustomResourceDefinition":
            for label in (
                "app.kubernetes.io/name",
                "app.kubernetes.io/instance",
                "app.kubernetes.io/managed-by",
                "app.kubernetes.io/version",
            ):
                assert label in labels, f"{doc['kind']} {doc['metadata']['name']} lacks {label}"


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load((CHART / "crds" / "oauthproviders.yaml").read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "replicaCount=-1"], "replicaCount"),
        (["--set", "etcd.bundled=false"], "externalEndpoints"),
        (
            [
                "--set",
                "provider.create=true",
                "--set",
                "provider.issuerURL=http://auth.example.com",
            ],
            "issuerURL",
        ),
        (["--set", "ingress.enabled=true"], "host"),
        (["--set", "unknownKey=1"], "unknownKey"),
        (["--set", "config.stateTTLSeconds=5000"], "stateTTLSeconds"),
    ],
)
def test_values_schema_refuses_bad_values(tmp_path, values, message):
    result = helm("template", "rel", str(CHART), *IMAGE, *values, tmp=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr


def test_values_yaml_matches_its_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_workloads_are_locked_down(name):
    for doc in rendered(name):
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"].get("runAsUser") != 0
        for container in containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert context["runAsNonRoot"] is True
            assert "livenessProbe" in container
            assert container["resources"]["requests"] and container["resources"]["limits"]


def test_service_wiring():
    docs = rendered("defaults")
    server = by_kind(docs, "Deployment", "rel-openrouter-oauth")
    (container,) = containers(server)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ETCD_ENDPOINTS"] == "http://rel-openrouter-oauth-etcd:2379"
    assert env["ETCD_PREFIX"] == "/openrouter-oauth/"
    assert env["TRUSTED_PROXIES"] == "1"
    # The Secret the operator writes for this Deployment is the one the pods read.
    assert env_secret_names(server) == {config_secret_name("rel-openrouter-oauth")}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert server["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    service = by_kind(docs, "Service", "rel-openrouter-oauth")
    assert service["spec"]["selector"] == server["spec"]["selector"]["matchLabels"]
    operator = by_kind(docs, "Deployment", "rel-openrouter-oauth-operator")
    operator_env = {e["name"]: e["value"] for e in containers(operator)[0]["env"]}
    assert operator_env["DEFAULT_DEPLOYMENT"] == "rel-openrouter-oauth"
    assert operator_env["WATCH_NAMESPACE"] == "oauth"
    assert by_kind(docs, "StatefulSet")["spec"]["volumeClaimTemplates"]
    assert by_kind(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def env_secret_names(deployment: dict[str, Any]) -> set[str]:
    """The Secrets the service's config comes from: ISSUER_URL's and the mounted files'."""
    (container,) = containers(deployment)
    names = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in container["env"]
        if e["name"] == "ISSUER_URL"
    }
    (config,) = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"
    ]
    names |= {source["secret"]["name"] for source in config["projected"]["sources"]}
    return names


def test_external_etcd_and_existing_secret(tmp_path):
    docs = render(tmp_path, *VALUE_SETS["external-etcd"], *VALUE_SETS["no-operator"])
    assert not [d for d in docs if d["kind"] == "StatefulSet"]
    assert not [d for d in docs if d["metadata"]["name"].endswith("-operator")]
    (container,) = containers(by_kind(docs, "Deployment"))
    env = {e["name"]: e for e in container["env"]}
    assert env["ETCD_ENDPOINTS"]["value"] == "https://10.0.0.1:2379,https://10.0.0.2:2379"
    assert env["ETCD_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "etcd-auth",
        "key": "password",
    }
    assert env["ETCD_CA_FILE"]["value"] == "/etc/etcd-tls/ca.crt"
    assert env_secret_names(by_kind(docs, "Deployment")) == {"mine"}


def test_ingress_and_hpa(tmp_path):
    docs = render(tmp_path, *VALUE_SETS["ingress"], *VALUE_SETS["hpa"])
    ingress = by_kind(docs, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "auth.example.com"
    assert ingress["spec"]["tls"][0]["secretName"] == "auth-tls"
    hpa = by_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rel-openrouter-oauth"
    assert "replicas" not in by_kind(docs, "Deployment", "rel-openrouter-oauth")["spec"]


def test_operator_rbac_is_least_privilege():
    docs = rendered("defaults")
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    rules = {
        (tuple(r["apiGroups"]), tuple(r["resources"])): sorted(r["verbs"])
        for r in by_kind(docs, "Role")["rules"]
    }
    assert rules == {
        (("openrouter-oauth.io",), ("oauthproviders",)): ["get", "list", "patch", "watch"],
        (("openrouter-oauth.io",), ("oauthproviders/status",)): ["get", "patch"],
        (("",), ("secrets",)): ["create", "delete", "get", "patch"],
        (("apps",), ("deployments",)): ["get", "patch"],
        (("", "events.k8s.io"), ("events",)): ["create"],
    }
    binding = by_kind(docs, "RoleBinding")
    assert binding["subjects"][0]["name"] == "rel-openrouter-oauth-operator"


def test_operator_uses_only_the_verbs_the_role_grants():
    """Every call in the operator's client is covered by the Role (read from the source)."""
    source = (REPO / "operator/openrouter_oauth_operator/handlers.py").read_text()
    calls = set(re.findall(r"kube\.(get|create|merge_patch|delete)\(", source))
    assert calls <= {"get", "create", "merge_patch", "delete"}


def test_crd_is_structural_and_shows_issuer_ready_age():
    crd = by_kind(rendered("defaults"), "CustomResourceDefinition")
    kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[:2] == ["Issuer", "Ready"] and "Age" in columns
    assert crd["spec"]["scope"] == "Namespaced"


def notes(tmp: Path, *values: str) -> str:
    """NOTES.txt as installed (helm template skips it, so render a copy as a template)."""
    copy = tmp / "chart"
    shutil.copytree(CHART, copy)
    text = (copy / "templates" / "NOTES.txt").read_text()
    (copy / "templates" / "_notes.tpl").write_text(
        '{{- define "test.notes" -}}' + text + "{{- end }}"
    )
    (copy / "templates" / "notes.yaml").write_text('notes: {{ include "test.notes" . | quote }}\n')
    result = helm(
        "template",
        "rel",
        str(copy),
        "--namespace",
        "oauth",
        "--show-only",
        "templates/notes.yaml",
        *IMAGE,
        *values,
        tmp=tmp,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["notes"]


def test_notes_name_the_issuer_and_the_next_step(tmp_path):
    text = notes(
        tmp_path, "--set", "ingress.enabled=true", "--set", "ingress.host=auth.example.com"
    )
    assert "Issuer URL: https://auth.example.com" in text
    assert "kind: OAuthProvider" in text and "deploymentName: rel-openrouter-oauth" in text
    created = notes(
        tmp_path / "p",
        "--set",
        "provider.create=true",
        "--set",
        "provider.issuerURL=https://auth.example.com",
    )
    assert "kubectl -n oauth get oauthprovider openrouter-oauth" in created


def test_an_install_without_an_image_says_how_to_make_one(tmp_path):
    """No image is published: the chart names none rather than one that does not exist."""
    assert not yaml.safe_load((CHART / "values.yaml").read_text())["image"]["repository"]
    result = helm("template", "rel", str(CHART), tmp=tmp_path)
    assert result.returncode != 0
    assert "image.repository is required" in result.stderr
    assert "build it from the Containerfile, push it" in result.stderr


def test_notes_apply_the_provider_at_the_ingress_host(tmp_path):
    text = notes(
        tmp_path, "--set", "ingress.enabled=true", "--set", "ingress.host=login.example.org"
    )
    assert "issuerURL: https://login.example.org\n" in text
    assert "auth.example.com" not in text
    assert "issuerURL: https://auth.example.com" in notes(tmp_path / "bare")


def test_the_docs_default_is_the_charts_home():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["home"] == PROJECT_URL

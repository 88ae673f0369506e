"""Run the real helm binary on the chart; each value set renders once per session."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tests.harness import REPO

CHART = REPO / "helm" / "openrouter-oauth"
NAMESPACE = "oauth"
FULLNAME = "rel-openrouter-oauth"
DIGEST = "sha256:" + "0123456789abcdef" * 4
# No image is published, so every install names one (the chart requires it).
REPOSITORY = "registry.example.com/openrouter-oauth-provider"
IMAGE = ("--set", f"image.repository={REPOSITORY}")

VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    "external-etcd": [
        "--set",
        "etcd.bundled=false",
        "--set",
        "etcd.externalEndpoints=https://10.0.0.1:2379\\,https://10.0.0.2:2379",
        "--set",
        "etcd.authSecret=etcd-auth",
        "--set",
        "etcd.tlsSecret=etcd-tls",
    ],
    "ingress": [
        "--set",
        "ingress.enabled=true",
        "--set",
        "ingress.host=auth.example.com",
        "--set",
        "ingress.className=nginx",
        "--set",
        "ingress.tls[0].secretName=auth-tls",
        "--set",
        "ingress.tls[0].hosts[0]=auth.example.com",
    ],
    # The Gateway API's HTTPRoute, attached to a Gateway in another namespace.
    "gateway": [
        "--set",
        "gateway.enabled=true",
        "--set",
        "gateway.parentRefs[0].name=public",
        "--set",
        "gateway.parentRefs[0].namespace=gateway-system",
        "--set",
        "gateway.parentRefs[0].sectionName=https",
        "--set",
        "gateway.hostnames[0]=auth.example.com",
    ],
    "hpa": ["--set", "autoscaling.enabled=true", "--set", "workers=2"],
    "provider": [
        "--set",
        "provider.create=true",
        "--set",
        "provider.issuerURL=https://auth.example.com",
    ],
    # Bound tokens: the provider says so, the resource servers come from a named Secret.
    "bound": [
        "--set",
        "provider.create=true",
        "--set",
        "provider.issuerURL=https://auth.example.com",
        "--set",
        "provider.accessTokens=bound",
        "--set",
        "resourceServers.existingSecret=mcp-servers",
    ],
    "no-operator": ["--set", "operator.enabled=false", "--set", "config.existingSecret=mine"],
    # Everything a security-minded install turns on: digests, egress policies, a
    # ServiceMonitor, introspection credentials, the public routes (HTTPRoute and Ingress).
    "hardened": [
        "--set",
        f"image.digest={DIGEST}",
        "--set",
        f"etcd.image.digest={DIGEST}",
        "--set",
        "networkPolicy.egress.enabled=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.serviceMonitor.labels.release=prometheus",
        "--set",
        "introspection.existingSecret=introspection-callers",
        "--set",
        "introspection.key=pairs",
        "--set",
        "config.clientIdMetadataDocuments=false",
        "--set",
        "ingress.enabled=true",
        "--set",
        "ingress.host=auth.example.com",
        "--set",
        "ingress.tls[0].secretName=auth-tls",
        "--set",
        "ingress.tls[0].hosts[0]=auth.example.com",
        "--set",
        "gateway.enabled=true",
        "--set",
        "gateway.parentRefs[0].name=public",
        "--set",
        "gateway.hostnames[0]=auth.example.com",
    ],
    "external-etcd-egress": [
        "--set",
        "etcd.bundled=false",
        "--set",
        "etcd.externalEndpoints=https://10.0.0.1:2379",
        "--set",
        "networkPolicy.egress.enabled=true",
        "--set",
        "networkPolicy.egress.externalEtcd.to[0].ipBlock.cidr=10.0.0.0/24",
        "--set",
        "networkPolicy.egress.externalEtcd.ports[0]=2379",
        "--set",
        "networkPolicy.egress.externalEtcd.ports[1]=2381",
    ],
    # OpenShift's restricted SCC assigns the UID and group itself.
    "openshift": [
        "--set",
        "podSecurityContext.runAsUser=null",
        "--set",
        "podSecurityContext.runAsGroup=null",
        "--set",
        "podSecurityContext.fsGroup=null",
    ],
    "no-metrics": [
        "--set",
        "metrics.enabled=false",
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "networkPolicy.enabled=false",
    ],
    "scheduling": [
        "--set",
        "operator.nodeSelector.pool=system",
        "--set",
        "operator.tolerations[0].key=dedicated",
        "--set",
        "operator.tolerations[0].operator=Exists",
        "--set",
        "operator.tolerations[0].effect=NoSchedule",
        "--set-json",
        'operator.affinity={"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":'
        '{"nodeSelectorTerms":[{"matchExpressions":[{"key":"pool","operator":"In",'
        '"values":["system"]}]}]}}}',
        "--set",
        "nodeSelector.pool=web",
    ],
}


def helm_binary() -> str:
    found = os.environ.get("HELM") or str(REPO / ".venv" / "bin" / "helm")
    if not Path(found).exists():
        found = shutil.which("helm") or ""
    assert found, "helm is needed: scripts/install-helm puts it in .venv/bin"
    return found


def helm(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(tmp / "cache"),
        "HELM_CONFIG_HOME": str(tmp / "config"),
        "HELM_DATA_HOME": str(tmp / "data"),
    }
    return subprocess.run(
        [helm_binary(), *args], capture_output=True, text=True, env=env, timeout=60
    )


def template(tmp: Path, *values: str, include_crds: bool = True) -> str:
    args = ["template", "rel", str(CHART), "--namespace", NAMESPACE, *IMAGE]
    result = helm(*args, *(["--include-crds"] if include_crds else []), *values, tmp=tmp)
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(tmp: Path, *values: str, include_crds: bool = True) -> list[dict[str, Any]]:
    text = template(tmp, *values, include_crds=include_crds)
    return [doc for doc in yaml.safe_load_all(text) if doc]


@functools.cache
def rendered_text(name: str) -> str:
    """The chart rendered with the named value set, once per test session."""
    with tempfile.TemporaryDirectory() as tmp:
        return template(Path(tmp), *VALUE_SETS[name])


def rendered(name: str) -> list[dict[str, Any]]:
    """Fresh parsed documents (tests may not share mutable objects)."""
    return [doc for doc in yaml.safe_load_all(rendered_text(name)) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def all_of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec(doc)["containers"]


def server(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The service's one container."""
    (container,) = containers(by_kind(docs, "Deployment", FULLNAME))
    return container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]

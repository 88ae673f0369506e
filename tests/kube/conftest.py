"""Fixtures for tests against a real Kubernetes control plane (see controlplane.py).

One control plane serves the session; each test gets its own namespace, and usually its
own release of the chart in it, so tests cannot see each other's objects.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from openrouter_oauth_operator.objects import CHECKSUM_ANNOTATION
from openrouter_oauth_operator.rotation import read_config
from openrouter_oauth_operator.spec import GROUP, VERSION, config_secret_name
from tests.chart.render import IMAGE
from tests.harness import REPO
from tests.kube.controlplane import Cli, ControlPlane, kube_binaries, kubeconfig, wait_for
from tests.kube.kubelet import PodReadiness
from tests.processes import free_port, terminate, wait_until_healthy

CHART = REPO / "helm" / "openrouter-oauth"
RELEASE = "oauth"
# The chart's names for release "oauth" (fullname and operatorName in _helpers.tpl).
DEPLOYMENT = "oauth-openrouter-oauth"
OPERATOR_ACCOUNT = f"{DEPLOYMENT}-operator"
# What the API server and controllers make on their own in every namespace.
AMBIENT = {"serviceaccount/default", "configmap/kube-root-ca.crt"}


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane(kube_binaries()).start()
    yield plane
    plane.destroy()


@pytest.fixture(scope="session")
def admin(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """kubectl and helm as the cluster administrator (the person installing the chart)."""
    home = tmp_path_factory.mktemp("helm-home")
    return Cli(control_plane.binaries, control_plane.admin_kubeconfig, home)


@pytest.fixture(scope="session")
def gateway_api(admin: Cli) -> str:
    """The Gateway API's standard-channel CRDs, installed once; returns their bundle version.

    They come from the sigs.k8s.io/gateway-api Go module (scripts/gateway-api-crds), as a
    cluster's gateway controller would install them. Applied server-side: the HTTPRoute
    CRD is too large for the annotation a client-side apply keeps.
    """
    made = subprocess.run(
        [str(REPO / "scripts" / "gateway-api-crds")], capture_output=True, text=True, timeout=600
    )
    if made.returncode != 0:
        raise RuntimeError(f"scripts/gateway-api-crds failed:\n{made.stderr[-4000:]}")
    folder = Path(made.stdout.strip().splitlines()[-1])
    admin.kubectl("apply", "--server-side", "-f", str(folder))
    admin.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/httproutes.gateway.networking.k8s.io",
    )  # fmt: skip
    return folder.name


@contextlib.contextmanager
def fresh_namespace(admin: Cli, *labels: str) -> Iterator[str]:
    """A namespace of its own, with the given key=value labels, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    admin.kubectl("create", "namespace", name)
    if labels:
        admin.kubectl("label", "namespace", name, *labels)
    yield name
    release_providers(admin, name)
    # Not waited for: the namespace controller empties it in the background.
    admin.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def namespace(admin: Cli) -> Iterator[str]:
    with fresh_namespace(admin) as name:
        yield name


def release_providers(admin: Cli, namespace: str) -> None:
    """Drop the operator's finalizer from providers left behind by a test.

    Their operator is gone, so nothing would ever remove it: the namespace (and a later
    `kubectl delete crd`, as docs/deploy.md's uninstall does) would wait forever.
    """
    listed = admin.kubectl("-n", namespace, "get", "oauthproviders", "-o", "name", check=False)
    for name in listed.stdout.split():
        admin.kubectl(
            "-n", namespace, "patch", name, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}', check=False,
        )  # fmt: skip


def leftovers(admin: Cli, namespace: str) -> set[str]:
    """Every object still in the namespace, as kind/name, except the ambient ones."""
    kinds = admin.kubectl("api-resources", "--verbs=list", "--namespaced", "-o", "name").stdout
    # Events are history, not something the release left running.
    wanted = ",".join(k for k in kinds.split() if k not in {"events", "events.events.k8s.io"})
    names = admin.kubectl("-n", namespace, "get", wanted, "-o", "name").stdout.split()
    short = {name.split(".", 1)[0].split("/")[0] + "/" + name.split("/", 1)[1] for name in names}
    return short - AMBIENT


def install_chart(admin: Cli, namespace: str, *values: str) -> subprocess.CompletedProcess[str]:
    """helm install as docs/deploy.md says (with an image, which has no default)."""
    return admin.helm("install", RELEASE, str(CHART), "--namespace", namespace, *IMAGE, *values)


@pytest.fixture
def installed(admin: Cli, namespace: str) -> str:
    """The chart installed as docs/deploy.md says, in this test's namespace; returns it."""
    install_chart(admin, namespace)
    return namespace


def provider(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OAuthProvider",
        "metadata": {"name": name},
        "spec": {"issuerURL": "https://auth.example.com", "deploymentName": DEPLOYMENT, **spec},
    }


def ready_condition(admin: Cli, namespace: str, name: str) -> dict[str, Any] | None:
    found = admin.get(namespace, "oauthprovider", name) or {}
    conditions = (found.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


def wait_ready(admin: Cli, namespace: str, name: str, status: str = "True") -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        condition = ready_condition(admin, namespace, name)
        return condition if condition and condition["status"] == status else None

    return wait_for(check, 30, f"{namespace}/{name} Ready={status}")


@dataclass
class Operator:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        terminate(self.process, 15)


def service_account_user(admin: Cli, namespace: str, account: str) -> dict[str, str]:
    """A token for the chart's ServiceAccount from the TokenRequest API (what a pod mounts)."""
    token = admin.kubectl("-n", namespace, "create", "token", account, "--duration=1h").stdout
    return {"token": token.strip()}


@pytest.fixture
def start_operator(
    control_plane: ControlPlane, tmp_path: Path
) -> Iterator[Callable[..., Operator]]:
    """Run the operator as a process with the given kubeconfig user; stopped after the test."""
    started: list[Operator] = []

    def start(namespace: str, user: dict[str, str], *, embed: bool = False) -> Operator:
        config = kubeconfig(control_plane.server, user, ca=control_plane.ca, embed=embed)
        path = control_plane.write_kubeconfig(f"operator-{namespace}-{len(started)}", config)
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        env = {
            **os.environ,
            "KUBECONFIG": str(path),
            "WATCH_NAMESPACE": namespace,
            "DEFAULT_DEPLOYMENT": DEPLOYMENT,
            # The timer retries what failed (a missing Secret created later) quickly.
            "RESYNC_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
        log_path = Path(tempfile.mkstemp(prefix="operator-", suffix=".log", dir=tmp_path)[1])
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "openrouter_oauth_operator", "--liveness", liveness],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        running = Operator(process, log_path)
        started.append(running)
        wait_until_healthy(liveness, process, timeout=30)
        return running

    yield start
    for running in started:
        with contextlib.suppress(Exception):
            running.stop()


@pytest.fixture
def kubelet(control_plane: ControlPlane) -> Iterator[Callable[[str], PodReadiness]]:
    """A kubelet stand-in per namespace for the service Deployment (see kubelet.py), not started.

    A test starts it when pods should become ready, and may stop it to hold a rollout;
    whatever still runs is stopped after the test, reporting what failed in the background.
    """
    made: list[PodReadiness] = []

    def make(namespace: str) -> PodReadiness:
        made.append(PodReadiness(control_plane, namespace, DEPLOYMENT))
        return made[-1]

    yield make
    for stand_in in made:
        stand_in.stop()


def events_about(admin: Cli, namespace: str, name: str) -> list[dict[str, Any]]:
    selector = f"involvedObject.kind=OAuthProvider,involvedObject.name={name}"
    return json.loads(
        admin.kubectl(
            "-n", namespace, "get", "events", f"--field-selector={selector}", "-o", "json"
        ).stdout
    )["items"]


def not_yet_configured(admin: Cli, namespace: str, name: str, issuer: str) -> list[str]:
    """What is still missing from a provider's full effect; empty once the operator did it all.

    Every part needs a different permission of the operator's Role, so the RBAC tests use
    this list to show that each rule is needed.
    """
    missing = []
    config = read_config(admin.get(namespace, "secret", config_secret_name(DEPLOYMENT)))
    if config is None or config.issuer_url != issuer or len(config.secret) < 32:
        missing.append("config Secret")
    deployment = admin.get(namespace, "deployment", DEPLOYMENT) or {}
    template = deployment.get("spec", {}).get("template", {}).get("metadata", {})
    checksum = (template.get("annotations") or {}).get(CHECKSUM_ANNOTATION)
    if config is None or checksum != config.checksum():
        missing.append("Deployment pod template annotation")
    condition = ready_condition(admin, namespace, name) or {}
    if (condition.get("status"), condition.get("reason")) != ("True", "Configured"):
        missing.append("Ready=True")
    if not any(e["reason"] == "Configured" for e in events_about(admin, namespace, name)):
        missing.append("Configured Event")
    return missing


def wait_configured(admin: Cli, namespace: str, name: str, issuer: str) -> None:
    left: list[str] = []

    def done() -> bool:
        left[:] = not_yet_configured(admin, namespace, name, issuer)
        return not left

    try:
        wait_for(done, 30, f"{namespace}/{name} to be configured")
    except AssertionError:
        raise AssertionError(f"{namespace}/{name} still missing: {left}") from None


def operated(
    admin: Cli, start_operator: Callable[..., Operator], namespace: str, name: str, issuer: str
) -> Operator:
    """The operator running as the chart's ServiceAccount, and a provider it has configured."""
    operator = start_operator(namespace, service_account_user(admin, namespace, OPERATOR_ACCOUNT))
    admin.apply(namespace, provider(name, issuerURL=issuer))
    wait_configured(admin, namespace, name, issuer)
    return operator

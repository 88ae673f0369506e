"""The Kubernetes commands of docs/deploy.md, run as written against the real control plane.

Install, apply a provider (generated and brought-your-own secret), rotate (two phases, then
the emergency drop), upgrade, uninstall. The image build and push lines are left out (no
registry here; the container tests build the image). Switching to a brought secret and
rotating are two rollouts each, which finish only with ready pods: the kubelet stand-in
(kubelet.py) plays the pods' part, as the running service would.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openrouter_oauth_operator.rotation import STABLE, Config, read_config
from openrouter_oauth_operator.spec import config_secret_name
from tests.harness import REPO
from tests.kube.conftest import (
    DEPLOYMENT,
    OPERATOR_ACCOUNT,
    Operator,
    leftovers,
    release_providers,
    service_account_user,
    wait_configured,
)
from tests.kube.controlplane import Cli, wait_for
from tests.kube.kubelet import PodReadiness

DEPLOY = (REPO / "docs" / "deploy.md").read_text()
NAMESPACE = "oauth"  # the document's
ISSUER = "https://auth.example.com"
CONFIG_SECRET = config_secret_name(DEPLOYMENT)


def section(title: str) -> str:
    """The text under a '## title' heading, up to the next heading or the end."""
    match = re.search(rf"^##+ {re.escape(title)}\n(.*?)(?=^##|\Z)", DEPLOY, re.S | re.M)
    assert match, f"docs/deploy.md has no section {title!r}"
    return match.group(1)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def commands(text: str) -> list[str]:
    """The command lines of a section's sh blocks, continuation lines joined."""
    joined = "\n".join(blocks(text, "sh")).replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    # Building and pushing the image needs a registry; nothing here runs the image.
    return [line for line in lines if line and not line.startswith(("#", "buildah "))]


@pytest.fixture
def readme_namespace(admin: Cli) -> Iterator[str]:
    yield NAMESPACE
    release_providers(admin, NAMESPACE)
    admin.helm("uninstall", "oauth", "--namespace", NAMESPACE, check=False)
    admin.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def run(admin: Cli, command: str, cwd: Path = REPO) -> str:
    return admin.shell(command, cwd).stdout


def config(admin: Cli) -> Config | None:
    return read_config(admin.get(NAMESPACE, "secret", CONFIG_SECRET))


def serves(admin: Cli, name: str, *, previous: bool = True) -> Config:
    """Wait until the value of Secret ``name`` seals and no rotation is left in progress.

    ``previous``: whether older secrets are still accepted (kept for their retention, or
    dropped in an emergency).
    """
    secret = admin.get(NAMESPACE, "secret", name)
    assert secret is not None
    value = base64.b64decode(secret["data"]["secret"]).decode().strip()

    def done() -> Config | None:
        found = config(admin)
        wanted = (value, STABLE, previous)
        return (
            found if found and (found.secret, found.phase, bool(found.previous)) == wanted else None
        )

    return wait_for(done, 90, f"the value of {name} to seal, rotation complete")


def test_deploy_commands_as_written(
    admin: Cli,
    gateway_api: str,
    readme_namespace: str,
    start_operator: Callable[..., Operator],
    kubelet: Callable[[str], PodReadiness],
    tmp_path: Path,
) -> None:
    (install,) = commands(section("Install"))
    assert install.startswith("helm install oauth ./helm/openrouter-oauth --namespace oauth")
    notes = run(admin, install)
    assert f"Issuer URL: {ISSUER}" in notes
    # The Gateway API's way, as the README shows first: a route on the user's Gateway.
    route = admin.get(NAMESPACE, "httproute.gateway.networking.k8s.io", DEPLOYMENT)
    assert route is not None
    assert route["spec"]["hostnames"] == ["auth.example.com"]
    assert [(p["namespace"], p["name"]) for p in route["spec"]["parentRefs"]] == [
        ("gateway-system", "public")
    ]
    pods = kubelet(NAMESPACE).start()  # in a cluster the service's pods would now run

    start_operator(NAMESPACE, service_account_user(admin, NAMESPACE, OPERATOR_ACCOUNT))
    apply = section("Apply a provider")
    generated, byo = blocks(apply, "yaml")
    apply_file, get, create_secret, label_secret = commands(apply)
    (tmp_path / "provider.yaml").write_text(generated)
    run(admin, apply_file, cwd=tmp_path)
    wait_configured(admin, NAMESPACE, "openrouter-oauth", ISSUER)
    # "ISSUER https://auth.example.com, READY True", as the comment says.
    row = run(admin, get).splitlines()[1].split()
    assert row[:3] == ["openrouter-oauth", ISSUER, "True"]

    # From the generated secret to a brought one is a rotation: two phases, two rollouts.
    run(admin, create_secret)
    run(admin, label_secret)
    (tmp_path / "provider.yaml").write_text(byo)
    run(admin, apply_file, cwd=tmp_path)
    serves(admin, "oauth-state")

    pods.stop()  # held in phase 1, so that what the document shows can be seen
    rotate_as_written(admin, pods)
    pods.start()

    for command in commands(section("Upgrade")):
        run(admin, command)
    deployment = admin.get(NAMESPACE, "deployment", DEPLOYMENT)
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/openrouter-oauth-provider:0.2.0"

    pods.stop()
    for command in commands(section("Uninstall")):
        run(admin, command)
    # The operator removed the Secrets it made; helm, the CRD and the volume claim are gone.
    wait_for(lambda: not leftovers(admin, NAMESPACE) - {"secret/oauth-state"}, 60, "nothing left")
    assert admin.get("", "crd", "oauthproviders.openrouter-oauth.io") is None


def wide_row(admin: Cli, command: str, reason: str) -> list[str] | None:
    """The provider's row of ``kubectl get -o wide`` once it shows this Ready reason."""
    rows = run(admin, command).splitlines()[1:]
    return next((row.split() for row in rows if reason in row.split()), None)


def rotate_as_written(admin: Cli, pods: PodReadiness) -> None:
    """Rotate the secret: a new value, phase 1 as the document shows it, the rest, the emergency.

    Called with the pods' readiness stopped, so the rotation holds in phase 1 until this
    has looked at it.
    """
    rotate, wide, jsonpath, describe, drop = commands(section("Rotate the secret"))
    run(admin, rotate)
    # As the comments show: "... True RotationAccepting Accepting ..." and the status.
    row = wait_for(lambda: wide_row(admin, wide, "RotationAccepting"), 30, "phase 1 in -o wide")
    assert row[:5] == ["openrouter-oauth", ISSUER, "True", "RotationAccepting", "Accepting"]
    rotation = json.loads(run(admin, jsonpath))
    assert rotation["phase"] == "Accepting"
    assert set(rotation) == {"phase", "previousSecrets", "rollout", "since"}

    pods.start()
    serves(admin, "oauth-state")
    events = run(admin, describe).split("Events:", 1)[1]
    for reason in ("RotationAccepting", "RotationSealing", "Rotated"):
        assert reason in events, events

    # The emergency: the Secret's value seals, nothing else is accepted, no rollout waited for.
    pods.stop()
    run(admin, drop)
    serves(admin, "oauth-state", previous=False)

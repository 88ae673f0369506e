"""The README's Kubernetes commands, run as written against the real control plane.

Install, apply a provider (generated and brought-your-own secret), upgrade, uninstall. The
image build and push lines are left out (no registry here; the container tests build the
image), and so is rotation, which is being reworked separately.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openrouter_oauth_operator.reconcile import config_secret_name
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

README = (REPO / "README.md").read_text()
NAMESPACE = "oauth"  # the README's
ISSUER = "https://auth.example.com"
CONFIG_SECRET = config_secret_name(DEPLOYMENT)


def section(title: str) -> str:
    """The text under a '### title' heading, up to the next heading."""
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^##)", README, re.S | re.M)
    assert match, f"README has no section {title!r}"
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


def test_readme_commands_as_written(
    admin: Cli,
    readme_namespace: str,
    start_operator: Callable[..., Operator],
    tmp_path: Path,
) -> None:
    (install,) = commands(section("Install"))
    assert install.startswith("helm install oauth ./helm/openrouter-oauth --namespace oauth")
    notes = run(admin, install)
    assert f"Issuer URL: {ISSUER}" in notes

    start_operator(NAMESPACE, service_account_user(admin, NAMESPACE, OPERATOR_ACCOUNT))
    apply = section("Apply a provider")
    generated, byo = blocks(apply, "yaml")
    apply_file, get, create_secret = commands(apply)
    (tmp_path / "provider.yaml").write_text(generated)
    run(admin, apply_file, cwd=tmp_path)
    wait_configured(admin, NAMESPACE, "openrouter-oauth", ISSUER)
    # "ISSUER https://auth.example.com, READY True", as the comment says.
    row = run(admin, get).splitlines()[1].split()
    assert row[:3] == ["openrouter-oauth", ISSUER, "True"]

    run(admin, create_secret)
    (tmp_path / "provider.yaml").write_text(byo)
    run(admin, apply_file, cwd=tmp_path)
    secret = admin.get(NAMESPACE, "secret", "oauth-state")
    assert secret is not None

    def serves_the_brought_secret() -> bool:
        config = admin.get(NAMESPACE, "secret", CONFIG_SECRET) or {}
        return config.get("data", {}).get("SECRET") == secret["data"]["secret"]

    wait_for(serves_the_brought_secret, 30, "the brought secret to become SECRET")

    for command in commands(section("Upgrade")):
        run(admin, command)
    deployment = admin.get(NAMESPACE, "deployment", DEPLOYMENT)
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/openrouter-oauth-provider:0.2.0"

    for command in commands(section("Uninstall")):
        run(admin, command)
    # The operator removed the Secrets it made; helm, the CRD and the volume claim are gone.
    wait_for(lambda: not leftovers(admin, NAMESPACE) - {"secret/oauth-state"}, 60, "nothing left")
    assert admin.get("", "crd", "oauthproviders.openrouter-oauth.io") is None

"""The container image: lint, build with buildah on a locally made base, run with podman.

No registry is reachable here, so the base is a Debian bookworm made with
debootstrap (python3-venv included) and passed as BASE_IMAGE; users get the
official python slim image by default. Every container is removed afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from tests.harness import REPO
from tests.processes import free_port, wait_until_healthy

BASE = "localhost/openrouter-oauth-base:bookworm"
IMAGE = "localhost/openrouter-oauth-provider:test"
PODMAN = ["podman", "--runtime", "/usr/sbin/runc", "--cgroup-manager", "cgroupfs"]
RUN = [
    *PODMAN,
    "run",
    "--ulimit",
    "nofile=1024:20000",
    "--ulimit",
    "nproc=4096:4096",
    "--network",
    "host",
]


def run(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args[:4])}… failed:\n{result.stdout}\n{result.stderr}")
    return result


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    assert found, f"{name} is needed: apt-get install buildah podman runc debootstrap"
    return found


def image_exists(name: str) -> bool:
    return run(*PODMAN, "image", "exists", name, check=False).returncode == 0


def make_base() -> None:
    """A minimal Debian bookworm with python3-venv, imported as BASE (kept between runs)."""
    if image_exists(BASE):
        return
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(
            tool("debootstrap"),
            "--variant=minbase",
            "--include=python3,python3-venv",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        )
        archive = Path(tmp) / "rootfs.tar"
        run("tar", "-C", str(rootfs), "-cf", str(archive), ".")
        run(*PODMAN, "import", str(archive), BASE)


@pytest.fixture(scope="module")
def image() -> str:
    for name in ("buildah", "podman", "debootstrap"):
        tool(name)
    make_base()
    with tempfile.TemporaryDirectory() as tmp:
        # pip inside the build trusts the host's CA bundle (the registry proxy's).
        pip_conf = Path(tmp) / "pip.conf"
        pip_conf.write_text("[global]\ncert = /etc/host-ca.crt\n")
        run(
            "buildah",
            "bud",
            "--isolation",
            "chroot",
            "--network",
            "host",
            "--build-arg",
            f"BASE_IMAGE={BASE}",
            "-v",
            "/etc/ssl/certs/ca-certificates.crt:/etc/host-ca.crt:ro",
            "-v",
            f"{pip_conf}:/etc/pip.conf:ro",
            "-f",
            str(REPO / "Containerfile"),
            "-t",
            IMAGE,
            str(REPO),
            timeout=1200,
        )
    return IMAGE


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"oauth-test-{uuid.uuid4().hex[:8]}"
    yield name
    run(*PODMAN, "rm", "--force", "--ignore", name, check=False)
    left = run(*PODMAN, "ps", "--all", "--filter", f"name={name}", "--format", "{{.Names}}")
    assert left.stdout.strip() == "", "a test container was left behind"


def test_containerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(REPO / ".venv" / "bin" / "hadolint")
    result = run(hadolint, str(REPO / "Containerfile"), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_metadata(image):
    config = json.loads(run(*PODMAN, "image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["openrouter-oauth"]
    assert config["Labels"]["org.opencontainers.image.title"] == "openrouter-oauth-provider"
    assert "org.opencontainers.image.version" in config["Labels"]
    history = run(*PODMAN, "history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "gcc" not in history


def test_service_runs_read_only_as_non_root_and_drains_on_sigterm(image, container_name):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    run(
        *RUN,
        "--detach",
        "--name",
        container_name,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--env",
        f"ISSUER_URL={issuer}",
        image,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )
    try:
        wait_until_healthy(f"{issuer}/healthz", timeout=60)
    except RuntimeError:
        logs = run(*PODMAN, "logs", container_name, check=False)
        raise AssertionError(logs.stdout + logs.stderr) from None
    metadata = httpx.get(f"{issuer}/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == issuer
    assert httpx.get(f"{issuer}/readyz").status_code == 200
    uid = run(
        *PODMAN, "exec", container_name, "python3", "-c", "import os; print(os.getuid())"
    ).stdout.strip()
    assert uid == "10001"
    started = time.monotonic()
    run(*PODMAN, "stop", "--time", "15", container_name)
    assert time.monotonic() - started < 15, "SIGTERM did not stop the service"
    state = json.loads(run(*PODMAN, "inspect", container_name).stdout)[0]["State"]
    assert state["ExitCode"] == 0
    logs = run(*PODMAN, "logs", container_name).stdout
    assert '"message": "request"' in logs and "Traceback" not in logs


def test_operator_command_starts(image, container_name):
    result = run(
        *RUN,
        "--rm",
        "--name",
        container_name,
        "--read-only",
        "--entrypoint",
        "openrouter-oauth-operator",
        image,
        "--help",
    )
    assert "OAuthProvider" in result.stdout


def test_a_bad_setting_exits_with_one_line(image, container_name):
    result = run(
        *RUN,
        "--rm",
        "--name",
        container_name,
        "--read-only",
        "--env",
        "ISSUER_URL=http://example.com",
        image,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "openrouter-oauth: error: ISSUER_URL must use https unless its host is loopback: "
        "'http://example.com'"
    ]


def test_no_environment_leaks_into_the_image(image):
    env = json.loads(run(*PODMAN, "image", "inspect", image).stdout)[0]["Config"]["Env"]
    assert not [e for e in env if e.startswith(("SECRET", "PIP_CERT"))]
    assert os.path.basename(REPO) not in " ".join(env)


# -- The SBOM (issue 19, item 4) --------------------------------------------------------------

SBOM_LABEL = "io.github.openrouter-oauth.sbom"
SBOM_PATH = "/opt/venv/sbom.cdx.json"  # where the README says it is


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_list(image: str) -> set[tuple[str, str]]:
    """(name, version) of every package in the image's venv, as pip itself lists them.

    The image has no pip (the build removes it), so pip runs here, reading the image's
    files through a read-only mount of the image.
    """
    mounted = Path(run(*PODMAN, "image", "mount", image).stdout.strip())
    try:
        (site,) = mounted.glob("opt/venv/lib/python3*/site-packages")
        listed = run(sys.executable, "-m", "pip", "list", "--path", str(site), "--format", "json")
    finally:
        run(*PODMAN, "image", "unmount", image)
    return {(normalized(p["name"]), p["version"]) for p in json.loads(listed.stdout)}


def test_image_carries_a_cyclonedx_sbom_of_the_packages_it_runs(image, shown):
    labels = json.loads(run(*PODMAN, "image", "inspect", image).stdout)[0]["Config"]["Labels"]
    assert labels[SBOM_LABEL] == SBOM_PATH
    text = run(*RUN, "--rm", "--read-only", "--entrypoint", "cat", image, SBOM_PATH).stdout
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
    assert error is None, f"not valid CycloneDX 1.5: {str(error)[:500]}"
    sbom = json.loads(text)
    described = sbom["metadata"]["component"]
    assert (described["name"], described["version"]) == (
        labels["org.opencontainers.image.title"],
        labels["org.opencontainers.image.version"],
    )

    components = sbom["components"]
    listed = {(normalized(c["name"]), c["version"]) for c in components}
    installed = pip_list(image)
    assert listed == installed, {
        "only in the SBOM": listed - installed,
        "only in pip": installed - listed,
    }
    for c in components:
        assert c["purl"] == f"pkg:pypi/{normalized(c['name'])}@{c['version']}"
    # The service's own package and its web framework, at the versions the interpreter imports.
    imported = run(
        *RUN, "--rm", "--read-only", "--entrypoint", "python3", image, "-c",
        "import sanic, importlib.metadata as m; "
        "print(sanic.__version__, m.version('openrouter-oauth-provider'))",
    ).stdout.split()  # fmt: skip
    assert ("sanic", imported[0]) in listed
    assert ("openrouter-oauth-provider", imported[1]) in listed
    shown(f"SBOM {SBOM_PATH}: {len(components)} packages, the same as pip list in the image")

"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager.

No kubelet and no scheduler: pods stay Pending (unless a test makes them ready with the
stand-in in kubelet.py), and whatever must run (the operator, the service) runs as a local
process. Everything listens on 127.0.0.1 only, except for tests/node, whose pods must reach
the API server: there it listens on the node's bridge address instead (``address``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.certs import CertificateAuthority
from tests.chart.render import helm_binary
from tests.harness import REPO, EtcdServer
from tests.processes import free_port, terminate

T = TypeVar("T")
ADMIN_TOKEN = "admin-token-for-tests"  # a throw-away cluster's credential
# The controllers the tests rely on; the rest (nodes, endpoints, jobs...) only add load.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "namespace-controller",
    "statefulset-controller",
    "persistentvolumeclaim-protection-controller",
)
# The first address of --service-cluster-ip-range: the "kubernetes" Service, which pods
# (the operator's in-cluster configuration) use to reach the API server.
API_SERVICE_IP = "10.96.0.1"
# Its names in the cluster DNS (in-cluster clients such as kopf use the .svc one).
API_SERVICE_NAMES = ("kubernetes.default.svc", "kubernetes.default.svc.cluster.local")


def kube_binaries(which: str = "control-plane") -> Path:
    """The folder with kube-apiserver, kube-controller-manager and kubectl.

    Or, with "node", kubelet, kube-scheduler and kube-proxy (tests/node).
    scripts/build-kube returns at once when they are cached, and builds them otherwise, so
    these tests never skip for want of binaries.
    """
    folder = os.environ.get("KUBE_BIN_DIR")
    if folder and which == "control-plane":
        return Path(folder)
    built = subprocess.run(
        [str(REPO / "scripts" / "build-kube"), which], capture_output=True, text=True, timeout=3600
    )
    if built.returncode != 0:
        raise RuntimeError(f"scripts/build-kube failed:\n{built.stderr[-4000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


def wait_for(check: Callable[[], T | None], timeout: float, what: str, step: float = 0.2) -> T:
    """Poll until check() returns something truthy; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _service_account_key(folder: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "sa.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def kubeconfig(
    server: str,
    user: Mapping[str, str],
    *,
    ca: Path,
    embed: bool = False,
    namespace: str = "default",
) -> dict[str, Any]:
    """A kubeconfig: with the CA as a file path, or embedded as base64 (as kind writes)."""
    if embed:
        cluster = {"server": server, "certificate-authority-data": b64(ca.read_bytes())}
    else:
        cluster = {"server": server, "certificate-authority": str(ca)}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "user", "user": dict(user)}],
        "contexts": [
            {"name": "test", "context": {"cluster": "test", "user": "user", "namespace": namespace}}
        ],
        "current-context": "test",
    }


def b64(data: bytes) -> str:
    """Base64 text, as kubeconfig *-data fields hold it."""
    return base64.b64encode(data).decode()


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager in one temporary folder."""

    binaries: Path
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kube-test-")))
    port: int = field(default_factory=free_port)
    address: str = "127.0.0.1"
    controllers: tuple[str, ...] = CONTROLLERS
    etcd: EtcdServer | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://{self.address}:{self.port}"

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.folder / "admin.kubeconfig"

    def write_kubeconfig(self, name: str, config: Mapping[str, Any]) -> Path:
        path = self.folder / f"{name}.kubeconfig"
        path.write_text(yaml.safe_dump(dict(config)))
        path.chmod(0o600)
        return path

    def start(self) -> ControlPlane:
        try:
            self.etcd = EtcdServer().start()
            self._pki()
            self._start_apiserver()
            self._start_controller_manager()
        except BaseException:
            self.stop()
            raise
        return self

    def _pki(self) -> None:
        self.authority = CertificateAuthority(self.folder)
        self.serving = self.authority.issue(
            "apiserver", dns=("localhost", *API_SERVICE_NAMES), ip=(self.address, API_SERVICE_IP)
        )
        # How the API server proves itself to a kubelet (tests/node) for logs and port-forward.
        self.kubelet_client = self.authority.issue("apiserver-kubelet-client", client=True)
        self.sa_key = _service_account_key(self.folder)
        # A static token for the admin: system:masters bypasses RBAC, as cluster-admin does.
        tokens = self.folder / "tokens.csv"
        tokens.write_text(f'{ADMIN_TOKEN},admin,admin-uid,"system:masters"\n')
        self.write_kubeconfig("admin", kubeconfig(self.server, {"token": ADMIN_TOKEN}, ca=self.ca))

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [str(self.binaries / name), *args], stdout=log, stderr=subprocess.STDOUT
            )
        self.processes.append(process)
        return process

    def _start_apiserver(self) -> None:
        assert self.etcd is not None
        process = self._spawn(
            "kube-apiserver",
            [
                f"--etcd-servers={self.etcd.endpoint}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={self.port}",
                f"--cert-dir={self.folder / 'apiserver-certs'}",
                f"--tls-cert-file={self.serving.cert}",
                f"--tls-private-key-file={self.serving.key}",
                f"--client-ca-file={self.ca}",
                f"--token-auth-file={self.folder / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={self.sa_key}",
                f"--service-account-signing-key-file={self.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--service-cluster-ip-range=10.96.0.0/24",
                f"--kubelet-client-certificate={self.kubelet_client.cert}",
                f"--kubelet-client-key={self.kubelet_client.key}",
                # A node's name is not in any DNS here; its address is.
                "--kubelet-preferred-address-types=InternalIP",
                # Fewer moving parts on a small shared machine; none of it is under test.
                "--enable-priority-and-fairness=false",
                "--profiling=false",
            ],
        )
        self._wait_ready("/readyz", process, timeout=120)

    def _start_controller_manager(self) -> None:
        process = self._spawn(
            "kube-controller-manager",
            [
                f"--kubeconfig={self.admin_kubeconfig}",
                f"--controllers={','.join(self.controllers)}",
                f"--service-account-private-key-file={self.sa_key}",
                f"--root-ca-file={self.ca}",
                "--leader-elect=false",
                # It serves nothing the tests need; 0 keeps it off every port.
                "--secure-port=0",
                "--concurrent-deployment-syncs=2",
                "--concurrent-replicaset-syncs=2",
            ],
        )

        # The serviceaccount controller creating "default" proves the controllers run.
        def default_account() -> bool:
            self._died(process)
            return self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default").is_success

        wait_for(default_account, 60, "kube-controller-manager to create the default account")

    def _died(self, process: subprocess.Popen[bytes]) -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited: {self.log(Path(process.args[0]).name)}")
        return False

    def _wait_ready(self, path: str, process: subprocess.Popen[bytes], timeout: float) -> None:
        def ready() -> bool:
            self._died(process)
            try:
                return self.api("GET", path).is_success
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout, f"{self.server}{path}", step=0.5)

    def api(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A call as the admin, straight to the API server."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", **(headers or {})}
        verify = ssl.create_default_context(cafile=self.ca)
        return httpx.request(
            method, f"{self.server}{path}", headers=headers, verify=verify, **kwargs
        )

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        # Controller manager first, so it does not log the API server going away.
        for process in reversed(self.processes):
            terminate(process, 15)
        self.processes.clear()
        if self.etcd is not None:
            self.etcd.destroy()
            self.etcd = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Cli:
    """kubectl and helm as a user runs them, against one kubeconfig."""

    binaries: Path
    kubeconfig: Path
    home: Path

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            # kubectl's discovery cache, instead of ~/.kube/cache.
            "KUBECACHEDIR": str(self.home / "kube-cache"),
        }

    def run(
        self, tool: str, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        binary = str(self.binaries / tool) if tool == "kubectl" else helm_binary()
        result = subprocess.run(
            [binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed:\n{result.stderr}")
        return result

    def shell(self, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        """One command line as a person types it: kubectl and helm on PATH."""
        env = self._env()
        env["PATH"] = os.pathsep.join(
            [str(self.binaries), str(Path(helm_binary()).parent), env.get("PATH", "")]
        )
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=cwd,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(f"{command} failed:\n{result.stdout}{result.stderr}")
        return result

    def kubectl(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kwargs)

    def helm(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, **kwargs)

    def apply(self, namespace: str, *objects: Mapping[str, Any]) -> str:
        docs = yaml.safe_dump_all([dict(o) for o in objects])
        return self.kubectl("-n", namespace, "apply", "-f", "-", stdin=docs).stdout

    def get(self, namespace: str, kind: str, name: str = "") -> dict[str, Any] | None:
        """The object (or list) as JSON; None if it does not exist."""
        args = ["-n", namespace, "get", kind, *([name] if name else []), "-o", "json"]
        result = self.kubectl(*args, check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return json.loads(result.stdout)

    def items(self, namespace: str, kind: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["-n", namespace, "get", kind, "-o", "json"]
        if selector:
            args += ["-l", selector]
        return json.loads(self.kubectl(*args).stdout)["items"]

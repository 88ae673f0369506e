"""The chart's pods pass the `restricted` Pod Security Standard, as the API server enforces it.

No node runs the pods here, but admission is the real API server's: its PodSecurity plugin
checks every pod the ReplicaSet and StatefulSet controllers create, in a namespace labelled
to enforce (and audit, and warn about) the restricted profile, exactly as on a cluster
whose administrator turned it on. A refused pod is never created; its controller records a
FailedCreate event naming the violated controls instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.kube.conftest import fresh_namespace, install_chart
from tests.kube.controlplane import Cli, wait_for

LEVEL = "restricted"
LABELS = [f"pod-security.kubernetes.io/{mode}={LEVEL}" for mode in ("enforce", "audit", "warn")]
# What the API server says about a pod the profile refuses (warn mode: on the workload too).
VIOLATION = re.compile(r"violates? PodSecurity", re.I)


@pytest.fixture
def restricted(admin: Cli) -> Iterator[str]:
    """A namespace enforcing the restricted profile, labelled as an administrator does."""
    with fresh_namespace(admin, *LABELS) as name:
        yield name


def workloads(admin: Cli, namespace: str) -> list[dict[str, Any]]:
    return admin.items(namespace, "deployments") + admin.items(namespace, "statefulsets")


def pods_of(admin: Cli, namespace: str, workload: dict[str, Any]) -> list[str]:
    labels = workload["spec"]["selector"]["matchLabels"]
    selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return [p["metadata"]["name"] for p in admin.items(namespace, "pods", selector)]


def failed_creates(admin: Cli, namespace: str) -> list[str]:
    events = admin.items(namespace, "events")
    return [
        f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}: {e['message']}"
        for e in events
        if e["reason"] == "FailedCreate"
    ]


def install(admin: Cli, namespace: str, *values: str) -> str:
    """helm install as the README says; returns what helm printed (the API's warnings)."""
    done = install_chart(admin, namespace, *values)
    return done.stdout + done.stderr


def test_every_workload_pod_is_admitted_under_restricted(
    admin: Cli, restricted: str, shown: Callable[[str], None]
) -> None:
    printed = install(admin, restricted)
    assert not VIOLATION.search(printed), printed
    found = workloads(admin, restricted)
    kinds = sorted(w["kind"] for w in found)
    # The service and the operator, and the bundled etcd: every pod the chart makes.
    assert kinds == ["Deployment", "Deployment", "StatefulSet"], kinds

    for workload in found:
        wanted = workload["spec"]["replicas"]
        what = f"{wanted} pods of {workload['kind']}/{workload['metadata']['name']}"

        def created(workload: dict[str, Any] = workload, wanted: int = wanted) -> bool:
            # A refusal would show up here first, so fail at once rather than time out.
            refused = failed_creates(admin, restricted)
            assert not refused, refused
            return len(pods_of(admin, restricted, workload)) >= wanted

        wait_for(created, 60, what)
        shown(f"PodSecurity {LEVEL}: admitted {what}")
    assert not failed_creates(admin, restricted)


def test_a_pod_the_profile_forbids_is_refused_there(admin: Cli, restricted: str) -> None:
    """The same check refuses the chart's pods once one restricted control is given up.

    Without this, the test above would also pass against an API server whose PodSecurity
    admission were off.
    """
    printed = install(admin, restricted, "--set", "securityContext.allowPrivilegeEscalation=true")
    # Warn mode: the API server already warns about the workloads' pod templates.
    assert VIOLATION.search(printed), printed

    def refused() -> list[str]:
        return [m for m in failed_creates(admin, restricted) if "allowPrivilegeEscalation" in m]

    messages = wait_for(refused, 60, "FailedCreate events naming allowPrivilegeEscalation")
    assert all(f'violates PodSecurity "{LEVEL}:' in m for m in messages), messages
    for workload in workloads(admin, restricted):
        assert pods_of(admin, restricted, workload) == [], workload["metadata"]["name"]
    print(f"refused under {LEVEL}: {len(messages)} pod creations with allowPrivilegeEscalation")

"""Fixtures for tests on a real node (see node.py): one control plane and node per module,
stopped right after it (the rest of the suite does not need them running)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.container.test_image import image  # noqa: F401  (the image under test, built once)
from tests.fakes.openrouter import FakeOpenRouter
from tests.kube.controlplane import CONTROLLERS, Cli, ControlPlane, kube_binaries
from tests.node.node import NODE_CONTROLLERS, NODE_IP, Node, bridge_down, bridge_up


@pytest.fixture(scope="module")
def node_plane() -> Iterator[ControlPlane]:
    """The control plane of tests/kube, on the node's bridge address so pods reach it."""
    if os.geteuid() != 0:
        # ./scripts/test (CI) runs as root; ./scripts/test --partial leaves this folder out.
        pytest.skip("tests/node runs a kubelet, containerd and a bridge: it needs root")
    bridge_up()
    plane = ControlPlane(
        kube_binaries(), address=NODE_IP, controllers=CONTROLLERS + NODE_CONTROLLERS
    )
    try:
        plane.start()
        yield plane
    finally:
        plane.destroy()
        bridge_down()


@pytest.fixture(scope="module")
def node_admin(node_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    home = tmp_path_factory.mktemp("helm-home")
    return Cli(node_plane.binaries, node_plane.admin_kubeconfig, home)


@pytest.fixture(scope="module")
def node(node_plane: ControlPlane, node_admin: Cli) -> Iterator[Node]:
    running = Node(node_plane, node_admin).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def pod_fake() -> Iterator[FakeOpenRouter]:
    """The fake OpenRouter, where the service pods reach it."""
    server = FakeOpenRouter(host=NODE_IP).start()
    yield server
    server.stop()

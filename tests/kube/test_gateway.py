"""The chart's HTTPRoute on a real API server with the Gateway API's own CRDs.

The CRDs' schemas and CEL rules are the Gateway API project's (standard channel, the pinned
version of scripts/gateway-api-crds); the API server applies them, and its defaulting, to
what helm installs. tests/chart/test_gateway.py checks the rendering itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.chart.render import VALUE_SETS
from tests.kube.conftest import DEPLOYMENT, install_chart
from tests.kube.controlplane import Cli

HOST = "auth.example.com"


def install(admin: Cli, namespace: str, *values: str) -> dict[str, Any]:
    """helm install with the chart tests' gateway values; returns the HTTPRoute as stored."""
    install_chart(admin, namespace, *values)
    route = admin.get(namespace, "httproute.gateway.networking.k8s.io", DEPLOYMENT)
    assert route is not None, "helm reported success but no HTTPRoute exists"
    return route


def test_route_is_valid_and_routes_only_the_http_port(
    admin: Cli, gateway_api: str, namespace: str, shown: Callable[[str], None]
) -> None:
    route = install(admin, namespace, *VALUE_SETS["gateway"])
    spec = route["spec"]
    # Defaulted by the CRD: the parent is a Gateway of the Gateway API's group.
    assert spec["parentRefs"] == [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            "name": "public",
            "namespace": "gateway-system",
            "sectionName": "https",
        }
    ]
    assert spec["hostnames"] == [HOST]
    (rule,) = spec["rules"]
    assert [m["path"] for m in rule["matches"]] == [{"type": "PathPrefix", "value": "/"}]
    (backend,) = rule["backendRefs"]
    # Defaulted to a core Service; its port is the chart's Service port, which is http only.
    assert (backend["group"], backend["kind"], backend["name"]) == ("", "Service", DEPLOYMENT)
    service = admin.get(namespace, "service", DEPLOYMENT)
    assert service is not None
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == backend["port"]]
    assert port["targetPort"] == "http"
    shown(f"HTTPRoute accepted by Gateway API {gateway_api} CRDs: / -> {DEPLOYMENT}:{port['port']}")


def test_route_and_ingress_together(admin: Cli, gateway_api: str, namespace: str) -> None:
    """Moving from an Ingress to a Gateway: both installed at once, the same paths each."""
    route = install(admin, namespace, *VALUE_SETS["gateway"], *VALUE_SETS["ingress"])
    ingress = admin.get(namespace, "ingress", DEPLOYMENT)
    assert ingress is not None
    ingress_paths = [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]]
    route_paths = [m["path"]["value"] for m in route["spec"]["rules"][0]["matches"]]
    assert route_paths == ingress_paths == ["/"]

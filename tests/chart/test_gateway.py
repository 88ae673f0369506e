"""The Gateway API's HTTPRoute: off by default, the same public paths as the Ingress, never metrics.

tests/kube/test_gateway.py installs the same route on a real API server with the Gateway
API's own CRDs; here the rendered manifests are checked for what a user relies on.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.render import (
    CHART,
    FULLNAME,
    IMAGE,
    NAMESPACE,
    VALUE_SETS,
    all_of_kind,
    by_kind,
    helm,
    render,
    rendered,
)
from tests.chart.test_chart import notes


def route_paths(route: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (match["path"]["type"], match["path"]["value"])
        for rule in route["spec"]["rules"]
        for match in rule["matches"]
    ]


def ingress_paths(ingress: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (path["pathType"], path["path"])
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]


def test_no_route_unless_enabled():
    assert not all_of_kind(rendered("defaults"), "HTTPRoute")
    assert not all_of_kind(rendered("ingress"), "HTTPRoute")


def test_route_attaches_to_the_named_gateway_with_the_hostnames():
    route = by_kind(rendered("gateway"), "HTTPRoute", FULLNAME)
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["namespace"] == NAMESPACE
    assert route["spec"]["parentRefs"] == [
        {"name": "public", "namespace": "gateway-system", "sectionName": "https"}
    ]
    assert route["spec"]["hostnames"] == ["auth.example.com"]


def test_route_sends_every_public_path_to_the_http_port_only():
    docs = rendered("gateway")
    route = by_kind(docs, "HTTPRoute", FULLNAME)
    # Everything on the http port is public; one prefix rule covers it.
    assert route_paths(route) == [("PathPrefix", "/")]
    (rule,) = route["spec"]["rules"]
    (backend,) = rule["backendRefs"]
    service = by_kind(docs, "Service", backend["name"])
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == backend["port"]]
    assert port["targetPort"] == "http"
    # The metrics port is on no Service the route can name.
    assert all(p["targetPort"] != "metrics" for p in service["spec"]["ports"])


def test_route_and_ingress_route_the_same_paths_to_the_same_service():
    """Both can be on (moving from an Ingress to a Gateway); neither routes more than the other."""
    docs = rendered("hardened")
    route = by_kind(docs, "HTTPRoute", FULLNAME)
    ingress = by_kind(docs, "Ingress", FULLNAME)
    prefix_types = {"PathPrefix": "Prefix"}
    assert [(prefix_types[t], v) for t, v in route_paths(route)] == ingress_paths(ingress)
    (backend,) = route["spec"]["rules"][0]["backendRefs"]
    assert {
        p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]
    } == {backend["name"]}


def test_service_port_follows_the_value(tmp_path):
    docs = render(tmp_path, *VALUE_SETS["gateway"], "--set", "service.port=8080")
    (rule,) = by_kind(docs, "HTTPRoute")["spec"]["rules"]
    assert rule["backendRefs"] == [{"name": FULLNAME, "port": 8080}]


def test_notes_name_the_issuer_from_the_first_hostname(tmp_path):
    text = notes(tmp_path, *VALUE_SETS["gateway"], "--set", "gateway.hostnames[1]=b.example.com")
    assert "Issuer URL: https://auth.example.com\n" in text


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["--set", "gateway.enabled=true", "--set", "gateway.hostnames[0]=a.example.com"],
         "parentRefs"),
        (["--set", "gateway.enabled=true", "--set", "gateway.parentRefs[0].name=public"],
         "hostnames"),
        # The issuer is one host: a wildcard route would send other hosts' traffic to it.
        (["--set", "gateway.hostnames[0]=*.example.com"], "gateway.hostnames.0"),
        (["--set", "gateway.hostnames[0]=Auth.Example.com"], "gateway.hostnames.0"),
        (["--set", "gateway.parentRefs[0].namespace=gateway-system"], "name is required"),
        (["--set", "gateway.parentRefs[0].name=public", "--set", "gateway.parentRefs[0].ns=x"],
         "property ns is not allowed"),
        (["--set", "gateway.parentRefs[0].name=public", "--set", "gateway.parentRefs[0].port=0"],
         "gateway.parentRefs.0.port"),
        (["--set", "gateway.className=nginx"], "className"),
    ],
)  # fmt: skip
def test_schema_refuses_bad_gateway_values(tmp_path, values, message):
    result = helm("template", "rel", str(CHART), *IMAGE, *values, tmp=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr

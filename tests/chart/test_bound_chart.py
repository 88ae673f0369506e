"""The chart's part of bound mode: the provider's accessTokens, and the resource servers
mounted from a named Secret as RESOURCE_SERVERS_FILE (never a ConfigMap, never env)."""

from __future__ import annotations

from openrouter_oauth_operator.spec import config_secret_name
from tests.chart.render import FULLNAME, all_of_kind, by_kind, env_of, pod_spec, rendered, server

SERVERS_DIR = "/etc/openrouter-oauth/resource-servers"


def test_resource_servers_are_a_mounted_file_from_the_named_secret():
    docs = rendered("bound")
    container = server(docs)
    env = env_of(container)
    assert env["RESOURCE_SERVERS_FILE"]["value"] == f"{SERVERS_DIR}/RESOURCE_SERVERS"
    assert "RESOURCE_SERVERS" not in env
    # The mode comes from the config Secret the operator writes (only for bound mode).
    assert env["ACCESS_TOKENS"]["valueFrom"]["secretKeyRef"] == {
        "name": config_secret_name(FULLNAME),
        "key": "ACCESS_TOKENS",
        "optional": True,
    }
    deployment = by_kind(docs, "Deployment", FULLNAME)
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    assert volumes["resource-servers"]["secret"] == {
        "secretName": "mcp-servers",
        "defaultMode": 0o440,
        "items": [{"key": "servers", "path": "RESOURCE_SERVERS"}],
    }
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["resource-servers"] == {
        "name": "resource-servers",
        "mountPath": SERVERS_DIR,
        "readOnly": True,
    }
    assert not all_of_kind(docs, "ConfigMap")
    provider = by_kind(docs, "OAuthProvider", "openrouter-oauth")
    assert provider["spec"]["accessTokens"] == "bound"


def test_without_resource_servers_nothing_of_bound_mode_is_rendered():
    docs = rendered("provider")
    env = env_of(server(docs))
    assert "RESOURCE_SERVERS_FILE" not in env and "ACCESS_TOKENS" not in env
    deployment = by_kind(docs, "Deployment", FULLNAME)
    assert "resource-servers" not in {v["name"] for v in pod_spec(deployment)["volumes"]}
    assert by_kind(docs, "OAuthProvider", "openrouter-oauth")["spec"]["accessTokens"] == (
        "openrouterKey"
    )

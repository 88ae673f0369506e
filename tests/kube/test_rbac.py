"""The chart's Role is exactly enough: with any one rule dropped, the operator's work is undone.

The positive case (every rule) is test_operator.py's; here each rule of the Role as the
chart renders it is removed in turn, through the API, before the operator starts.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
import yaml

from tests.chart.render import IMAGE, helm_binary
from tests.kube.conftest import (
    CHART,
    OPERATOR_ACCOUNT,
    RELEASE,
    provider,
    service_account_user,
)
from tests.kube.conftest import not_yet_configured as missing_parts
from tests.kube.controlplane import Cli

ISSUER = "https://auth.example.com"
# Long enough for the operator to finish with all rules (it takes 1-3 s here); a broken
# Role never finishes.
GRACE_SECONDS = 12


def role_rules() -> list[dict[str, Any]]:
    rendered = subprocess.run(
        [helm_binary(), "template", RELEASE, str(CHART), *IMAGE],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (role,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Role"]
    return role["rules"]


def rule_id(rule: dict[str, Any]) -> str:
    return "+".join(rule["resources"])


RULES = role_rules()


@pytest.mark.parametrize("index", range(len(RULES)), ids=[rule_id(r) for r in RULES])
def test_dropping_any_rule_breaks_the_operator(
    admin: Cli, installed: str, start_operator: Any, index: int
) -> None:
    namespace = installed
    remove = [{"op": "remove", "path": f"/rules/{index}"}]
    admin.kubectl(
        "-n", namespace, "patch", "role", OPERATOR_ACCOUNT, "--type=json", "-p", json.dumps(remove)
    )
    operator = start_operator(namespace, service_account_user(admin, namespace, OPERATOR_ACCOUNT))
    admin.apply(namespace, provider("openrouter-oauth", issuerURL=ISSUER))

    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline:
        missing = missing_parts(admin, namespace, "openrouter-oauth", ISSUER)
        assert missing, f"the operator did everything without {RULES[index]}"
        time.sleep(0.5)
    # And it is the API server's RBAC that stopped it, not some other failure.
    assert "403" in operator.log() or "forbidden" in operator.log().lower(), operator.log()[-2000:]

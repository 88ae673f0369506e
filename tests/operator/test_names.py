"""Names that become API paths: the operator's own parsing and path building (issue 16, item 2)."""

from __future__ import annotations

import base64

import jsonschema
import pytest

from openrouter_oauth_operator.config import ConfigError, load_config
from openrouter_oauth_operator.kube import KubeError, deployment_path, provider_path, secrets_path
from openrouter_oauth_operator.objects import (
    PROVIDER_ANNOTATION,
    STATE_SECRET_LABEL,
    claimed_by,
    generated_secret_value,
    referenced_secret_value,
)
from openrouter_oauth_operator.spec import (
    MAX_DEPLOYMENT_NAME,
    MAX_NAME,
    OBJECT_NAME,
    SECRET_KEY,
    InvalidProvider,
    ProviderSpec,
    parse_spec,
)

from .conftest import SCHEMA

ESCAPING = [
    "../../kube-system/secrets/x",
    "..",
    ".",
    "a/b",
    "A",
    "-a",
    "a-",
    "a..b",
    "a b",
    "",
    "a" * 254,
]


def parse(**fields) -> ProviderSpec:
    return parse_spec({"issuerURL": "https://auth.example.com", **fields}, "openrouter-oauth")


@pytest.mark.parametrize("name", ESCAPING)
def test_a_secret_ref_name_that_is_no_object_name_is_refused(name):
    with pytest.raises(InvalidProvider) as caught:
        parse(secretRef={"name": name})
    assert caught.value.reason == "InvalidName"
    assert "spec.secretRef.name" in caught.value.message


@pytest.mark.parametrize("name", [name for name in ESCAPING if name])  # "": the default
def test_a_deployment_name_that_is_no_object_name_is_refused(name):
    with pytest.raises(InvalidProvider) as caught:
        parse(deploymentName=name)
    assert caught.value.reason == "InvalidName"
    assert "spec.deploymentName" in caught.value.message


def test_a_deployment_name_leaves_room_for_its_config_secret():
    assert parse(deploymentName="a" * 240).config_secret == "a" * 240 + "-oauth-config"
    with pytest.raises(InvalidProvider, match="at most 240"):
        parse(deploymentName="a" * 241)


@pytest.mark.parametrize("key", ["../x", "a/b", "a b", "é"])
def test_a_secret_key_a_secret_cannot_have_is_refused(key):
    with pytest.raises(InvalidProvider, match=r"spec\.secretRef\.key"):
        parse(secretRef={"name": "mine", "key": key})


def test_valid_names_are_kept():
    parsed = parse(secretRef={"name": "oauth-state.v2", "key": "state_secret-1.txt"})
    assert (parsed.secret_name, parsed.secret_key) == ("oauth-state.v2", "state_secret-1.txt")


@pytest.mark.parametrize(
    "spec",
    [
        {"secretRef": {"name": "../../kube-system/secrets/x"}},
        {"secretRef": {"name": "state", "key": "../key"}},
        {"deploymentName": "../../kube-system/deployments/x"},
    ],
)
def test_the_crd_refuses_names_that_leave_their_path(spec):
    body = {"spec": {"issuerURL": "https://auth.example.com", **spec}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, SCHEMA)


def test_the_crd_and_the_operator_agree_on_names():
    """One rule in two languages: the API server's schema and the operator's parser."""
    spec = SCHEMA["properties"]["spec"]["properties"]
    for field in (spec["secretRef"]["properties"]["name"], spec["deploymentName"]):
        assert field["pattern"] == f"^{OBJECT_NAME.pattern}$"
    assert spec["secretRef"]["properties"]["name"]["maxLength"] == MAX_NAME
    assert spec["deploymentName"]["maxLength"] == MAX_DEPLOYMENT_NAME
    assert spec["secretRef"]["properties"]["key"]["pattern"] == f"^{SECRET_KEY.pattern}$"


def test_default_deployment_setting_must_be_a_name():
    with pytest.raises(ConfigError, match="DEFAULT_DEPLOYMENT"):
        load_config({"DEFAULT_DEPLOYMENT": "../../kube-system/deployments/x"})
    assert load_config({"DEFAULT_DEPLOYMENT": "svc"}).default_deployment == "svc"


def test_path_segments_are_quoted_and_dot_segments_refused():
    assert secrets_path("ns", "a/b?c") == "/api/v1/namespaces/ns/secrets/a%2Fb%3Fc"
    assert deployment_path("ns", "d") == "/apis/apps/v1/namespaces/ns/deployments/d"
    for name in ("..", ".", ""):
        with pytest.raises(KubeError):
            provider_path("ns", name)
    with pytest.raises(KubeError):
        secrets_path("..", "x")


def labelled(labels: dict[str, str], **data: str) -> dict:
    return {
        "metadata": {"labels": labels},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def test_a_referenced_secret_must_be_marked_and_missing_looks_the_same():
    value = "a" * 40
    marked = labelled({STATE_SECRET_LABEL: "true"}, secret=value)
    assert referenced_secret_value(marked, "s", "secret") == value
    answers = set()
    for obj in (None, labelled({}, secret=value), labelled({STATE_SECRET_LABEL: "yes"})):
        with pytest.raises(InvalidProvider) as caught:
            referenced_secret_value(obj, "s", "secret")
        answers.add((caught.value.reason, caught.value.message))
    assert len(answers) == 1 and answers.pop()[0] == "SecretNotFound"


def test_the_generated_secret_is_read_only_when_this_provider_owns_it():
    value = "a" * 40
    owned = {**labelled({}, secret=value), "metadata": {"ownerReferences": [{"uid": "u1"}]}}
    assert generated_secret_value(owned, "p-state-secret", "u1") == value
    with pytest.raises(InvalidProvider) as caught:
        generated_secret_value(owned, "p-state-secret", "u2")
    assert caught.value.reason == "SecretNotOwned"


@pytest.mark.parametrize(
    ("annotation", "owner"),
    [
        ("ns/p", ("ns", "p")),
        ("ns/p.v2", ("ns", "p.v2")),
        ("../../x", None),
        ("ns/..", None),
        ("ns", None),
        ("ns/a/b", None),
        ("NS/p", None),
        ("", None),
    ],
)
def test_a_claim_names_a_provider_or_nothing(annotation, owner):
    deployment = {"metadata": {"annotations": {PROVIDER_ANNOTATION: annotation}}}
    assert claimed_by(deployment) == owner

"""spec.accessTokens as the API server validates and defaults it (its CEL rule included)."""

from __future__ import annotations

from tests.kube.conftest import provider
from tests.kube.controlplane import Cli
from tests.kube.test_crd import refused

MESSAGE = "accessTokens must be openrouterKey or bound"


def test_an_unknown_token_mode_is_refused_with_the_rules_message(
    admin: Cli, installed: str
) -> None:
    for value in ("Bound", "openrouter-key"):
        error = refused(admin, installed, issuerURL="https://auth.example.com", accessTokens=value)
        assert MESSAGE in error and "spec.accessTokens" in error


def test_the_token_mode_defaults_to_the_key_and_bound_is_kept(admin: Cli, installed: str) -> None:
    admin.apply(
        installed,
        provider("plain", issuerURL="https://auth.example.com"),
        provider("bound", issuerURL="https://auth.example.com/b", accessTokens="bound"),
    )
    plain = admin.get(installed, "oauthprovider", "plain")
    bound = admin.get(installed, "oauthprovider", "bound")
    assert plain is not None and plain["spec"]["accessTokens"] == "openrouterKey"
    assert bound is not None and bound["spec"]["accessTokens"] == "bound"

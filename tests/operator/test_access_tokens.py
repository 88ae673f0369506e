"""spec.accessTokens: the operator's part of the token mode (ACCESS_TOKENS in the config)."""

from __future__ import annotations

import pytest

from openrouter_oauth.settings import load_settings
from openrouter_oauth_operator import objects, rotation
from openrouter_oauth_operator import spec as provider_spec

A, B = "a" * 40, "b" * 40
DONE = rotation.Rollout(True, "all replicas run the current configuration")


def spec(**fields) -> provider_spec.ProviderSpec:
    return provider_spec.parse_spec(
        {"issuerURL": "https://auth.example.com", **fields}, "openrouter-oauth"
    )


def round_trip(config: rotation.Config) -> rotation.Config | None:
    return rotation.read_config(
        objects.secret_object("cfg", config.data(), config.annotations(), {})
    )


def test_the_default_mode_writes_what_it_always_wrote():
    step = rotation.plan(spec(), A, None, DONE, 1000)
    assert set(step.config.data()) == {"ISSUER_URL", "SECRET", "PREVIOUS_SECRETS"}
    assert rotation.plan(spec(accessTokens="openrouterKey"), A, None, DONE, 1000) == step


def test_bound_mode_is_written_for_the_service_and_read_back():
    step = rotation.plan(spec(accessTokens="bound"), A, None, DONE, 1000)
    data = step.config.data()
    assert data["ACCESS_TOKENS"] == "bound"
    settings = load_settings(
        {
            "ACCESS_TOKENS": data["ACCESS_TOKENS"],
            "RESOURCE_SERVERS": '[{"id":"m","secret":"' + "s" * 32 + '",'
            '"resource":"https://mcp.example.com/mcp"}]',
        },
        port=1,
    )
    assert settings.bound  # the value the service accepts, not a lookalike
    assert round_trip(step.config) == step.config


def test_switching_modes_changes_the_checksum_so_the_pods_roll():
    key_mode = rotation.plan(spec(), A, None, DONE, 1000).config
    bound = rotation.plan(spec(accessTokens="bound"), A, key_mode, DONE, 1001).config
    assert bound.checksum() != key_mode.checksum()
    back = rotation.plan(spec(), A, bound, DONE, 1002).config
    assert "ACCESS_TOKENS" not in back.data() and back.checksum() == key_mode.checksum()


def test_the_mode_survives_a_rotation():
    start = rotation.plan(spec(accessTokens="bound"), A, None, DONE, 1000).config
    accepting = rotation.plan(spec(accessTokens="bound"), B, start, DONE, 1001).config
    assert accepting.phase == rotation.ACCEPTING and accepting.access_tokens == "bound"


@pytest.mark.parametrize("value", ["Bound", "openrouter-key", "", 1, ["bound"]])
def test_an_unknown_mode_is_refused(value):
    with pytest.raises(provider_spec.InvalidProvider) as caught:
        spec(accessTokens=value)
    assert caught.value.reason == "InvalidAccessTokens"

"""The operator's decisions as pure functions."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from openrouter_oauth_operator import reconcile as rc

A, B, C = "a" * 40, "b" * 40, "c" * 40


def spec(**fields) -> rc.ProviderSpec:
    return rc.parse_spec({"issuerURL": "https://auth.example.com", **fields}, "openrouter-oauth")


def secret(**data: str) -> dict:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_defaults():
    parsed = spec()
    assert parsed.deployment == "openrouter-oauth"
    assert parsed.config_secret == "openrouter-oauth-oauth-config"
    assert parsed.secret_name is None and parsed.secret_key == "secret"
    assert parsed.retention_seconds == rc.DEFAULT_RETENTION_SECONDS


@pytest.mark.parametrize(
    ("issuer", "reason"),
    [
        ("", "InvalidIssuerURL"),
        ("auth.example.com", "InvalidIssuerURL"),
        ("http://auth.example.com", "InvalidIssuerURL"),
        ("https://auth.example.com/", "InvalidIssuerURL"),
        ("https://a.example?x=1", "InvalidIssuerURL"),
    ],
)
def test_invalid_issuer(issuer, reason):
    with pytest.raises(rc.InvalidProvider) as caught:
        rc.parse_spec({"issuerURL": issuer}, "d")
    assert caught.value.reason == reason


def test_loopback_http_issuer_is_allowed():
    assert rc.parse_spec({"issuerURL": "http://127.0.0.1:8000"}, "d").issuer_url


def test_retention_below_the_state_lifetime_is_refused():
    with pytest.raises(rc.InvalidProvider, match="at least 600"):
        spec(previousSecretRetentionSeconds=599)


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (None, "SecretNotFound"),
        (secret(other=A), "SecretKeyNotFound"),
        (secret(secret="short"), "WeakSecret"),
        (secret(secret=A + "," + B), "WeakSecret"),
    ],
)
def test_bad_secrets(obj, reason):
    with pytest.raises(rc.InvalidProvider) as caught:
        rc.secret_value(obj, "s", "secret")
    assert caught.value.reason == reason


def test_first_config_has_no_previous_secret():
    config = rc.next_config(spec(), A, None, now=1000)
    assert config.data() == {
        "ISSUER_URL": "https://auth.example.com",
        "SECRET": A,
        "PREVIOUS_SECRETS": "",
    }


def test_rotation_keeps_the_previous_secret_until_retention_ends():
    first = rc.next_config(spec(previousSecretRetentionSeconds=600), A, None, now=1000)
    rotated = rc.next_config(spec(previousSecretRetentionSeconds=600), B, first, now=2000)
    assert rotated.secret == B and rotated.previous == ((A, 2600),)
    again = rc.next_config(spec(previousSecretRetentionSeconds=600), C, rotated, now=2100)
    assert [v for v, _ in again.previous] == [B, A]
    assert rc.next_config(spec(), C, again, now=2599).previous[-1][0] == A
    assert [v for v, _ in rc.next_config(spec(), C, again, now=2601).previous] == [B]


def test_rotating_back_does_not_list_the_current_secret_as_previous():
    rotated = rc.next_config(spec(), B, rc.next_config(spec(), A, None, 0), now=10)
    back = rc.next_config(spec(), A, rotated, now=20)
    assert back.secret == A and [v for v, _ in back.previous] == [B]


def test_emergency_rotation_drops_every_previous_secret():
    rotated = rc.next_config(spec(), B, rc.next_config(spec(), A, None, 0), now=10)
    dropped = rc.next_config(spec(dropPreviousSecrets=True), C, rotated, now=20)
    assert dropped.previous == ()


def test_config_round_trips_through_its_secret_without_exposing_values_in_annotations():
    config = rc.next_config(spec(), B, rc.next_config(spec(), A, None, 0), now=10)
    obj = rc.secret_object(
        "cfg", config.data(), {rc.RETIRED_ANNOTATION: config.retire_annotation()}, {}
    )
    assert rc.read_config(obj) == config
    assert A not in config.retire_annotation()


def test_checksum_changes_with_the_config_only():
    one = rc.next_config(spec(), A, None, 0)
    assert one.checksum() == rc.next_config(spec(), A, None, 99).checksum()
    assert one.checksum() != rc.next_config(spec(), B, None, 0).checksum()


def test_deployment_patch_claims_and_rolls_only_when_needed():
    config = rc.next_config(spec(), A, None, 0)
    patch = rc.deployment_patch({"metadata": {}, "spec": {}}, "ns/p", config)
    assert patch["metadata"]["annotations"][rc.PROVIDER_ANNOTATION] == "ns/p"
    applied = {"metadata": patch["metadata"], "spec": patch["spec"]}
    assert rc.deployment_patch(applied, "ns/p", config) is None
    assert rc.claim_conflict(applied, "ns/other") == "ns/p"
    assert rc.claim_conflict(applied, "ns/p") is None


def test_condition_keeps_its_transition_time_while_status_holds():
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    first = rc.condition(True, "Configured", "m", 1, [], t1)
    same = rc.condition(True, "Configured", "m2", 2, [first], t2)
    flipped = rc.condition(False, "SecretNotFound", "m", 3, [same], t2)
    assert same["lastTransitionTime"] == first["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert flipped["lastTransitionTime"] == "2026-01-02T00:00:00Z"

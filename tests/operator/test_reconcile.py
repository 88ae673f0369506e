"""The operator's decisions as pure functions."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from openrouter_oauth.settings import load_settings
from openrouter_oauth_operator import rotation
from openrouter_oauth_operator.objects import (
    CHECKSUM_ANNOTATION,
    PROVIDER_ANNOTATION,
    claim_conflict,
    deployment_patch,
    rollout_status,
    secret_object,
    secret_value,
)
from openrouter_oauth_operator.rotation import (
    ACCEPTING,
    PENDING,
    SEALING,
    STABLE,
    Config,
    Rollout,
    Step,
    fingerprint,
    read_config,
)
from openrouter_oauth_operator.spec import (
    DEFAULT_RETENTION_SECONDS,
    DEFAULT_SEALING_DEADLINE_SECONDS,
    InvalidProvider,
    ProviderSpec,
    parse_spec,
)
from openrouter_oauth_operator.status import condition, ready_reason, rotation_status

A, B, C = "a" * 40, "b" * 40, "c" * 40


def spec(**fields) -> ProviderSpec:
    return parse_spec({"issuerURL": "https://auth.example.com", **fields}, "openrouter-oauth")


def secret(**data: str) -> dict:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_defaults():
    parsed = spec()
    assert parsed.deployment == "openrouter-oauth"
    assert parsed.config_secret == "openrouter-oauth-oauth-config"
    assert parsed.secret_name is None and parsed.secret_key == "secret"
    assert parsed.retention_seconds == DEFAULT_RETENTION_SECONDS


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
    with pytest.raises(InvalidProvider) as caught:
        parse_spec({"issuerURL": issuer}, "d")
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:8000", "http://127.0.0.2", "http://LOCALHOST:9", "http://[::1]"]
)
def test_loopback_http_issuers_are_allowed_exactly_as_the_service_allows_them(issuer):
    """One rule: the operator imports the service's own check."""
    assert parse_spec({"issuerURL": issuer}, "d").issuer_url == issuer
    assert load_settings({"ISSUER_URL": issuer}, port=1).issuer_url == issuer


def test_retention_below_the_state_lifetime_is_refused():
    with pytest.raises(InvalidProvider, match="at least 600"):
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
    with pytest.raises(InvalidProvider) as caught:
        secret_value(obj, "s", "secret")
    assert caught.value.reason == reason


DONE = Rollout(True, "all 3 replicas run the current configuration")
ROLLING = Rollout(False, "1 of 3 replicas updated")
RETENTION = 600


def plan(desired: str, current: Config | None, rollout=DONE, now=1000, **fields) -> Step:
    fields.setdefault("previousSecretRetentionSeconds", RETENTION)
    return rotation.plan(spec(**fields), desired, current, rollout, now)


def reasons(step: Step) -> list[str]:
    return [event.reason for event in step.events]


def values(config: Config) -> list[str]:
    return [value for value, _ in config.previous]


def stable(secret_: str = A, previous=()) -> Config:
    return Config("https://auth.example.com", secret_, tuple(previous), STABLE, None, 0)


def test_first_config_seals_at_once_with_no_previous_secret():
    step = plan(A, None)
    assert step.config.data() == {
        "ISSUER_URL": "https://auth.example.com",
        "SECRET": A,
        "PREVIOUS_SECRETS": "",
    }
    assert step.config.phase == STABLE and step.events == ()


def test_unchanged_secret_changes_nothing():
    current = stable(A, [(B, 5000)])
    assert plan(A, current) == Step(current)


def test_two_phase_rotation_step_by_step():
    # Phase 1: every pod must accept B while all of them still seal with A.
    accepting = plan(B, stable(A), now=1000)
    assert accepting.config.secret == A and values(accepting.config) == [B]
    assert accepting.config.phase == ACCEPTING and accepting.config.since == 1000
    assert reasons(accepting) == ["RotationAccepting"]
    assert accepting.config.checksum() != stable(A).checksum()  # rolls the Deployment

    # The phase-1 rollout has not finished: some pods do not know B yet.
    waiting = plan(B, accepting.config, ROLLING, now=1100)
    assert waiting == Step(accepting.config)

    # Finished: now every pod opens B, so pods may seal with it.
    sealing = plan(B, accepting.config, DONE, now=1200)
    assert sealing.config.secret == B and sealing.config.previous == ((A, PENDING),)
    assert sealing.config.phase == SEALING and reasons(sealing) == ["RotationSealing"]

    # Pods not yet updated seal with A until the phase-2 rollout is done: A cannot expire.
    assert plan(B, sealing.config, ROLLING, now=99_999) == Step(sealing.config)

    # Done: A's retention starts now; the phase change alone does not roll the Deployment.
    rotated = plan(B, sealing.config, DONE, now=1300)
    assert rotated.config.previous == ((A, 1300 + RETENTION),)
    assert rotated.config.phase == STABLE and reasons(rotated) == ["Rotated"]
    assert rotated.config.checksum() == sealing.config.checksum()

    # Retention over: A is no longer accepted.
    assert plan(B, rotated.config, now=1300 + RETENTION - 1).config == rotated.config
    expired = plan(B, rotated.config, now=1300 + RETENTION)
    assert expired.config.previous == () and reasons(expired) == ["PreviousSecretRetired"]


def test_a_new_rotation_during_phase_1_replaces_the_one_never_sealed_with():
    accepting = plan(B, stable(A, [(C, 5000)])).config
    again = plan(C + "d", accepting, ROLLING, now=1100)
    assert again.config.secret == A
    # B opened nothing (no pod sealed with it): it goes; retained C stays.
    assert values(again.config) == [C + "d", C]
    assert again.config.target == fingerprint(C + "d") and again.config.since == 1100
    assert reasons(again) == ["RotationAccepting"]


def test_a_new_rotation_during_phase_2_keeps_every_secret_that_may_have_sealed():
    sealing = plan(B, plan(B, stable(A)).config, DONE).config
    accepting = plan(C, sealing, ROLLING, now=1100).config
    assert accepting.secret == B and values(accepting) == [C, A]
    sealed = plan(C, accepting, DONE, now=1200).config
    assert sealed.secret == C and sealed.previous == ((B, PENDING), (A, PENDING))
    rotated = plan(C, sealed, DONE, now=1300).config
    assert rotated.previous == ((B, 1300 + RETENTION), (A, 1300 + RETENTION))


def test_setting_the_secret_back_during_phase_1_cancels_the_rotation():
    accepting = plan(B, stable(A, [(C, 5000)])).config
    cancelled = plan(A, accepting, ROLLING, now=1100)
    assert cancelled.config.secret == A and cancelled.config.previous == ((C, 5000),)
    assert cancelled.config.phase == STABLE and reasons(cancelled) == ["RotationCancelled"]


def test_cancelling_after_an_unfinished_phase_2_waits_for_the_rollout_before_retention():
    sealing = plan(B, plan(B, stable(A)).config, DONE).config  # some pods may still seal with A
    accepting = plan(C, sealing, ROLLING).config
    cancelled = plan(B, accepting, ROLLING, now=1100).config
    assert cancelled.secret == B and cancelled.previous == ((A, PENDING),)
    assert cancelled.phase == SEALING
    assert plan(B, cancelled, DONE, now=1200).config.previous == ((A, 1200 + RETENTION),)


def test_an_issuer_change_during_phase_1_keeps_the_phase_and_rolls_again():
    accepting = plan(B, stable(A)).config
    moved = plan(B, accepting, ROLLING, issuerURL="https://new.example.com")
    assert moved.config.issuer_url == "https://new.example.com" and moved.events == ()
    assert moved.config.phase == ACCEPTING and moved.config.secret == A
    assert moved.config.checksum() != accepting.checksum()


def test_rotating_back_to_a_retained_secret_keeps_its_retirement_and_needs_no_roll():
    current = stable(B, [(A, 5000)])
    accepting = plan(A, current).config
    assert accepting.phase == ACCEPTING and accepting.previous == ((A, 5000),)
    assert accepting.checksum() == current.checksum()  # every pod already accepts A
    # Past A's retirement it is still kept: it is the secret being rotated in.
    sealing = plan(A, accepting, DONE, now=6000).config
    assert sealing.secret == A and sealing.previous == ((B, PENDING),)


def test_a_superseded_rotation_back_keeps_the_retained_secret_until_it_retires():
    accepting = plan(A, stable(B, [(A, 5000)])).config
    again = plan(C, accepting, ROLLING).config
    assert again.previous == ((C, PENDING), (A, 5000))


def test_emergency_drop_during_a_rotation_seals_with_the_new_secret_at_once():
    accepting = plan(B, stable(A, [(C, 5000)])).config
    dropped = plan(B, accepting, ROLLING, dropPreviousSecrets=True)
    assert dropped.config.secret == B and dropped.config.previous == ()
    assert dropped.config.phase == STABLE
    assert [(e.reason, e.warning) for e in dropped.events] == [("PreviousSecretsDropped", True)]
    # The flag stays set: nothing more happens, and a later rotation is immediate too.
    assert plan(B, dropped.config, dropPreviousSecrets=True) == Step(dropped.config)
    assert plan(C, dropped.config, dropPreviousSecrets=True).config.secret == C


def test_emergency_drop_without_a_new_secret_empties_previous_secrets():
    dropped = plan(A, stable(A, [(B, 5000)]), dropPreviousSecrets=True)
    assert dropped.config == Config("https://auth.example.com", A, (), STABLE, None, 1000)


def stored(config: Config) -> Config | None:
    """The config as an operator started afresh reads it back from the config Secret."""
    return read_config(secret_object("cfg", config.data(), config.annotations(), {}))


def test_an_operator_restarted_mid_rotation_resumes_from_the_secret():
    accepting = plan(B, stable(A, [(C, 5000)])).config
    sealing = plan(B, accepting).config
    assert stored(accepting) == accepting and stored(sealing) == sealing
    # Nothing held in memory: the next phase follows from what was stored.
    assert plan(B, stored(accepting), ROLLING) == Step(accepting)
    assert plan(B, stored(accepting), DONE).config == sealing
    assert plan(B, stored(sealing), DONE).config.phase == STABLE


def test_a_config_without_rotation_annotations_reads_as_stable_and_keeps_its_secrets():
    obj = secret_object(
        "cfg",
        {"ISSUER_URL": "https://auth.example.com", "SECRET": B, "PREVIOUS_SECRETS": A},
        {},
        {},
    )
    current = read_config(obj)
    assert current.phase == STABLE and current.previous == ((A, PENDING),)
    # An unknown retirement time gets a full retention, not an immediate drop.
    assert plan(B, current, now=1000).config.previous == ((A, 1000 + RETENTION),)


def test_a_missing_deployment_never_advances_a_rotation():
    accepting = plan(B, stable(A)).config
    missing = rollout_status(None, accepting.checksum())
    assert not missing.done
    assert plan(B, accepting, missing) == Step(accepting)


def test_config_round_trips_through_its_secret_without_exposing_values_in_annotations():
    config = plan(B, plan(B, stable(A)).config).config
    annotations = config.annotations()
    obj = secret_object("cfg", config.data(), annotations, {})
    assert read_config(obj) == config
    assert not any(A in v or B in v for v in annotations.values())


def test_checksum_changes_with_the_data_only():
    one = plan(A, None).config
    assert one.checksum() == plan(A, None, now=99).config.checksum()
    assert one.checksum() != plan(B, None).config.checksum()


def _deployment(status: dict, checksum="c", wanted=3, generation=2) -> dict:
    return {
        "metadata": {"generation": generation},
        "spec": {
            "replicas": wanted,
            "template": {"metadata": {"annotations": {CHECKSUM_ANNOTATION: checksum}}},
        },
        "status": {"observedGeneration": 2, **status},
    }


FULL = {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
STUCK = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]


@pytest.mark.parametrize(
    ("deployment", "done", "message"),
    [
        (None, False, "does not exist"),
        (_deployment(FULL, checksum="other"), False, "current configuration yet"),
        (_deployment(FULL, generation=3), False, "not observed"),
        (_deployment({**FULL, "updatedReplicas": 1, "replicas": 4}), False, "1 of 3 replicas"),
        (_deployment({**FULL, "replicas": 4}), False, "1 old replicas"),
        (_deployment({**FULL, "availableReplicas": 2}), False, "2 of 3 updated"),
        (_deployment({**FULL, "conditions": STUCK}), False, "stuck"),
        (_deployment(FULL), True, "all 3 replicas"),
        (_deployment({}, wanted=0), True, "all 0 replicas"),
        ({**_deployment(FULL), "status": {}}, False, "not observed"),
        (
            _deployment(
                {**FULL, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}, wanted=None
            ),
            True,
            "all 1",
        ),
    ],
)
def test_rollout_status_follows_deployment_semantics(deployment, done, message):
    rollout = rollout_status(deployment, "c")
    assert rollout.done is done and message in rollout.message


def test_a_paused_deployment_is_not_rolled_out():
    paused = _deployment(FULL)
    paused["spec"]["paused"] = True
    assert not rollout_status(paused, "c").done


def test_ready_reason_and_rotation_status_name_the_phase_and_no_secret():
    accepting = plan(B, stable(A)).config
    ready = ready_reason(spec(), accepting, 1000)
    assert ready.reason == "RotationAccepting" and "phase 1 of 2" in ready.message
    assert not ready.warning
    status = rotation_status(accepting, "1 of 3 replicas updated")
    assert status == {
        "phase": "Accepting",
        "since": "1970-01-01T00:16:40Z",
        "previousSecrets": 1,
        "rollout": "1 of 3 replicas updated",
    }
    assert ready_reason(spec(), stable(A), 1000).reason == "Configured"
    assert "since" not in rotation_status(stable(A), "")  # stored by an older operator


def test_deployment_patch_claims_and_rolls_only_when_needed():
    config = plan(A, None).config
    patch = deployment_patch({"metadata": {}, "spec": {}}, "ns/p", config)
    assert patch["metadata"]["annotations"][PROVIDER_ANNOTATION] == "ns/p"
    applied = {"metadata": patch["metadata"], "spec": patch["spec"]}
    assert deployment_patch(applied, "ns/p", config) is None
    assert claim_conflict(applied, "ns/other") == ("ns", "p")
    assert claim_conflict(applied, "ns/p") is None


def test_condition_keeps_its_transition_time_while_status_holds():
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    first = condition(True, "Configured", "m", 1, [], t1)
    same = condition(True, "Configured", "m2", 2, [first], t2)
    flipped = condition(False, "SecretNotFound", "m", 3, [same], t2)
    assert same["lastTransitionTime"] == first["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert flipped["lastTransitionTime"] == "2026-01-02T00:00:00Z"


def test_a_sealing_phase_past_its_deadline_is_a_warning_that_points_to_the_emergency_drop():
    sealing = plan(B, plan(B, stable(A)).config, DONE, now=1000).config
    assert sealing.phase == SEALING and sealing.since == 1000
    limit = DEFAULT_SEALING_DEADLINE_SECONDS
    on_time = ready_reason(spec(), sealing, 1000 + limit)
    assert (on_time.reason, on_time.warning) == ("RotationSealing", False)
    late = ready_reason(spec(), sealing, 1000 + limit + 1)
    assert (late.reason, late.warning) == ("SealingDeadlineExceeded", True)
    assert "previous secret stays readable" in late.message
    assert "spec.dropPreviousSecrets" in late.message
    # The limit is the provider's; a deadline shorter than a minute is refused.
    short = spec(sealingDeadlineSeconds=60)
    assert ready_reason(short, sealing, 1061).reason == "SealingDeadlineExceeded"
    with pytest.raises(InvalidProvider, match="at least 60"):
        spec(sealingDeadlineSeconds=59)


def test_only_sealing_has_a_deadline_and_an_unknown_start_never_passes_it():
    far = 10**9
    accepting = plan(B, stable(A), now=1000).config
    assert ready_reason(spec(), accepting, far).reason == "RotationAccepting"
    assert ready_reason(spec(), stable(A), far).reason == "Configured"
    sealing = plan(B, accepting, DONE, now=1000).config
    unknown = Config(sealing.issuer_url, sealing.secret, sealing.previous, SEALING)
    assert ready_reason(spec(), unknown, far).reason == "RotationSealing"

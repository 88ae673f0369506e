import pytest

from openrouter_oauth.sealing import Sealer, SealError

A, B = "a" * 40, "b" * 40


def test_round_trip_and_purpose_binding():
    sealer = Sealer(A)
    sealed = sealer.seal("code", {"x": 1}, ttl=60)
    assert sealer.open("code", sealed) == {"x": 1}
    with pytest.raises(SealError, match="another purpose"):
        sealer.open("consent", sealed)


def test_expiry_is_enforced_on_open():
    now = [1000.0]
    sealer = Sealer(A, clock=lambda: now[0])
    sealed = sealer.seal("code", {}, ttl=600)
    now[0] += 599
    assert sealer.open("code", sealed) == {}
    now[0] += 2
    with pytest.raises(SealError, match="expired"):
        sealer.open("code", sealed)


@pytest.mark.parametrize("position", [0, 20, 60, -30, -2])
def test_any_tampering_is_refused(position):
    sealer = Sealer(A)
    sealed = sealer.seal("code", {"x": 1}, ttl=60)
    at = position % len(sealed)
    flipped = "A" if sealed[at] != "A" else "B"
    tampered = sealed[:at] + flipped + sealed[at + 1 :]
    with pytest.raises(SealError):
        sealer.open("code", tampered)


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c.d.e", "....", "eyJ9.e.e.e.e"])
def test_garbage_is_refused(garbage):
    with pytest.raises(SealError):
        Sealer(A).open("code", garbage)


def test_rotation_reads_previous_secrets_and_writes_the_current():
    old = Sealer(A).seal("client", {"n": "x"})
    rotated = Sealer(B, previous=[A])
    assert rotated.open("client", old) == {"n": "x"}
    new = rotated.seal("client", {"n": "y"})
    with pytest.raises(SealError, match="unknown key"):
        Sealer(A).open("client", new)
    with pytest.raises(SealError, match="unknown key"):
        Sealer(B).open("client", old)


def test_secret_is_not_in_the_header():
    sealed = Sealer(A).seal("client", {})
    assert A not in sealed and "aaaa" not in sealed.split(".")[0]

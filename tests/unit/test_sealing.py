import base64
import json
import os

import pytest

from openrouter_oauth.sealing import Sealer, SealError

ISSUER = "https://auth.example"

A, B = "a" * 40, "b" * 40


def test_round_trip_and_purpose_binding():
    sealer = Sealer(A, issuer=ISSUER)
    sealed = sealer.seal("code", {"x": 1}, ttl=60)
    assert sealer.open("code", sealed) == {"x": 1}
    with pytest.raises(SealError, match="another purpose"):
        sealer.open("consent", sealed)


def test_expiry_is_enforced_on_open():
    now = [1000.0]
    sealer = Sealer(A, issuer=ISSUER, clock=lambda: now[0])
    sealed = sealer.seal("code", {}, ttl=600)
    now[0] += 599
    assert sealer.open("code", sealed) == {}
    now[0] += 2
    with pytest.raises(SealError, match="expired"):
        sealer.open("code", sealed)


@pytest.mark.parametrize("position", [0, 20, 60, -30, -2])
def test_any_tampering_is_refused(position):
    sealer = Sealer(A, issuer=ISSUER)
    sealed = sealer.seal("code", {"x": 1}, ttl=60)
    at = position % len(sealed)
    flipped = "A" if sealed[at] != "A" else "B"
    tampered = sealed[:at] + flipped + sealed[at + 1 :]
    with pytest.raises(SealError):
        sealer.open("code", tampered)


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c.d.e", "....", "eyJ9.e.e.e.e"])
def test_garbage_is_refused(garbage):
    with pytest.raises(SealError):
        Sealer(A, issuer=ISSUER).open("code", garbage)


def test_rotation_reads_previous_secrets_and_writes_the_current():
    old = Sealer(A, issuer=ISSUER).seal("client", {"n": "x"})
    rotated = Sealer(B, previous=[A], issuer=ISSUER)
    assert rotated.open("client", old) == {"n": "x"}
    new = rotated.seal("client", {"n": "y"})
    with pytest.raises(SealError, match="unknown key"):
        Sealer(A, issuer=ISSUER).open("client", new)
    with pytest.raises(SealError, match="unknown key"):
        Sealer(B, issuer=ISSUER).open("client", old)


def test_secret_is_not_in_the_header():
    sealed = Sealer(A, issuer=ISSUER).seal("client", {})
    assert A not in sealed and "aaaa" not in sealed.split(".")[0]


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_records_are_standard_compact_jwe_both_ways():
    """RFC 7516 dir + A256GCM built by hand: what any conformant library (such as the
    jwcrypto that earlier releases used) writes opens here, and the reverse."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from openrouter_oauth.sealing import _hkdf

    key = _hkdf(A, b"state sealing")
    sealer = Sealer(A, issuer=ISSUER)
    header_b64, encrypted_key, iv, ciphertext, tag = sealer.seal("code", {"x": 1}).split(".")
    assert encrypted_key == "" and json.loads(_b64d(header_b64))["alg"] == "dir"
    plaintext = AESGCM(key).decrypt(_b64d(iv), _b64d(ciphertext) + _b64d(tag), header_b64.encode())
    assert json.loads(plaintext)["d"] == {"x": 1}

    kid = json.loads(_b64d(header_b64))["kid"]
    header = _b64e(json.dumps({"alg": "dir", "enc": "A256GCM", "kid": kid}).encode())
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(
        nonce, json.dumps({"p": "code", "i": ISSUER, "d": {"y": 2}}).encode(), header.encode()
    )
    token = ".".join([header, "", _b64e(nonce), _b64e(sealed[:-16]), _b64e(sealed[-16:])])
    assert sealer.open("code", token) == {"y": 2}


def test_values_sealed_for_another_issuer_are_refused():
    """Two issuers sharing a secret (and an etcd prefix) must not accept each other's
    client_ids, tickets or codes."""
    theirs = Sealer(A, issuer="https://other.example").seal("client", {"n": "x"})
    with pytest.raises(SealError, match="another issuer"):
        Sealer(A, issuer=ISSUER).open("client", theirs)


def test_values_sealed_without_an_issuer_are_refused():
    """What earlier releases sealed names no issuer: such client_ids get invalid_client,
    and MCP clients register again."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from openrouter_oauth.sealing import _hkdf

    kid = json.loads(_b64d(Sealer(A, issuer=ISSUER).seal("client", {}).split(".")[0]))["kid"]
    header = _b64e(json.dumps({"alg": "dir", "enc": "A256GCM", "kid": kid}).encode())
    nonce = os.urandom(12)
    body = AESGCM(_hkdf(A, b"state sealing")).encrypt(
        nonce, json.dumps({"p": "client", "d": {"n": "x"}}).encode(), header.encode()
    )
    legacy = ".".join([header, "", _b64e(nonce), _b64e(body[:-16]), _b64e(body[-16:])])
    with pytest.raises(SealError, match="another issuer"):
        Sealer(A, issuer=ISSUER).open("client", legacy)

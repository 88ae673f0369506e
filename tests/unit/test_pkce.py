from openrouter_oauth import pkce


def test_rfc7636_appendix_b_example():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce.s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verify_accepts_only_the_matching_verifier():
    verifier = pkce.new_verifier()
    challenge = pkce.s256(verifier)
    assert pkce.is_valid_verifier(verifier) and pkce.is_valid_challenge(challenge)
    assert pkce.verify(verifier, challenge)
    assert not pkce.verify(pkce.new_verifier(), challenge)
    assert not pkce.verify(challenge, challenge)  # "plain" is not accepted


def test_malformed_verifiers_never_match():
    for bad in ("", "short", "a" * 129, "a" * 42 + " ", "ü" * 50):
        assert not pkce.verify(bad, pkce.s256(bad) if bad.isascii() else "x" * 43)

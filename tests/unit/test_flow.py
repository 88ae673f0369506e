import pytest

from openrouter_oauth import flow, keyinfo, pkce
from openrouter_oauth.clients import Client
from openrouter_oauth.errors import InvalidGrant, InvalidRequest, InvalidTarget
from openrouter_oauth.resources import canonical_resource

CLIENT = Client("app.example", "domain", "app.example", "app.example")
CHALLENGE_VERIFIER = pkce.new_verifier()


def params(**values):
    base = {
        "response_type": "code",
        "client_id": "app.example",
        "redirect_uri": "https://app.example/cb",
        "code_challenge": pkce.s256(CHALLENGE_VERIFIER),
        "code_challenge_method": "S256",
        "state": "s",
    }
    base.update(values)
    return {k: [v] for k, v in base.items() if v is not None}


def test_repeated_parameters_are_refused():
    with pytest.raises(InvalidRequest, match="repeated"):
        flow.param({"state": ["a", "b"]}, "state")


def test_redirect_uri_defaults_only_with_exactly_one_registered():
    one = Client("c", "registered", "n", "i", ("https://a.example/cb",))
    assert flow.redirect_uri_for(one, {}) == "https://a.example/cb"


def test_request_is_recorded_whole():
    request = flow.authorization_request(
        CLIENT, "https://app.example/cb", params(scope="openrouter", resource="https://r.example/")
    )
    again = flow.AuthorizationRequest.from_record(request.to_record())
    assert again == request and again.resource == "https://r.example/"


def test_client_redirect_carries_each_parameter_once():
    url = flow.client_redirect(
        "https://issuer.example", "https://app.example/cb?x=1", "st", code="c"
    )
    assert url == "https://app.example/cb?x=1&code=c&state=st&iss=https%3A%2F%2Fissuer.example"


def grant():
    return flow.authorization_request(CLIENT, "https://app.example/cb", params())


def token(**values):
    form = {
        "grant_type": "authorization_code",
        "client_id": "app.example",
        "code": "c",
        "code_verifier": CHALLENGE_VERIFIER,
        "redirect_uri": "https://app.example/cb",
    }
    form.update(values)
    return flow.token_request({k: [v] for k, v in form.items() if v is not None})


def test_redemption_checks_client_redirect_and_verifier():
    flow.check_redemption(token(), grant())
    flow.check_redemption(token(redirect_uri=None), grant())
    for bad in (
        token(client_id="other.example"),
        token(redirect_uri="https://app.example/x"),
        token(code_verifier=pkce.new_verifier()),
    ):
        with pytest.raises(InvalidGrant):
            flow.check_redemption(bad, grant())


def test_me_response_keeps_the_original_fields():
    body = keyinfo.me_response(
        "sk-or-v1-abcdef1234567",
        {"usage": 1.5, "limit_remaining": None, "label": "L", "limit": None},
    )
    assert body["id"] == body["username"] == "1234567"
    assert body["name"] == "OpenRouter User"
    assert body["usage"] == 1.5 and body["balance"] is None and body["label"] == "L"


def test_only_the_granted_scope_is_named_whatever_was_asked():
    """Requested scopes are accepted (clients send openid, offline_access, …) but the
    token response names only what the key grants."""
    flow.authorization_request(
        CLIENT, "https://app.example/cb", params(scope="admin openid offline_access")
    )
    assert flow.token_response("sk-or-v1-x")["scope"] == flow.GRANTED_SCOPE == "openrouter"
    with pytest.raises(InvalidRequest, match="longer than"):
        flow.authorization_request(CLIENT, "https://app.example/cb", params(scope="s" * 2049))


@pytest.mark.parametrize(
    "resource", ["https://r.example:99999/mcp", "https://r.example:port/mcp", "https://[::1/mcp"]
)
def test_a_resource_that_cannot_be_parsed_is_invalid_target(resource):
    """Wherever a client's resource is read (/authorize, /token, refresh), never a 500."""
    with pytest.raises(InvalidTarget):
        flow.check_resource(resource)
    with pytest.raises(InvalidTarget):
        canonical_resource(resource)

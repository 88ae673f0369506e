"""/introspect (RFC 7662): resource servers check keys with their own credentials."""

from __future__ import annotations

import asyncio
from urllib.parse import quote_plus, unquote

import httpx
import pytest

from .flows import authorized

CALLER, SECRET = "mcp-server", "introspection-secret-" + "z" * 20
OTHER, OTHER_SECRET = "second", "another-introspection-secret-" + "y" * 10
# RFC 6749 §2.3.1: characters that Basic's form-encoding changes.
ODD, ODD_SECRET = "odd caller+1", "se%2Fcret+with/odd%chars " + "o" * 20
CREDENTIALS = f"{CALLER}:{SECRET},{OTHER}:{OTHER_SECRET},{ODD}:{ODD_SECRET}"


@pytest.fixture
def introspecting(start_service):
    return start_service(INTROSPECTION_CREDENTIALS=CREDENTIALS, RATE_LIMITS="me=1/min")


async def test_absent_unless_configured(http, service):
    meta = (await http.get(f"{service.url}/.well-known/oauth-authorization-server")).json()
    assert "introspection_endpoint" not in meta
    response = await http.post(
        f"{service.url}/introspect", data={"token": "x"}, auth=(CALLER, SECRET)
    )
    assert response.status_code == 404


async def test_advertised_when_configured(http, introspecting):
    meta = (await http.get(f"{introspecting.url}/.well-known/oauth-authorization-server")).json()
    assert meta["introspection_endpoint"] == f"{introspecting.url}/introspect"
    assert meta["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    paths = (await http.get(f"{introspecting.url}/openapi.json")).json()["paths"]
    assert "/introspect" in paths


@pytest.mark.parametrize(
    "auth",
    [None, (CALLER, "wrong-" + SECRET), (OTHER, SECRET), ("nobody", SECRET), (CALLER, "")],
)
async def test_callers_must_authenticate(http, introspecting, auth):
    response = await http.post(f"{introspecting.url}/introspect", data={"token": "x"}, auth=auth)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_basic_credentials_are_form_decoded_as_the_rfc_says(http, introspecting):
    """Sent form-encoded (RFC 6749 §2.3.1) or raw, a secret with + % / and spaces works;
    any other reading does not."""
    encoded = (quote_plus(ODD), quote_plus(ODD_SECRET))
    for auth in (encoded, (ODD, ODD_SECRET)):
        response = await http.post(
            f"{introspecting.url}/introspect", data={"token": "x"}, auth=auth
        )
        assert response.status_code == 200, auth
        assert response.json() == {"active": False}
    for wrong in ((quote_plus(ODD), ODD_SECRET.replace("+", " ")), (ODD, unquote(ODD_SECRET))):
        response = await http.post(
            f"{introspecting.url}/introspect", data={"token": "x"}, auth=wrong
        )
        assert response.status_code == 401, wrong


async def test_a_working_key_is_active_and_described(http, introspecting, fake):
    grant = await authorized(http, introspecting.url)
    key = (await grant.redeem(http)).json()["access_token"]
    response = await http.post(
        f"{introspecting.url}/introspect",
        data={"token": key, "token_type_hint": "access_token"},
        auth=(CALLER, SECRET),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True and body["token_type"] == "Bearer"
    assert body["scope"] == "openrouter"
    assert "label" in body and "limit_remaining" in body and "usage" in body
    assert key not in response.text


async def test_client_secret_post_works_too(http, introspecting, fake):
    key = fake.issue_key(label="posted")
    response = await http.post(
        f"{introspecting.url}/introspect",
        data={"token": key, "client_id": OTHER, "client_secret": OTHER_SECRET},
    )
    assert response.json()["active"] is True and response.json()["label"] == "posted"


@pytest.mark.parametrize("token", ["sk-or-v1-unknown", "not a key", "k" * 600])
async def test_anything_else_is_inactive(http, introspecting, token):
    response = await http.post(
        f"{introspecting.url}/introspect", data={"token": token}, auth=(CALLER, SECRET)
    )
    assert response.status_code == 200 and response.json() == {"active": False}


async def test_a_token_is_required(http, introspecting):
    response = await http.post(f"{introspecting.url}/introspect", data={}, auth=(CALLER, SECRET))
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_one_upstream_check_per_key_and_no_anonymous_limits(introspecting, fake):
    """Fifty concurrent introspections of one new key make one call to OpenRouter, and a
    known caller is not held to the anonymous /me limit (here me=1/min)."""
    key = fake.issue_key()
    before = fake.requests["/api/v1/key"]
    async with httpx.AsyncClient(timeout=20) as http:
        answers = await asyncio.gather(
            *(
                http.post(
                    f"{introspecting.url}/introspect", data={"token": key}, auth=(CALLER, SECRET)
                )
                for _ in range(50)
            )
        )
        others = [fake.issue_key() for _ in range(5)]
        for other in others:
            response = await http.post(
                f"{introspecting.url}/introspect", data={"token": other}, auth=(CALLER, SECRET)
            )
            assert response.json()["active"] is True
    assert all(a.json()["active"] is True for a in answers)
    assert fake.requests["/api/v1/key"] - before == 1 + len(others)


async def test_credentials_never_reach_the_log(http, introspecting, fake):
    await http.post(
        f"{introspecting.url}/introspect", data={"token": fake.issue_key()}, auth=(CALLER, SECRET)
    )
    await http.post(
        f"{introspecting.url}/introspect", data={"token": "x"}, auth=(CALLER, "bad" * 12)
    )
    assert SECRET not in introspecting.log() and "bad" * 12 not in introspecting.log()

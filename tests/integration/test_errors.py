"""Bad, hostile and replayed input: each gets a clear standard error, never a 500."""

from __future__ import annotations

import asyncio

import pytest

from openrouter_oauth import pkce
from tests.harness import Browser, authorize_url, form_fields, query_of

from .flows import REDIRECT, approved, authorized, openrouter_callback, register

# -- registration -------------------------------------------------------------


async def test_registration_echoes_metadata_and_accepts_extra_fields(http, service):
    body = {
        "redirect_uris": [REDIRECT, "cursor://anysphere.cursor-retrieval/oauth/cb"],
        "client_name": "Cursor",
        "application_type": "native",
        "scope": "",
        "client_uri": "https://cursor.com",
        "grant_types": ["authorization_code", "refresh_token"],
    }
    response = await http.post(f"{service.url}/register", json=body)
    assert response.status_code == 201
    registered = response.json()
    assert registered["redirect_uris"] == body["redirect_uris"]
    assert registered["client_name"] == "Cursor"
    assert registered["application_type"] == "native"
    assert registered["client_uri"] == "https://cursor.com"
    assert registered["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in registered
    assert registered["client_id"].startswith("mcp_")


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:x",
        "data:text/html,hi",
        "vbscript:x",
        "file:///etc/passwd",
        "http://evil.example/cb",
        "https://app.example/cb#frag",
        "https://user@app.example/cb",
        "",
    ],
)
async def test_registration_refuses_dangerous_redirect_uris(http, service, uri):
    response = await http.post(f"{service.url}/register", json={"redirect_uris": [uri]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "invalid_redirect_uri"),
        ({"redirect_uris": "https://a.example/cb"}, "invalid_redirect_uri"),
        (
            {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"},
            "invalid_client_metadata",
        ),
        (
            {"redirect_uris": [REDIRECT], "grant_types": ["client_credentials"]},
            "invalid_client_metadata",
        ),
        ([1, 2], "invalid_client_metadata"),
    ],
)
async def test_registration_refuses_bad_metadata(http, service, body, error):
    response = await http.post(f"{service.url}/register", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_malformed_and_oversized_bodies_get_json_errors(http, service):
    malformed = await http.post(
        f"{service.url}/register",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"] in ("invalid_request", "invalid_client_metadata")
    huge = await http.post(
        f"{service.url}/register",
        content=b"x" * (200 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert huge.json()["error"] == "invalid_request"
    unknown = await http.get(f"{service.url}/nope")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    for response in (malformed, huge, unknown):
        assert "Traceback" not in response.text


async def test_malformed_form_bodies_are_the_callers_fault(http, start_service):
    """Invalid UTF-8 in a form: 400 naming the problem, one info line, no traceback."""
    service = start_service(store="memory", INTROSPECTION_CREDENTIALS="rs:" + "s" * 32)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for path in ("/token", "/introspect"):
        response = await http.post(f"{service.url}{path}", content=b"\xff\xfe=\xc3", headers=form)
        assert response.status_code == 400, path
        assert response.json() == {
            "error": "invalid_request",
            "error_description": "the form body is not valid UTF-8",
        }
    page = await http.post(
        f"{service.url}/authorize",
        content=b"ticket=\xff",
        headers={**form, "Accept": "text/html"},
    )
    assert page.status_code == 400 and "text/html" in page.headers["content-type"]
    multipart = await http.post(
        f"{service.url}/authorize",
        content=b"--x\r\n",
        headers={"Content-Type": "multipart/form-data", "Accept": "text/html"},
    )
    assert multipart.status_code in (400, 403)
    log = service.log()
    assert "Traceback" not in log and '"level": "error"' not in log
    assert "parsing form" not in log


# -- /authorize before the redirect URI is trusted: a page, never a redirect ---------


@pytest.mark.parametrize(
    "client_id",
    [
        "",
        "mcp_not-a-real-id",
        "not a domain",
        "https://localhost/client.json",
        "EXAMPLE.com",
    ],
)
async def test_unknown_client_gets_a_readable_page(http, service, client_id):
    url = authorize_url(service.url, client_id, REDIRECT, pkce.s256(pkce.new_verifier()))
    response = await http.get(url)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "not recognised" in response.text
    assert "location" not in response.headers


async def test_tampered_client_id_is_refused(http, service):
    client_id = await register(http, service.url)
    tampered = client_id[:-6] + ("A" if client_id[-6] != "A" else "B") + client_id[-5:]
    url = authorize_url(service.url, tampered, REDIRECT, pkce.s256(pkce.new_verifier()))
    response = await http.get(url)
    assert response.status_code == 400 and "not recognised" in response.text


@pytest.mark.parametrize(
    "redirect",
    [
        "https://attacker.example/cb",
        "http://127.0.0.1:5555/other",
        "javascript:alert(1)",
        "http://127.0.0.1.attacker.example:5555/callback",
    ],
)
async def test_open_redirect_attempts_are_shown_not_followed(http, service, redirect):
    client_id = await register(http, service.url)
    url = authorize_url(service.url, client_id, redirect, pkce.s256(pkce.new_verifier()))
    response = await http.get(url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "cannot be trusted" in response.text


async def test_loopback_redirect_matches_on_any_port(http, service):
    client_id = await register(http, service.url)
    grant = await authorized(http, service.url, client_id, "http://127.0.0.1:61234/callback")
    assert (await grant.redeem(http)).status_code == 200


async def test_domain_client_id_needs_https_on_that_host(http, service):
    ok = authorize_url(
        service.url, "app.example", "https://app.example/cb", pkce.s256(pkce.new_verifier())
    )
    assert (await http.get(ok)).status_code == 200
    other = authorize_url(
        service.url, "app.example", "https://evil.example/cb", pkce.s256(pkce.new_verifier())
    )
    assert (await http.get(other)).status_code == 400
    local = authorize_url(
        service.url, "localhost", "http://localhost:9999/cb", pkce.s256(pkce.new_verifier())
    )
    assert (await http.get(local)).status_code == 200


# -- /authorize before the person decides: errors are shown, never redirected -------


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"code_challenge": ""}, "code_challenge is required"),
        ({"code_challenge_method": "plain"}, "code_challenge_method must be S256"),
        ({"code_challenge": "short"}, "not a valid S256 challenge"),
        ({"response_type": "token"}, "only response_type=code"),
        ({"resource": "not-absolute"}, "resource must be an absolute URI"),
    ],
)
async def test_request_errors_are_shown_not_redirected(http, service, override, error):
    """Anyone can register any redirect URI, so before the person has acted no error may
    send the browser there (that would be an open redirector)."""
    client_id = await register(http, service.url)
    url = authorize_url(
        service.url, client_id, REDIRECT, pkce.s256(pkce.new_verifier()), **override
    )
    response = await http.get(url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert error in response.text


# -- consent ------------------------------------------------------------------


async def consent_page(http, service):
    client_id = await register(http, service.url)
    url = authorize_url(service.url, client_id, REDIRECT, pkce.s256(pkce.new_verifier()))
    return await Browser(http).open_consent(url)


async def test_consent_page_names_the_client_and_destination(http, service):
    page = await consent_page(http, service)
    assert "Test Client" in page.text and REDIRECT in page.text
    assert '<button type="submit" name="action" value="approve"' in page.text
    assert '<button type="submit" name="action" value="deny"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


async def test_deny_redirects_access_denied(http, service):
    page = await consent_page(http, service)
    response = await Browser(http).decide(page, "deny")
    assert response.status_code == 303
    params = query_of(response.headers["location"])
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["st-123"] and params["iss"] == [service.url]


async def test_double_submission_is_answered_once(http, service):
    """Approve twice (a double click, or a retry after an error): the same decision, so the
    same OpenRouter link; a different answer afterwards is refused."""
    page = await consent_page(http, service)
    browser = Browser(http)
    first = await browser.decide(page, "approve")
    assert first.status_code == 303
    again = await browser.decide(page, "approve")
    assert again.status_code == 303
    assert again.headers["location"] == first.headers["location"]
    deny_after = await browser.decide(page, "deny")
    assert deny_after.status_code == 409


async def test_cross_site_post_without_the_cookie_is_refused(http, service):
    page = await consent_page(http, service)
    ticket = form_fields(page.text)["ticket"]
    import httpx

    async with httpx.AsyncClient() as attacker:  # no consent cookie
        response = await attacker.post(
            f"{service.url}/authorize", data={"ticket": ticket, "action": "approve"}
        )
    assert response.status_code == 403
    assert "location" not in response.headers


async def test_tampered_ticket_is_refused(http, service):
    page = await consent_page(http, service)
    ticket = form_fields(page.text)["ticket"]
    response = await http.post(
        f"{service.url}/authorize", data={"ticket": ticket[:-4] + "AAAA", "action": "approve"}
    )
    assert response.status_code == 400 and "expired" in response.text


# -- callback -----------------------------------------------------------------


async def test_callback_completes_once(http, service, fake):
    """A reload of the same callback replays it (same code: the first answer may have been
    lost); a second OpenRouter approval for the same consent is refused."""
    _, openrouter_url = await approved(http, service.url, await register(http, service.url))
    callback = await openrouter_callback(http, openrouter_url)
    first = await http.get(callback)
    assert first.status_code == 302
    reload = await http.get(callback)
    assert reload.status_code == 302
    assert (
        query_of(reload.headers["location"])["code"] == query_of(first.headers["location"])["code"]
    )
    second_approval = await openrouter_callback(http, openrouter_url)
    refused = await http.get(second_approval)
    assert refused.status_code == 400 and "already used" in refused.text


async def test_denial_at_openrouter_reaches_the_client(http, service):
    _, openrouter_url = await approved(http, service.url, await register(http, service.url))
    landing = await http.get(await openrouter_callback(http, openrouter_url, "deny"))
    params = query_of(landing.headers["location"])
    assert params["error"] == ["access_denied"] and params["state"] == ["st-123"]


async def test_callback_without_session_is_a_page(http, service):
    response = await http.get(f"{service.url}/callback?code=abc")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")


# -- /token -------------------------------------------------------------------


async def test_code_is_single_use(http, service):
    grant = await authorized(http, service.url)
    assert (await grant.redeem(http)).status_code == 200
    replay = await grant.redeem(http)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


async def test_wrong_verifier_is_invalid_grant(http, service):
    grant = await authorized(http, service.url)
    response = await grant.redeem(http, code_verifier=pkce.new_verifier())
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert grant.verifier not in response.text and grant.code not in response.text


async def test_wrong_redirect_uri_or_client_is_invalid_grant(http, service):
    grant = await authorized(http, service.url)
    response = await grant.redeem(http, redirect_uri="http://127.0.0.1:5555/elsewhere")
    assert response.json()["error"] == "invalid_grant"
    other = await register(http, service.url)
    grant = await authorized(http, service.url)
    response = await grant.redeem(http, client_id=other)
    assert response.json()["error"] == "invalid_grant"


async def test_unknown_client_at_token_is_401_invalid_client(http, service):
    grant = await authorized(http, service.url)
    response = await grant.redeem(http, client_id="mcp_forged")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "refresh_token", "refresh_token": "x"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({}, "invalid_request"),
    ],
)
async def test_token_request_errors(http, service, form, error):
    response = await http.post(f"{service.url}/token", data=form)
    assert response.status_code == 400 and response.json()["error"] == error


async def test_token_accepts_json_and_refuses_other_bodies(http, service):
    grant = await authorized(http, service.url)
    response = await http.post(f"{service.url}/token", json=grant.form())
    assert response.status_code == 200
    text = await http.post(
        f"{service.url}/token", content="code=x", headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 400 and text.json()["error"] == "invalid_request"


async def test_fifty_concurrent_redemptions_give_exactly_one_key(service, fake):
    import httpx

    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=60)) as http:
        grant = await authorized(http, service.url)
        exchanges_before = fake.requests["/api/v1/auth/keys"]
        responses = await asyncio.gather(*(grant.redeem(http) for _ in range(50)))
        # A request that arrives while the winner is still exchanging hears "retry shortly"
        # (503); once it retries, the code is spent like for everyone else.
        retried = [await grant.redeem(http) for r in responses if r.status_code == 503]
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1
    assert set(statuses) <= {200, 400, 503}
    refused = [r for r in [*responses, *retried] if r.status_code != 200]
    assert {r.json()["error"] for r in refused if r.status_code == 400} == {"invalid_grant"}
    assert {r.json()["error"] for r in refused if r.status_code == 503} <= {
        "temporarily_unavailable"
    }
    assert all(r.status_code == 400 for r in retried)
    assert fake.requests["/api/v1/auth/keys"] - exchanges_before == 1


@pytest.mark.parametrize("fault", [503, "drop", "malformed", 429])
async def test_transient_upstream_failure_keeps_the_code(http, service, fake, fault):
    grant = await authorized(http, service.url)
    fake.fail_next("/api/v1/auth/keys", fault)
    failed = await grant.redeem(http)
    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    retried = await grant.redeem(http)
    assert retried.status_code == 200, retried.text


async def test_expired_openrouter_code_is_invalid_grant(http, service, fake):
    grant = await authorized(http, service.url)
    fake.clock = lambda: __import__("time").time() + 601
    try:
        response = await grant.redeem(http)
    finally:
        fake.clock = __import__("time").time
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


# -- /me ----------------------------------------------------------------------


async def test_me_without_token_points_to_resource_metadata(http, service):
    response = await http.get(f"{service.url}/me")
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(
        f'Bearer resource_metadata="{service.url}/.well-known/oauth-protected-resource"'
    )
    assert "invalid_token" not in challenge


async def test_me_with_bad_key_is_invalid_token(http, service, fake):
    key = fake.issue_key()
    fake.revoke(key)
    response = await http.get(f"{service.url}/me", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert key not in response.text and key not in response.headers["www-authenticate"]


async def test_me_when_openrouter_fails_is_503(http, service, fake):
    key = fake.issue_key()
    fake.fail_next("/api/v1/key", 502)
    response = await http.get(f"{service.url}/me", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"

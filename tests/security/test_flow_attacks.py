"""Attacks on the login itself: each found by the independent attack, each kept closed."""

from __future__ import annotations

import httpx
import pytest

from openrouter_oauth import pkce
from tests.harness import Browser, authorize_url, form_fields, query_of
from tests.integration.flows import (
    REDIRECT,
    Grant,
    approved,
    authorized,
    code_from,
    openrouter_callback,
    register,
)

SECRET = "shared-secret-" + "x" * 30
STATE = '"\\' * 1024  # the longest state, of the characters JSON escapes


async def test_a_callback_in_another_browser_issues_nothing(http, service, fake):
    """The attacker approves our consent page naming their own redirect URI, then sends
    the OpenRouter link to a victim. The victim approves at OpenRouter; our callback, in
    the victim's browser, must hand nothing to the attacker."""
    attacker_client = await register(http, service.url, redirect_uris=["https://evil.example/cb"])
    async with httpx.AsyncClient(timeout=10) as attacker:
        _, openrouter_url = await approved(
            attacker, service.url, attacker_client, "https://evil.example/cb"
        )
        exchanges = fake.requests["/api/v1/auth/keys"]
        async with httpx.AsyncClient(timeout=10) as victim:
            callback_url = await openrouter_callback(victim, openrouter_url)
            landing = await victim.get(callback_url)
        assert landing.status_code == 403
        assert "location" not in landing.headers
        assert "started in another browser" in landing.text
        # The approval was consumed: the link is worthless to the attacker too.
        again = await attacker.get(callback_url)
        assert again.status_code == 400 and "location" not in again.headers
    assert fake.requests["/api/v1/auth/keys"] == exchanges


async def test_a_consent_ticket_is_good_for_exactly_one_decision(http, service):
    client_id = await register(http, service.url)
    browser = Browser(http)
    verifier = pkce.new_verifier()
    page = await browser.open_consent(
        authorize_url(service.url, client_id, REDIRECT, pkce.s256(verifier))
    )
    first = await browser.decide(page, "approve")
    code = await code_from(http, await openrouter_callback(http, first.headers["location"]))
    assert (await Grant(service.url, client_id, code, verifier).redeem(http)).status_code == 200
    for action in ("approve", "deny"):  # after the callback consumed the approval, too
        again = await browser.decide(page, action)
        assert again.status_code == 409, action
        assert "location" not in again.headers


@pytest.mark.parametrize(
    "query",
    [
        "client_id=evil.example&redirect_uri=https://evil.example/phish&response_type=x",
        "client_id=evil.example&redirect_uri=https://evil.example/phish&response_type=code",
    ],
)
async def test_no_redirect_before_the_person_decides(http, service, query):
    response = await http.get(f"{service.url}/authorize?{query}")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "text/html" in response.headers["content-type"]


@pytest.mark.parametrize(
    "uri", ["ms-msdt:/id%20PCWDiagnostic", "search-ms:query=x", "ms-officecmd:{}"]
)
async def test_os_protocol_handlers_cannot_be_registered(http, service, uri):
    response = await http.post(f"{service.url}/register", json={"redirect_uris": [uri]})
    assert response.status_code == 400 and response.json()["error"] == "invalid_redirect_uri"


async def test_everything_we_mint_fits_our_own_limits(http, service):
    """The longest state, resource and redirect URIs we accept survive the whole login,
    with the characters that cost the most once sealed (quotes and backslashes in state,
    four-byte characters in the name)."""
    long_uri = "https://app.example/" + "p" * 960  # with the name, near the longest client_id
    registered = await http.post(
        f"{service.url}/register",
        json={"redirect_uris": [long_uri], "client_name": "\U0001f600" * 100},
    )
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    assert len(client_id) <= 2048
    verifier = pkce.new_verifier()
    url = authorize_url(
        service.url,
        client_id,
        long_uri,
        pkce.s256(verifier),
        state=STATE,
        resource="https://r.example/" + "r" * 2020,
        scope="o" * 2048,
    )
    browser = Browser(http)
    page = await browser.open_consent(url)
    assert page.status_code == 200, page.text
    to_openrouter = await browser.decide(page, "approve")
    assert to_openrouter.status_code == 303, to_openrouter.text
    landing = await http.get(await openrouter_callback(http, to_openrouter.headers["location"]))
    params = query_of(landing.headers["location"])
    assert params["state"] == [STATE]
    grant = Grant(service.url, client_id, params["code"][0], verifier, long_uri)
    assert (await grant.redeem(http)).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", "\x01" * 2048),
        ("state", "\U0001f600" * 700),
        ("state", "caf\u00e9"),
        ("resource", "https://r.example/" + "\x01" * 2000),
        ("resource", "https://r.example/\u00e9"),
        ("resource", "https://r.example:99999/mcp"),
        ("resource", "https://[::1/mcp"),
    ],
)
async def test_what_could_not_be_approved_is_refused_before_consent(http, service, field, value):
    """A state or resource that is not ASCII (RFC 6749 A.5, RFC 3986) is refused on the
    first page, naming the field, rather than shown and then failing at approval."""
    client_id = await register(http, service.url)
    url = authorize_url(
        service.url, client_id, REDIRECT, pkce.s256(pkce.new_verifier()), **{field: value}
    )
    page = await http.get(url)
    assert page.status_code == 400 and "location" not in page.headers
    assert "text/html" in page.headers["content-type"] and field in page.text


async def test_registration_refuses_what_could_not_work(http, service):
    uris = [f"https://app.example/{i}/" + "p" * 300 for i in range(6)]
    response = await http.post(f"{service.url}/register", json={"redirect_uris": uris})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_client_metadata" and "2048" in body["error_description"]


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"client_name": "Evil\u202egnp.exe"}, "invalid_client_metadata"),
        ({"client_name": "Cla\u200bude"}, "invalid_client_metadata"),
        ({"redirect_uris": ["https://cl\u0430ude.ai/cb"]}, "invalid_redirect_uri"),  # Cyrillic a
        ({"redirect_uris": ["https://a.example;script-src/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://a.example,b.example/cb"]}, "invalid_redirect_uri"),
    ],
)
async def test_spoofing_names_and_hosts_are_refused_at_registration(http, service, metadata, error):
    body = {"redirect_uris": [REDIRECT], **metadata}
    response = await http.post(f"{service.url}/register", json=body)
    assert response.status_code == 400 and response.json()["error"] == error


async def test_consent_page_names_the_exact_receiving_uri(http, service):
    page = await http.get(
        authorize_url(
            service.url,
            "app.example",
            "https://app.example/oauth/cb?x=1",
            pkce.s256(pkce.new_verifier()),
        )
    )
    assert "https://app.example/oauth/cb?x=1" in page.text.replace("&amp;", "&")
    csp = page.headers["content-security-policy"]
    assert "form-action 'self'" in csp and "https://app.example;" in csp + ";"


async def test_only_the_granted_scope_comes_back(http, service):
    client_id = await register(http, service.url)
    verifier = pkce.new_verifier()
    browser = Browser(http)
    page = await browser.open_consent(
        authorize_url(
            service.url,
            client_id,
            REDIRECT,
            pkce.s256(verifier),
            scope="admin openid offline_access",
        )
    )
    to_openrouter = await browser.decide(page, "approve")
    code = await code_from(http, await openrouter_callback(http, to_openrouter.headers["location"]))
    body = (await Grant(service.url, client_id, code, verifier).redeem(http)).json()
    assert body["scope"] == "openrouter"


async def test_issuers_sharing_a_secret_do_not_accept_each_others_values(http, start_service):
    one = start_service(SECRET=SECRET, ETCD_PREFIX="/shared/")
    two = start_service(SECRET=SECRET, ETCD_PREFIX="/shared/")
    grant = await authorized(http, one.url)
    page = await http.get(
        authorize_url(two.url, grant.client_id, REDIRECT, pkce.s256(pkce.new_verifier()))
    )
    assert page.status_code == 400 and "not recognised" in page.text
    foreign = await http.post(f"{two.url}/token", data=grant.form())
    assert foreign.status_code == 401 and foreign.json()["error"] == "invalid_client"
    assert (await grant.redeem(http)).status_code == 200


async def test_metrics_are_not_on_the_public_port(http, service):
    assert (await http.get(f"{service.url}/metrics")).status_code == 404
    assert "openrouter_oauth_requests_total" in (await http.get(service.metrics_url)).text


async def test_the_ticket_field_is_not_cut_at_the_parameter_limit(http, service):
    """A ticket carries a whole request, so it has its own, larger limit."""
    client_id = await register(http, service.url)
    page = await Browser(http).open_consent(
        authorize_url(
            service.url, client_id, REDIRECT, pkce.s256(pkce.new_verifier()), state="s" * 2048
        )
    )
    assert len(form_fields(page.text)["ticket"]) > 2048
    assert (await Browser(http).decide(page, "deny")).status_code == 303

"""What operators rely on: health, metrics, logs, request ids, limits, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import re
import signal

import httpx
import pytest

from openrouter_oauth import pkce
from tests.harness import authorize_url, form_fields, query_of
from tests.waiting import eventually

from .flows import REDIRECT, Grant, approved, authorized, code_from, openrouter_callback, register

SECRET = "z" * 40


async def test_health_and_readiness(http, service):
    assert (await http.get(f"{service.url}/healthz")).json() == {"status": "ok"}
    assert (await http.get(f"{service.url}/readyz")).json() == {"status": "ready"}


def metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] == name:
            found = ",".join(sorted(re.findall(r'\w+="[^"]*"', series)))
            if found == wanted or (not labels and "{" not in series):
                return float(value)
    return 0.0


async def test_metrics_count_requests_outcomes_and_flow_events(http, start_service, fake):
    service = start_service(store="memory")
    grant = await authorized(http, service.url)
    assert (await grant.redeem(http)).status_code == 200
    assert (await grant.redeem(http)).status_code == 400
    text = (await http.get(service.metrics_url)).text
    assert (
        metric(text, "openrouter_oauth_requests_total", route="token", status="200", outcome="ok")
        == 1
    )
    assert (
        metric(
            text,
            "openrouter_oauth_requests_total",
            route="token",
            status="400",
            outcome="invalid_grant",
        )
        == 1
    )
    for event in ("started", "approved", "completed"):
        assert metric(text, "openrouter_oauth_authorizations_total", event=event) == 1
    assert metric(text, "openrouter_oauth_codes_redeemed_total") == 1
    assert metric(text, "openrouter_oauth_request_duration_seconds_count", route="token") == 2
    assert (
        metric(text, "openrouter_oauth_upstream_duration_seconds_count", operation="exchange") == 1
    )
    assert metric(text, "openrouter_oauth_store_duration_seconds_count", operation="get") >= 2
    assert grant.code not in text and grant.client_id not in text


async def test_metrics_sum_over_workers(http, start_service):
    service = start_service(SECRET=SECRET, workers=2, ETCD_PREFIX="/metrics-workers/")
    async with httpx.AsyncClient() as fresh:  # new connections spread over the workers
        for _ in range(20):
            await fresh.get(f"{service.url}/healthz", headers={"Connection": "close"})
    text = (await http.get(service.metrics_url)).text
    assert (
        metric(text, "openrouter_oauth_requests_total", route="healthz", status="200", outcome="ok")
        >= 20
    )


async def test_logs_are_json_lines_without_secrets(http, start_service, fake):
    service = start_service(SECRET=SECRET, ETCD_PREFIX="/logs/")
    client_id = await register(http, service.url)
    verifier, openrouter_url = await approved(http, service.url, client_id)
    session = query_of(query_of(openrouter_url)["callback_url"][0])["session"][0]
    callback = await openrouter_callback(http, openrouter_url)
    upstream_code = query_of(callback)["code"][0]
    code = await code_from(http, callback)
    token = await http.post(
        f"{service.url}/token",
        data=Grant(service.url, client_id, code, verifier).form(),
        headers={"X-Request-ID": "req-42"},
    )
    key = token.json()["access_token"]
    await http.get(f"{service.url}/me", headers={"Authorization": f"Bearer {key}"})
    await http.get(f"{service.url}/me", headers={"Authorization": "Bearer sk-or-v1-bogus"})
    service.stop()
    log = service.log()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    requests = [line for line in lines if line.get("message") == "request"]
    assert {r["route"] for r in requests} >= {
        "register",
        "authorize",
        "decide",
        "callback",
        "token",
        "me",
    }
    token_line = next(r for r in requests if r["route"] == "token")
    assert token_line["request_id"] == "req-42" and token_line["status"] == 200
    assert token_line["client_id"].startswith("mcp_…")
    assert isinstance(token_line["duration_ms"], float)
    for secret in (
        key,
        code,
        verifier,
        upstream_code,
        session,
        SECRET,
        "sk-or-v1-bogus",
        pkce.s256(verifier),
    ):
        assert secret not in log


async def test_request_id_is_echoed_or_replaced(http, service):
    echoed = await http.get(f"{service.url}/healthz", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    replaced = await http.get(
        f"{service.url}/healthz", headers={"X-Request-ID": "bad id\twith spaces"}
    )
    assert re.fullmatch(r"[0-9a-f]{20}", replaced.headers["x-request-id"])


async def test_oversized_headers_and_queries_are_refused_cleanly(http, service):
    response = await http.get(f"{service.url}/authorize?state=" + "x" * 20000)
    assert response.status_code in (413, 414, 431)
    assert "Traceback" not in response.text
    response = await http.get(f"{service.url}/healthz", headers={"X-Big": "y" * 20000})
    assert response.status_code in (413, 431)


async def test_rate_limits_answer_429_with_retry_after(http, start_service):
    service = start_service(store="memory", RATE_LIMITS="register=3/min,authorize=2/min")
    statuses = [
        (await http.post(f"{service.url}/register", json={"redirect_uris": [REDIRECT]})).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429]
    limited = await http.post(f"{service.url}/register", json={"redirect_uris": [REDIRECT]})
    assert limited.json()["error"] == "too_many_requests"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    url = authorize_url(
        service.url, "app.example", "https://app.example/cb", pkce.s256(pkce.new_verifier())
    )
    pages = [await http.get(url) for _ in range(3)]
    assert [p.status_code for p in pages] == [200, 200, 429]
    assert pages[-1].headers["content-type"].startswith("text/html")
    assert "retry-after" in pages[-1].headers
    # /token was not limited here, and other addresses have their own buckets.
    assert (await http.post(f"{service.url}/token", data={})).status_code == 400


async def test_rate_limits_follow_the_forwarded_address_behind_a_trusted_proxy(http, start_service):
    service = start_service(store="memory", RATE_LIMITS="register=1/min", TRUSTED_PROXIES="1")
    body = {"redirect_uris": [REDIRECT]}
    first = await http.post(
        f"{service.url}/register", json=body, headers={"X-Forwarded-For": "203.0.113.1"}
    )
    other = await http.post(
        f"{service.url}/register", json=body, headers={"X-Forwarded-For": "203.0.113.2"}
    )
    again = await http.post(
        f"{service.url}/register", json=body, headers={"X-Forwarded-For": "203.0.113.1"}
    )
    assert [first.status_code, other.status_code, again.status_code] == [201, 201, 429]


async def test_rate_limits_off(http, start_service):
    service = start_service(store="memory", RATE_LIMITS="off")
    for _ in range(80):
        response = await http.post(f"{service.url}/register", json={"redirect_uris": [REDIRECT]})
        assert response.status_code == 201


async def test_sigterm_lets_in_flight_requests_finish(start_service, fake):
    service = start_service(SECRET=SECRET, ETCD_PREFIX="/drain/")
    async with httpx.AsyncClient(timeout=20) as http:
        grant = await authorized(http, service.url)
        fake.fail_next("/api/v1/auth/keys", 1.5)  # OpenRouter stalls 1.5 s before answering
        in_flight = asyncio.create_task(grant.redeem(http))

        async def stalled_at_openrouter() -> bool:
            return fake.faults_left("/api/v1/auth/keys") == 0

        await eventually(stalled_at_openrouter, within=10)  # the exchange is in flight now
        service.process.send_signal(signal.SIGTERM)
        response = await in_flight
    assert response.status_code == 200, response.text
    assert service.process.wait(15) == 0
    assert "Traceback" not in service.log()


@pytest.mark.parametrize("path", ["/openapi.json"])
async def test_openapi_document_is_served(http, service, path):
    document = (await http.get(f"{service.url}{path}")).json()
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": service.url}]
    assert {"/register", "/authorize", "/callback", "/token", "/me"} <= set(document["paths"])


async def test_consent_page_form_is_plain_html(http, service):
    client_id = await register(http, service.url)
    page = await http.get(
        authorize_url(service.url, client_id, REDIRECT, pkce.s256(pkce.new_verifier()))
    )
    assert "<script" not in page.text
    assert set(form_fields(page.text)) == {"ticket"}
    assert 'name="viewport"' in page.text and 'lang="en"' in page.text


async def test_concurrent_checks_of_one_key_make_one_upstream_call(start_service, fake):
    service = start_service(store="memory")
    key = fake.issue_key()
    before = fake.requests["/api/v1/key"]
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=60)) as http:
        responses = await asyncio.gather(
            *(
                http.get(f"{service.url}/me", headers={"Authorization": f"Bearer {key}"})
                for _ in range(50)
            )
        )
    assert {r.status_code for r in responses} == {200}
    assert fake.requests["/api/v1/key"] - before == 1


async def test_a_revoked_key_is_refused_once_the_cache_window_passes(http, start_service, fake):
    service = start_service(store="memory", ME_CACHE_SECONDS="1")
    key = fake.issue_key()
    headers = {"Authorization": f"Bearer {key}"}
    assert (await http.get(f"{service.url}/me", headers=headers)).status_code == 200
    fake.revoke(key)
    assert (await http.get(f"{service.url}/me", headers=headers)).status_code == 200

    async def refused() -> bool:
        return (await http.get(f"{service.url}/me", headers=headers)).status_code == 401

    await eventually(refused, within=5, what="the revoked key refused after the cache window")

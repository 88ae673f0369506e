"""OpenRouterKeyVerifier against a scripted /introspect: answers, cache, failures."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

from openrouter_oauth.mcp_verifier import (
    IntrospectionOutageMiddleware,
    IntrospectionUnavailable,
    OpenRouterKey,
    OpenRouterKeyVerifier,
    auth_settings,
    current_key,
)

ISSUER = "https://auth.example.com"
KEY = "sk-or-v1-" + "a" * 64
ACTIVE = {
    "active": True,
    "token_type": "Bearer",
    "scope": "openrouter",
    "label": "Claude",
    "limit": 5.0,
    "limit_remaining": 4.5,
    "usage": 0.5,
    "is_free_tier": False,
    "sub": "user_123",
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Introspection:
    """A scripted /introspect that records what it was asked."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)


def json_answer(body: object, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body)


def verifier_for(
    introspection: Introspection, clock: Clock | None = None, **options: object
) -> OpenRouterKeyVerifier:
    http = httpx.AsyncClient(transport=httpx.MockTransport(introspection))
    return OpenRouterKeyVerifier(
        ISSUER,
        client_id="my-server",
        client_secret="s" * 40,
        http_client=http,
        clock=clock or Clock(),
        **options,
    )


async def test_a_working_key_carries_what_introspection_said():
    introspection = Introspection(json_answer(ACTIVE))
    token = await verifier_for(introspection).verify_token(KEY)
    assert isinstance(token, OpenRouterKey)
    assert token.key == token.token == KEY
    assert token.scopes == ["openrouter"] and token.subject == "user_123"
    assert (token.label, token.limit, token.limit_remaining, token.usage) == ("Claude", 5, 4.5, 0.5)
    assert token.is_free_tier is False
    assert token.claims["iss"] == ISSUER and token.resource is None and token.expires_at is None
    assert token.client_id.startswith("key-") and KEY not in token.client_id


async def test_the_request_is_rfc_7662_with_basic_credentials():
    introspection = Introspection(json_answer(ACTIVE))
    await verifier_for(introspection).verify_token(KEY)
    (request,) = introspection.requests
    assert str(request.url) == f"{ISSUER}/introspect" and request.method == "POST"
    expected = base64.b64encode(b"my-server:" + b"s" * 40).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert parse_qs(request.content.decode()) == {
        "token": [KEY],
        "token_type_hint": ["access_token"],
    }


async def test_answers_are_cached_for_seconds_and_refusals_for_fewer():
    clock = Clock()
    answers = {KEY: ACTIVE}
    introspection = Introspection(
        lambda request: httpx.Response(
            200, json=answers.get(parse_qs(request.content.decode())["token"][0], {"active": False})
        )
    )
    verifier = verifier_for(introspection, clock, cache_seconds=10, negative_cache_seconds=2)
    bad = "sk-or-v1-" + "b" * 64
    for _ in range(3):
        assert await verifier.verify_token(KEY) is not None
        assert await verifier.verify_token(bad) is None
    assert len(introspection.requests) == 2
    clock.now += 3  # the refusal has expired, the acceptance has not
    assert await verifier.verify_token(bad) is None
    assert await verifier.verify_token(KEY) is not None
    assert len(introspection.requests) == 3
    clock.now += 8  # now the acceptance has expired too: a revoked key stops working
    del answers[KEY]
    assert await verifier.verify_token(KEY) is None
    assert len(introspection.requests) == 4


async def test_the_cache_holds_no_key_and_stays_bounded():
    introspection = Introspection(json_answer(ACTIVE))
    verifier = verifier_for(introspection, max_cache_entries=10)
    keys = [f"sk-or-v1-{n:064d}" for n in range(25)]
    for key in keys:
        await verifier.verify_token(key)
    assert len(verifier._cache) <= 10
    assert not any(key in repr(verifier._cache) for key in keys)


async def test_caching_can_be_turned_off():
    introspection = Introspection(json_answer(ACTIVE))
    verifier = verifier_for(introspection, cache_seconds=0)
    await verifier.verify_token(KEY)
    await verifier.verify_token(KEY)
    assert len(introspection.requests) == 2


@pytest.mark.parametrize("body", [{"active": False}, {"active": "true"}, {}])
async def test_anything_but_active_true_is_refused(body):
    assert await verifier_for(Introspection(json_answer(body))).verify_token(KEY) is None


async def test_an_expired_key_is_refused_and_a_future_expiry_is_passed_on():
    past = Introspection(json_answer({**ACTIVE, "exp": int(time.time()) - 5}))
    assert await verifier_for(past).verify_token(KEY) is None
    exp = int(time.time()) + 3600
    token = await verifier_for(Introspection(json_answer({**ACTIVE, "exp": exp}))).verify_token(KEY)
    assert token is not None and token.expires_at == exp


@pytest.mark.parametrize(
    "exp", [f'"{int(time.time()) + 3600}"', '"1"', '""', "true", "[]", "NaN", "Infinity"]
)
async def test_an_expiry_that_is_not_a_number_means_inactive(exp):
    """RFC 7662's exp is a number of seconds: any other value is no promise."""
    body = json.dumps(ACTIVE)[:-1] + f', "exp": {exp}}}'
    answer = Introspection(
        lambda request: httpx.Response(
            200, content=body.encode(), headers={"content-type": "application/json"}
        )
    )
    assert await verifier_for(answer).verify_token(KEY) is None


async def test_overlong_or_empty_tokens_are_refused_without_asking():
    introspection = Introspection(json_answer(ACTIVE))
    verifier = verifier_for(introspection)
    assert await verifier.verify_token("k" * 600) is None
    assert await verifier.verify_token("") is None
    assert introspection.requests == []


def _timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectTimeout("timed out", request=request)


@pytest.mark.parametrize(
    "answer",
    [
        json_answer({"error": "temporarily_unavailable"}, 503),
        json_answer({"error": "oops"}, 500),
        _timeout,
        lambda request: httpx.Response(200, content=b"<html>"),
        json_answer(["active"]),
    ],
)
async def test_an_issuer_that_cannot_answer_is_not_a_refusal(answer, caplog):
    introspection = Introspection(answer)
    verifier = verifier_for(introspection)
    with pytest.raises(IntrospectionUnavailable):
        await verifier.verify_token(KEY)
    # Not cached: the next request asks again.
    with pytest.raises(IntrospectionUnavailable):
        await verifier.verify_token(KEY)
    assert len(introspection.requests) == 2
    assert "introspection unavailable" in caplog.text and KEY not in caplog.text


async def test_refusing_when_unavailable_is_a_choice():
    introspection = Introspection(json_answer({}, 503))
    verifier = verifier_for(introspection, refuse_when_unavailable=True)
    assert await verifier.verify_token(KEY) is None


async def test_wrong_own_credentials_are_named():
    verifier = verifier_for(Introspection(json_answer({"error": "invalid_client"}, 401)))
    with pytest.raises(IntrospectionUnavailable, match="INTROSPECTION_CREDENTIALS"):
        await verifier.verify_token(KEY)


def test_credentials_are_required():
    with pytest.raises(ValueError, match="client_secret"):
        OpenRouterKeyVerifier(ISSUER, client_id="my-server", client_secret="")


async def test_current_key_is_the_requests_key():
    with pytest.raises(LookupError):
        current_key()
    token = await verifier_for(Introspection(json_answer(ACTIVE))).verify_token(KEY)
    assert token is not None
    reset = auth_context_var.set(AuthenticatedUser(token))
    try:
        assert current_key() is token
    finally:
        auth_context_var.reset(reset)


def test_auth_settings_do_not_claim_an_audience():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = auth_settings(ISSUER, "https://mcp.example.com/mcp")
    assert str(settings.issuer_url) == ISSUER
    assert settings.required_scopes == ["openrouter"]
    assert settings.validate_token_resource is False


def test_the_service_never_imports_the_sdk():
    code = (
        "import sys, openrouter_oauth, openrouter_oauth.app, openrouter_oauth.cli\n"
        "loaded = [m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def failing_app(after_start: bool):
    async def app(scope, receive, send):
        if after_start:
            await send({"type": "http.response.start", "status": 200, "headers": []})
        raise IntrospectionUnavailable("down")

    return app


async def test_the_middleware_turns_an_outage_into_503():
    transport = httpx.ASGITransport(app=IntrospectionOutageMiddleware(failing_app(False)))
    async with httpx.AsyncClient(transport=transport, base_url="http://mcp") as http:
        response = await http.post("/mcp")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "temporarily_unavailable"


async def test_the_middleware_cannot_change_an_answer_already_started():
    transport = httpx.ASGITransport(app=IntrospectionOutageMiddleware(failing_app(True)))
    async with httpx.AsyncClient(transport=transport, base_url="http://mcp") as http:
        with pytest.raises(IntrospectionUnavailable):
            await http.post("/mcp")

"""Resource servers accept this issuer's keys, end to end with real processes.

(a) FastMCP's own ``IntrospectionTokenVerifier`` (the fastmcp code, unmodified) checks a
key obtained through the whole login at ``/introspect``.
(b) The example MCP servers (examples/mcp_server.py with our verifier, and
examples/typescript/server.ts on the TypeScript SDK; each its own process) are found,
logged into and called by the official MCP Python SDK client, and their tool reaches
(fake) OpenRouter with the person's own key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from fastmcp.server.auth.providers.introspection import IntrospectionTokenVerifier
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from openrouter_oauth.mcp_verifier import IntrospectionUnavailable, OpenRouterKeyVerifier
from tests.e2e.resource_server import ExampleServer, typescript_example
from tests.e2e.test_mcp_sdk import MemoryTokens, sdk_provider
from tests.integration.flows import authorized

CALLER, SECRET = "example-mcp-server", "example-introspection-secret-" + "q" * 16
UNKNOWN_KEY = "sk-or-v1-" + "0" * 64


@pytest.fixture
def issuer(start_service):
    return start_service(INTROSPECTION_CREDENTIALS=f"{CALLER}:{SECRET}")


@pytest.fixture
def python_example(issuer, fake) -> Iterator[ExampleServer]:
    server = ExampleServer(issuer.url, fake.base_url, CALLER, SECRET).start()
    yield server
    server.stop()


@pytest.fixture(params=["python", "typescript"])
def example(request, issuer, fake) -> Iterator[ExampleServer]:
    server = ExampleServer(issuer.url, fake.base_url, CALLER, SECRET)
    if request.param == "typescript":
        server.command, server.cwd = typescript_example()
    server.start()
    yield server
    server.stop()


@asynccontextmanager
async def logged_in(
    example: ExampleServer, browser, storage: MemoryTokens, on_response=None
) -> AsyncIterator:
    """An MCP session with the example, the SDK client doing the whole login on the way;
    ``on_response`` sees every response the client receives."""
    provider = sdk_provider(example.mcp_url, browser, storage)
    hooks = {"response": [on_response]} if on_response else None
    async with (
        httpx2.AsyncClient(auth=provider, timeout=30, event_hooks=hooks) as http,
        streamable_http_client(example.mcp_url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def key_through_login(http, issuer_url: str) -> str:
    """Register, consent, approve at (fake) OpenRouter, redeem: the key a client gets."""
    grant = await authorized(http, issuer_url)
    response = await grant.redeem(http)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_fastmcp_introspection_verifier_accepts_a_real_key(http, issuer, fake, method):
    key = await key_through_login(http, issuer.url)
    verifier = IntrospectionTokenVerifier(
        introspection_url=f"{issuer.url}/introspect",
        client_id=CALLER,
        client_secret=SECRET,
        client_auth_method=method,
        required_scopes=["openrouter"],
    )
    token = await verifier.verify_token(key)
    assert token is not None
    assert token.token == key and token.scopes == ["openrouter"]
    assert token.claims["label"] == "Test Client"
    assert token.subject == fake.keys[key].user_id
    assert await verifier.verify_token(UNKNOWN_KEY) is None
    assert await verifier.verify_token("not a key") is None


async def test_fastmcp_introspection_verifier_refuses_with_wrong_credentials(http, issuer):
    key = await key_through_login(http, issuer.url)
    verifier = IntrospectionTokenVerifier(
        introspection_url=f"{issuer.url}/introspect",
        client_id=CALLER,
        client_secret="wrong-" + SECRET,
    )
    assert await verifier.verify_token(key) is None


async def test_our_verifier_against_the_real_issuer(http, issuer, fake):
    key = await key_through_login(http, issuer.url)
    verifier = OpenRouterKeyVerifier(issuer.url, client_id=CALLER, client_secret=SECRET)
    try:
        token = await verifier.verify_token(key)
        assert token is not None and token.key == key and token.scopes == ["openrouter"]
        assert token.label == "Test Client" and token.subject == fake.keys[key].user_id
        assert await verifier.verify_token(UNKNOWN_KEY) is None
        # OpenRouter failing makes /introspect answer 503: unknown, not refused.
        fake.fail_next("/api/v1/key", 500)
        with pytest.raises(IntrospectionUnavailable):
            await verifier.verify_token(fake.issue_key())
        wrong = OpenRouterKeyVerifier(issuer.url, client_id=CALLER, client_secret="x" * 40)
        with pytest.raises(IntrospectionUnavailable, match="credentials"):
            await wrong.verify_token(key)
        await wrong.aclose()
    finally:
        await verifier.aclose()


async def test_example_server_advertises_the_issuer(example, issuer):
    async with httpx2.AsyncClient(timeout=10) as http:
        metadata = (await http.get(example.metadata_url)).json()
        anonymous = await http.post(example.mcp_url, json={})
        bad_key = await http.post(
            example.mcp_url, json={}, headers={"Authorization": f"Bearer {UNKNOWN_KEY}"}
        )
    assert metadata["resource"] == example.mcp_url
    assert metadata["authorization_servers"] == [issuer.url]
    assert metadata["scopes_supported"] == ["openrouter"]
    for refused in (anonymous, bad_key):
        assert refused.status_code == 401
        assert f'resource_metadata="{example.metadata_url}"' in refused.headers["www-authenticate"]


async def test_sdk_client_logs_in_and_the_tool_spends_the_users_key(example, browser, fake):
    storage = MemoryTokens()
    async with logged_in(example, browser, storage) as session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        answer = await session.call_tool("ask", {"prompt": "hello from the test"})

    assert "ask" in tools
    assert not answer.is_error, answer.content
    assert answer.content[0].text == "echo: hello from the test"
    # The login went through our issuer, and the key it produced is what reached OpenRouter.
    assert storage.client is not None and storage.client.client_id.startswith("mcp_")
    assert storage.tokens is not None
    key = storage.tokens.access_token
    assert key in fake.keys
    assert fake.completions[-1][0] == key
    assert fake.completions[-1][1]["messages"][-1]["content"] == "hello from the test"
    assert key not in example.unwrapped_log()


async def test_a_tool_sees_what_introspection_said(python_example, browser, fake):
    storage = MemoryTokens()
    async with logged_in(python_example, browser, storage) as session:
        budget = await session.call_tool("budget", {})
    assert not budget.is_error, budget.content
    assert budget.structured_content["label"] == "MCP SDK test"
    assert storage.tokens is not None
    assert budget.structured_content["usage"] == fake.keys[storage.tokens.access_token].usage


async def test_example_server_fails_softly_when_the_issuer_cannot_tell(python_example, fake):
    """OpenRouter down → /introspect 503 → 503 here: retryable, not a 401 that forces a login."""
    key = fake.issue_key(label="outage")
    headers = {"Authorization": f"Bearer {key}"}
    fake.fail_next("/api/v1/key", 500)
    async with httpx2.AsyncClient(timeout=10) as http:
        during = await http.post(python_example.mcp_url, json={}, headers=headers)
        after = await http.post(python_example.mcp_url, json={}, headers=headers)
    assert during.status_code == 503, during.text
    assert during.headers["retry-after"] == "5"
    assert during.json()["error"] == "temporarily_unavailable"
    assert after.status_code not in (401, 500), after.text
    log = python_example.unwrapped_log()
    assert "keycheckfailed" in log and "Traceback" not in log and key not in log

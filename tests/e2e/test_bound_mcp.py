"""ACCESS_TOKENS=bound end to end: the official MCP Python SDK client against
examples/mcp_server.py and examples/typescript/server.ts (TypeScript SDK), each its own
process, the issuer on etcd, fake OpenRouter.

The client logs in with ``resource`` (the SDK sends it), the ``ask`` tool spends the
key, the SDK refreshes by itself when the short-lived access token expires, a revoked
token is refused with 401, and the client logs in again. The key the fake minted
appears in nothing the client received, no log line and no metric.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import httpx2
import pytest

from tests.e2e.resource_server import NODE, TS_BUILD, ExampleServer, typescript_example
from tests.e2e.test_mcp_sdk import MemoryTokens
from tests.e2e.test_resource_server import logged_in
from tests.harness import Service, free_port

CALLER, SECRET = "example-mcp-server", "example-resource-secret-" + "q" * 16
OTHER, OTHER_SECRET = "other-mcp-server", "other-resource-secret-" + "o" * 16
ACCESS_SECONDS = 2
TS_CLIENT = Path(__file__).with_name("ts_client.mjs")
CACHE_SECONDS = 0.5  # the examples' introspection cache: how long a revoked token still works


@dataclass
class Bound:
    issuer: Service
    example: ExampleServer  # declared as CALLER
    other: ExampleServer  # declared as OTHER, another resource


@contextmanager
def declared(start_service, fake, language: str) -> Iterator[Bound]:
    """The issuer in bound mode with the example in ``language`` declared as CALLER and
    the Python one as OTHER."""
    ports = free_port(), free_port()
    servers = [
        {"id": CALLER, "secret": SECRET, "resource": f"http://127.0.0.1:{ports[0]}/mcp"},
        {"id": OTHER, "secret": OTHER_SECRET, "resource": f"http://127.0.0.1:{ports[1]}/mcp"},
    ]
    issuer = start_service(
        ACCESS_TOKENS="bound",
        RESOURCE_SERVERS=json.dumps(servers),
        ACCESS_TOKEN_SECONDS=str(ACCESS_SECONDS),
        RATE_LIMITS="off",
    )
    extra = {"ACCESS_TOKENS": "bound", "CACHE_SECONDS": str(CACHE_SECONDS)}
    example = ExampleServer(
        issuer.url, fake.base_url, CALLER, SECRET, port=ports[0], extra_env=extra
    )
    if language == "typescript":
        example.command, example.cwd = typescript_example()
    other = ExampleServer(
        issuer.url, fake.base_url, OTHER, OTHER_SECRET, port=ports[1], extra_env=extra
    )
    try:
        yield Bound(issuer, example.start(), other.start())
    finally:
        example.stop()
        other.stop()


@pytest.fixture(params=["python", "typescript"])
def bound(request, start_service, fake) -> Iterator[Bound]:
    """The example in either language, for the Python SDK client."""
    with declared(start_service, fake, request.param) as running:
        yield running


def logins(fake) -> int:
    """Keys OpenRouter issued: one per completed login."""
    return fake.requests["/api/v1/auth/keys"]


async def test_sdk_logs_in_spends_refreshes_is_revoked_and_logs_in_again(bound, browser, fake):
    storage = MemoryTokens()
    seen: list[str] = []  # every token the client was ever given
    received: list[str] = []  # what every answer of the issuer said, headers and body

    async def record(response) -> None:
        received.append(str(response.headers))
        if str(response.url).startswith(bound.issuer.url):  # not the MCP event streams
            received.append((await response.aread()).decode(errors="replace"))

    before = logins(fake)
    async with logged_in(bound.example, browser, storage, record) as session:
        first = await session.call_tool("ask", {"prompt": "first"})
        assert not first.is_error, first.content
        assert first.content[0].text == "echo: first"
        key = list(fake.keys)[-1]  # minted by this login
        assert fake.completions[-1][0] == key  # the tool spent the person's own key
        assert storage.tokens is not None and storage.tokens.access_token != key
        seen += [storage.tokens.access_token, storage.tokens.refresh_token or ""]

        await asyncio.sleep(ACCESS_SECONDS + 0.5)  # the access token has expired
        second = await session.call_tool("ask", {"prompt": "second"})
        assert not second.is_error, second.content
        assert storage.tokens.refresh_token not in seen  # rotated: the SDK refreshed
        assert logins(fake) == before + 1  # ...by itself, without a new login
        assert fake.completions[-1][0] == key
        seen += [storage.tokens.access_token, storage.tokens.refresh_token or ""]

    async with httpx.AsyncClient(timeout=10) as http:
        revoked = await http.post(
            f"{bound.issuer.url}/revoke",
            data={"token": storage.tokens.access_token, "client_id": storage.client.client_id},
        )
        assert revoked.status_code == 200
        await asyncio.sleep(CACHE_SECONDS + 0.1)
        refused = await http.post(
            bound.example.mcp_url,
            json={},
            headers={"Authorization": f"Bearer {storage.tokens.access_token}"},
        )
        assert refused.status_code == 401
        assert "resource_metadata" in refused.headers["www-authenticate"]

    async with logged_in(bound.example, browser, storage, record) as session:
        again = await session.call_tool("ask", {"prompt": "again"})
    assert not again.is_error, again.content
    assert logins(fake) == before + 2
    seen += [storage.tokens.access_token, storage.tokens.refresh_token or ""]

    # The key never reached the client, and was never logged or counted.
    assert any('"refresh_token"' in body for body in received)  # the hook saw /token
    for minted in (key, list(fake.keys)[-1]):
        assert all(minted not in token for token in seen)
        assert all(minted not in answer for answer in received)
        assert all(minted not in str(result.content) for result in (first, second, again))
        assert minted not in bound.issuer.log()
        assert minted not in bound.example.unwrapped_log()
        metrics = httpx.get(bound.issuer.metrics_url, timeout=5).text
        assert minted not in metrics


async def test_a_token_for_one_server_is_refused_by_another(bound, browser, fake):
    storage = MemoryTokens()
    async with logged_in(bound.example, browser, storage) as session:
        assert not (await session.call_tool("ask", {"prompt": "a"})).is_error
    token = storage.tokens.access_token
    async with httpx2.AsyncClient(timeout=10) as http:
        at_other = await http.post(
            bound.other.mcp_url, json={}, headers={"Authorization": f"Bearer {token}"}
        )
        form = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        }
        exchanged = await http.post(
            f"{bound.issuer.url}/token", data=form, auth=(OTHER, OTHER_SECRET)
        )
        introspected = await http.post(
            f"{bound.issuer.url}/introspect", data={"token": token}, auth=(OTHER, OTHER_SECRET)
        )
    assert at_other.status_code == 401
    assert exchanged.status_code == 400 and exchanged.json()["error"] == "invalid_grant"
    assert introspected.json() == {"active": False}


async def test_typescript_sdk_client_against_the_typescript_example(start_service, fake):
    """The official TypeScript SDK client (tests/e2e/ts_client.mjs, run by Node) against
    examples/typescript: login with resource, a tool spending the key, the SDK's own
    refresh, revocation then 401, and a new login."""
    with declared(start_service, fake, "typescript") as running:
        before = logins(fake)
        shutil.copyfile(TS_CLIENT, TS_BUILD / TS_CLIENT.name)
        command = [str(NODE), TS_CLIENT.name, running.example.mcp_url, running.issuer.url]
        result = await asyncio.to_thread(
            subprocess.run,
            [*command, str(ACCESS_SECONDS), str(CACHE_SECONDS)],
            cwd=TS_BUILD,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        keys = list(fake.keys)[-2:]  # the two logins' keys
        assert summary["first"] == {"error": False, "text": "echo: first"}
        assert summary["second"] == {"error": False, "text": "echo: second"}
        assert summary["third"] == {"error": False, "text": "echo: again"}
        assert summary["refreshed"] and summary["loginsBeforeRevoke"] == 1
        assert summary["revokeStatus"] == 200 and summary["afterRevokeStatus"] == 401
        assert summary["logins"] == 2 and logins(fake) == before + 2
        assert [c[0] for c in fake.completions[-3:]] == [keys[0], keys[0], keys[1]]
        for key in keys:
            assert key not in result.stdout and key not in result.stderr
            assert all(key not in token for token in summary["seen"])
            assert key not in running.issuer.log() and key not in running.example.log()

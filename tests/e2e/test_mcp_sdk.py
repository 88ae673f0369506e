"""The official MCP Python SDK runs the whole flow against the service, then calls /me."""

from __future__ import annotations

import httpx2
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from tests.harness import Browser, query_of

REDIRECT = "http://127.0.0.1:33418/oauth/callback"


class MemoryTokens:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def sdk_provider(server_url: str, browser: Browser, storage: MemoryTokens) -> OAuthClientProvider:
    landing: list[str] = []

    async def redirect_handler(url: str) -> None:
        landing.append(await browser.login(url))

    async def callback_handler() -> AuthorizationCodeResult:
        params = query_of(landing.pop())
        return AuthorizationCodeResult(
            code=params["code"][0], state=params["state"][0], iss=params["iss"][0]
        )

    metadata = OAuthClientMetadata(
        client_name="MCP SDK test",
        redirect_uris=[REDIRECT],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
    )
    return OAuthClientProvider(
        server_url=server_url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


async def test_mcp_sdk_logs_in_and_reads_me(service, browser, fake):
    storage = MemoryTokens()
    provider = sdk_provider(f"{service.url}/me", browser, storage)
    async with httpx2.AsyncClient(auth=provider, timeout=10) as client:
        response = await client.get(f"{service.url}/me")
    assert response.status_code == 200, response.text
    assert storage.client is not None and storage.client.client_id.startswith("mcp_")
    assert storage.tokens is not None
    key = storage.tokens.access_token
    assert key in fake.keys
    assert response.json()["id"] == key[-7:]
    assert response.json()["label"] == "MCP SDK test"

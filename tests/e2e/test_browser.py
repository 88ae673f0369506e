"""A person in a real browser (headless Chromium driven by Playwright) goes through the flow.

A client page starts authorization; the browser shows our consent page, the
person approves, passes OpenRouter's page and lands on the client's redirect
URI with a code that the test exchanges for a key. Deny, the page's security
headers, framing, and screenshots (desktop and phone) are checked too.
"""

from __future__ import annotations

import html
import os
import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from openrouter_oauth import pkce
from tests.harness import REPO, authorize_url, query_of
from tests.integration.flows import Grant

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", REPO / "build" / "artifacts"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ClientApp:
    """The MCP client's side in the browser: a start page and its redirect URI."""

    def __init__(self) -> None:
        self.start_url = ""
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_GET(self):
                if self.path.startswith("/start"):
                    body = f'<a id="login" href="{html.escape(app.start_url)}">Sign in</a>'
                elif self.path.startswith("/frame"):
                    body = f'<iframe id="f" src="{html.escape(app.start_url)}"></iframe>'
                else:
                    body = "<p id='done'>Signed in</p>"
                data = f"<!doctype html><title>Client</title>{body}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def client_app() -> Iterator[ClientApp]:
    app = ClientApp()
    yield app
    app.server.shutdown()


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is needed: apt-get install chromium (scripts/test does)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


async def start_login(page: Page, service, client_app: ClientApp, http) -> tuple[str, str]:
    """Register the client, open its start page, click Sign in; return (client_id, verifier)."""
    registered = await http.post(
        f"{service.url}/register",
        json={"client_name": "Browser Test App", "redirect_uris": [f"{client_app.url}/callback"]},
    )
    client_id = registered.json()["client_id"]
    verifier = pkce.new_verifier()
    client_app.start_url = authorize_url(
        service.url, client_id, f"{client_app.url}/callback", pkce.s256(verifier)
    )
    await page.goto(f"{client_app.url}/start")
    async with page.expect_navigation():
        await page.click("#login")
    return client_id, verifier


@pytest.fixture
def browser_service(start_service):
    return start_service(store="memory")


async def test_approve_in_a_real_browser(chromium, browser_service, client_app, fake):
    service = browser_service
    page = await chromium.new_page()
    async with httpx.AsyncClient() as http:
        client_id, verifier = await start_login(page, service, client_app, http)
        consent = await page.wait_for_selector("button[value=approve]")
        assert "Browser Test App" in await page.inner_text("h1")
        # The hashed inline stylesheet applied, so the CSP allows it.
        background = await consent.evaluate("b => getComputedStyle(b).backgroundColor")
        assert background == "rgb(79, 70, 229)"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=ARTIFACTS / "consent-desktop.png", full_page=True)

        async with page.expect_navigation():
            await page.click("button[value=approve]")
        assert page.url.startswith(fake.base_url + "/auth?")
        await page.fill("input[name=limit]", "3")
        async with page.expect_navigation(url=f"{client_app.url}/callback**"):
            await page.click("button[value=approve]")
        params = query_of(page.url)
        assert params["state"] == ["st-123"] and params["iss"] == [service.url]

        grant = Grant(
            service.url, client_id, params["code"][0], verifier, f"{client_app.url}/callback"
        )
        token = await grant.redeem(http)
        assert token.status_code == 200
        key = token.json()["access_token"]
        me = await http.get(f"{service.url}/me", headers={"Authorization": f"Bearer {key}"})
        assert me.json()["limit"] == 3


async def test_deny_in_a_real_browser(chromium, browser_service, client_app):
    page = await chromium.new_page()
    async with httpx.AsyncClient() as http:
        await start_login(page, browser_service, client_app, http)
    async with page.expect_navigation(url=f"{client_app.url}/callback**"):
        await page.click("button[value=deny]")
    params = query_of(page.url)
    assert params["error"] == ["access_denied"] and params["state"] == ["st-123"]


async def test_consent_page_headers_and_framing(chromium, browser_service, client_app):
    page = await chromium.new_page()
    async with httpx.AsyncClient() as http:
        await start_login(page, browser_service, client_app, http)
        response = await http.get(client_app.start_url)
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # no scripts at all: default-src 'none' covers them
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    # Another site framing the consent page gets nothing clickable.
    framing = await chromium.new_page()
    await framing.goto(f"{client_app.url}/frame")
    frame = await (await framing.wait_for_selector("#f")).content_frame()
    assert frame is not None
    assert await frame.query_selector("button[value=approve]") is None


async def test_consent_page_reads_well_on_a_phone(chromium, browser_service, client_app):
    context = await chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page = await context.new_page()
    async with httpx.AsyncClient() as http:
        await start_login(page, browser_service, client_app, http)
    # Nothing wider than the screen, and both buttons big enough to tap.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    for button in ("approve", "deny"):
        box = await (await page.query_selector(f"button[value={button}]")).bounding_box()
        assert box["height"] >= 44 and box["x"] + box["width"] <= 390
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "consent-phone.png", full_page=True)
    await context.close()


async def test_the_issuer_url_greets_a_person(chromium, start_service):
    service = start_service(store="memory", OPERATOR_NAME="Example Labs")
    page = await chromium.new_page()
    response = await page.goto(service.url)
    assert response is not None and response.status == 200
    assert "OpenRouter sign-in" in await page.inner_text("h1")
    body = await page.inner_text("main")
    assert service.url in body and "Example Labs" in body
    link = await page.query_selector("a[href$='/.well-known/oauth-authorization-server']")
    assert link is not None
    # The hashed inline stylesheet applied here too.
    assert await page.evaluate("getComputedStyle(document.body).display") == "flex"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "landing-desktop.png", full_page=True)
    async with page.expect_navigation():
        await link.click()
    assert '"issuer"' in await page.content()

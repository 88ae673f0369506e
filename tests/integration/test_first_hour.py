"""What a new user meets first: the root page, the consent page's wording, start-up lines."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from openrouter_oauth import pkce
from tests.harness import authorize_url, service_env
from tests.processes import free_port

README = "https://github.com/openrouter-oauth/openrouter-oauth-provider#readme"
DEMO = "https://github.com/openrouter-oauth/openrouter-oauth-provider#try-a-whole-login-scriptsdemo"


async def test_root_greets_a_browser_with_a_page(http, start_service):
    service = start_service(store="memory", OPERATOR_NAME="Example Labs")
    page = await http.get(service.url + "/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Example Labs" in page.text and service.url in page.text
    assert f"{service.url}/.well-known/oauth-authorization-server" in page.text
    # The docs and the demo are linked; keys are checked as the README says: introspection
    # recommended, /me without credentials. Without credentials there is no /introspect.
    assert f'href="{README}"' in page.text and f'href="{DEMO}"' in page.text
    assert "Recommended: token introspection" in page.text
    assert "INTROSPECTION_CREDENTIALS" in page.text and f"{service.url}/me" in page.text
    assert "/introspect" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


async def test_root_answers_a_program_with_json(http, service):
    response = await http.get(service.url + "/", headers={"Accept": "application/json"})
    body = response.json()
    assert body["issuer"] == service.url
    assert body["as_metadata"] == f"{service.url}/.well-known/oauth-authorization-server"
    assert "introspect" not in body
    assert body["service_documentation"] == README


async def test_root_recommends_introspection_where_it_is_configured(http, start_service):
    service = start_service(store="memory", INTROSPECTION_CREDENTIALS=f"rs:{'i' * 32}")
    page = await http.get(service.url + "/", headers={"Accept": "text/html"})
    assert f"Recommended: token introspection at <code>{service.url}/introspect</code>" in (
        page.text
    )
    assert f"{service.url}/me" in page.text


async def test_service_documentation_is_this_projects_docs_or_the_operators(
    http, service, start_service
):
    path = "/.well-known/oauth-authorization-server"
    assert (await http.get(service.url + path)).json()["service_documentation"] == README
    docs = "https://docs.example/oauth"
    mine = start_service(store="memory", SERVICE_DOCUMENTATION_URL=docs)
    assert (await http.get(mine.url + path)).json()["service_documentation"] == docs
    page = await http.get(mine.url + "/", headers={"Accept": "text/html"})
    assert f'href="{docs}"' in page.text


async def test_consent_page_says_who_runs_it_and_where_sign_in_happens(http, start_service, fake):
    service = start_service(store="memory", OPERATOR_NAME="Example Labs")
    page = await http.get(
        authorize_url(
            service.url, "app.example", "https://app.example/cb", pkce.s256(pkce.new_verifier())
        )
    )
    assert "run by Example Labs" in page.text
    assert fake.base_url in page.text
    title = page.text.split("<title>")[1].split("</title>")[0]
    heading = page.text.split("<h1>")[1].split("</h1>")[0]
    assert title.replace("<strong>", "").replace("</strong>", "") == heading.replace(
        "<strong>", ""
    ).replace("</strong>", "")


def _serve(port: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``serve --port port`` to its end; the issuer is the default unless ISSUER_URL is given."""
    return subprocess.run(
        [sys.executable, "-m", "openrouter_oauth.cli", "serve", "--port", str(port), *args],
        env=service_env(openrouter="http://127.0.0.1:9", port=port, **env),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("which", ["port", "metrics"])
def test_a_busy_port_is_one_line_naming_the_address(which):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        port = busy if which == "port" else free_port()
        result = _serve(port, METRICS_PORT=str(busy if which == "metrics" else free_port()))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("openrouter-oauth: error: cannot listen on")
    assert str(busy) in last and "Traceback" not in result.stderr


async def test_a_second_server_on_another_port_needs_no_other_setting(http, start_service):
    """Metrics are off unless METRICS_PORT is set (the chart sets it), so nothing else is
    shared between two local servers."""
    first, second = (start_service(store="memory", METRICS_PORT="") for _ in range(2))
    for running in (first, second):
        assert (await http.get(f"{running.url}/healthz")).status_code == 200
        # The harness would have chosen a metrics port after a clash; none was needed.
        assert running.env["METRICS_PORT"] == ""


@pytest.mark.parametrize(
    ("host", "issuer", "warned"),
    [("0.0.0.0", None, True), ("127.0.0.1", None, False), ("0.0.0.0", "https://a.example", False)],
)
def test_listening_beyond_loopback_with_the_default_issuer_warns_once(host, issuer, warned):
    """Other machines would be sent to 127.0.0.1 by every URL in the metadata. The port is
    held on 127.0.0.1, so the server stops after the warning, never listening anywhere."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        extra = {"ISSUER_URL": issuer} if issuer else {}
        result = _serve(port, "--host", host, METRICS_PORT="0", **extra)
    assert result.returncode == 2 and "cannot listen on" in result.stderr
    lines = [line for line in result.stdout.splitlines() if "ISSUER_URL" in line]
    assert len(lines) == warned, result.stdout
    if warned:
        assert f"--host {host}" in lines[0] and f"http://127.0.0.1:{port}" in lines[0]


async def test_an_unreachable_etcd_is_said_at_once(http, start_service):
    service = start_service(
        store="memory",
        ETCD_ENDPOINTS=f"http://127.0.0.1:{free_port()}",
        SECRET="s" * 40,
        ETCD_TIMEOUT_SECONDS="0.5",
    )
    assert "is not answering; starting anyway" in service.log()
    assert (await http.get(f"{service.url}/healthz")).status_code == 200
    assert (await http.get(f"{service.url}/readyz")).status_code == 503


def test_help_lists_every_setting():
    result = subprocess.run(
        [sys.executable, "-m", "openrouter_oauth.cli", "--help"],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=30,
    )
    for name in ("OPERATOR_NAME", "INTROSPECTION_CREDENTIALS", "METRICS_PORT", "SECRET_FILE"):
        assert name in result.stdout


@pytest.mark.parametrize(
    ("query", "status"),
    [("callback_url=http://127.0.0.1:1/cb&code_challenge=c&key_label=Demo", 200), ("", 400)],
)
async def test_the_fakes_pages_say_they_are_the_fake(http, fake, query, status):
    """Whoever opens the demo's OpenRouter page must not take it for OpenRouter's."""
    page = await http.get(f"{fake.base_url}/auth?{query}")
    assert page.status_code == status
    title = page.text.split("<title>")[1].split("</title>")[0]
    heading = page.text.split("<h1>")[1].split("</h1>")[0]
    assert title == heading and title.startswith("fake OpenRouter: ")

"""Client ID Metadata Documents end to end, honest and hostile (items 1, 12, 16, 18)."""

from __future__ import annotations

from pathlib import Path

import httpx

from openrouter_oauth import pkce
from tests.harness import authorize_url
from tests.integration.flows import REDIRECT, Grant, approved, code_from, openrouter_callback


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def assert_token_refuses_client(http, service, client_id: str) -> None:
    """At /token the same client is invalid_client (401): the signal to register."""
    token = await http.post(
        f"{service.url}/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "code": "c",
            "code_verifier": pkce.new_verifier(),
        },
    )
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"


def consent_url(service, client_id: str) -> str:
    return authorize_url(service.url, client_id, REDIRECT, pkce.s256(pkce.new_verifier()))


async def test_a_metadata_document_client_logs_in_end_to_end(http, docs_service, document_host):
    client_id = document_host.document("/oauth/client.json", [REDIRECT])
    verifier, openrouter_url = await approved(http, docs_service.url, client_id)
    code = await code_from(http, await openrouter_callback(http, openrouter_url))
    response = await Grant(docs_service.url, client_id, code, verifier).redeem(http)
    assert response.status_code == 200, response.text
    assert response.json()["access_token"].startswith("sk-or-v1-")


async def test_a_gzip_bomb_is_refused_without_inflating_it(http, docs_service, document_host):
    before = rss_mib(docs_service.process.pid)
    client_id = document_host.gzip_bomb("/bomb.json", decoded_bytes=200 * 1024 * 1024)
    page = await http.get(consent_url(docs_service, client_id))
    assert page.status_code == 400 and "text/html" in page.headers["content-type"]
    assert "larger than 16384 bytes" in page.text
    await assert_token_refuses_client(http, docs_service, client_id)
    assert rss_mib(docs_service.process.pid) - before < 50


async def test_stacked_encodings_are_refused(http, docs_service, document_host):
    client_id = document_host.gzip_bomb("/stacked.json", decoded_bytes=1000, layers=2)
    page = await http.get(consent_url(docs_service, client_id))
    assert page.status_code == 400 and "unsupported Content-Encoding" in page.text


async def test_a_dripping_host_meets_one_deadline_not_one_per_read(docs_service, document_host):
    """A byte every second for two minutes: the fetch gives up at its 5 s deadline, so
    the person sees the readable page long before the host is done."""
    client_id = document_host.drip("/drip.json", seconds_per_byte=1.0)
    async with httpx.AsyncClient(timeout=30) as http:
        page = await http.get(consent_url(docs_service, client_id))
    assert page.status_code == 400
    assert "did not arrive within 5 seconds" in page.text


async def test_ipv6_forms_of_inward_addresses_are_refused(http, start_service):
    """6to4 of loopback and a site-local address: both inward, whatever the form."""
    service = start_service(store="memory")
    for host in ("[2002:7f00:1::]", "[fec0::1]", "[64:ff9b::a00:1]"):
        page = await http.get(consent_url(service, f"https://{host}/client.json"))
        assert page.status_code == 400, host
        assert "not a public address" in page.text, host


async def test_a_name_that_does_not_resolve_looks_like_an_inward_one(http, start_service):
    """The same page for a name that does not exist and one that resolves inward, so the
    refusal does not map which internal names exist."""
    service = start_service(store="memory")
    pages = [
        await http.get(consent_url(service, f"https://{host}/client.json"))
        for host in ("[fec0::1]", "no-such-host.invalid")
    ]
    assert [page.status_code for page in pages] == [400, 400]
    assert pages[0].text == pages[1].text and "not a public address" in pages[0].text


async def test_metadata_documents_can_be_switched_off(http, start_service, document_host):
    service = start_service(CLIENT_ID_METADATA_DOCUMENTS="off")
    meta = (await http.get(f"{service.url}/.well-known/oauth-authorization-server")).json()
    assert meta["client_id_metadata_document_supported"] is False
    client_id = "https://client.example/oauth/client.json"
    page = await http.get(consent_url(service, client_id))
    assert page.status_code == 400 and "does not accept client metadata documents" in page.text
    await assert_token_refuses_client(http, service, client_id)
    assert document_host.hits == []


async def test_loopback_documents_need_the_development_setting(http, start_service, document_host):
    service = start_service(store="memory")
    client_id = document_host.document("/client.json", [REDIRECT])
    page = await http.get(consent_url(service, client_id))
    assert page.status_code == 400 and document_host.hits == []


async def test_document_names_are_shown_without_hidden_characters(
    http, docs_service, document_host
):
    client_id = document_host.document(
        "/spoof.json", [REDIRECT], client_name="Cl\u202eaude\u200b Code"
    )
    page = await http.get(consent_url(docs_service, client_id))
    assert page.status_code == 200
    assert "Claude Code" in page.text and "\u202e" not in page.text and "\u200b" not in page.text

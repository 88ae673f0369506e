"""Client ID Metadata Documents fetched over real TLS, and the SSRF guard."""

from __future__ import annotations

import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from openrouter_oauth.clients import ClientResolver
from openrouter_oauth.errors import InvalidClient
from openrouter_oauth.metadata_documents import MetadataDocumentFetcher
from openrouter_oauth.sealing import Sealer
from tests.certs import CertificateAuthority

ISSUER = "https://auth.example"

HOST = "client.test"


@pytest.fixture
def document_server(tmp_path):
    """An https server on loopback that answers as the host ``client.test``."""
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def do_GET(self):
            hits.append(self.path)
            status, headers, body = routes.get(self.path, (404, {}, b"{}"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    authority = CertificateAuthority(tmp_path)
    issued = authority.issue(HOST, dns=HOST)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert, issued.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trust = ssl.create_default_context(cafile=str(authority.ca))
    yield server.server_address[1], routes, hits, trust
    server.shutdown()


def url(port: int, path: str = "/client.json") -> str:
    return f"https://{HOST}:{port}{path}"


def resolver_for(trust, **kwargs) -> tuple[ClientResolver, MetadataDocumentFetcher]:
    # Only the address policy is relaxed (loopback stands in for a public host here);
    # name resolution, pinning, TLS verification and the limits are the real ones.
    fetcher = MetadataDocumentFetcher(
        address_allowed=lambda ip: ip.is_loopback, verify=trust, **kwargs
    )
    fetcher._resolve = _loopback(fetcher._resolve)
    return ClientResolver(Sealer("x" * 40, issuer=ISSUER), fetcher), fetcher


def _loopback(resolve):
    async def resolve_test_host(host, port):
        return await resolve("127.0.0.1" if host == HOST else host, port)

    return resolve_test_host


def document(port: int, **extra) -> bytes:
    return json.dumps(
        {
            "client_id": url(port),
            "client_name": "Doc Client",
            "redirect_uris": ["http://127.0.0.1:7777/cb"],
            **extra,
        }
    ).encode()


async def test_document_is_fetched_verified_and_cached(document_server):
    port, routes, hits, trust = document_server
    routes["/client.json"] = (200, {"Cache-Control": "max-age=60"}, document(port))
    resolver, fetcher = resolver_for(trust)
    try:
        client = await resolver.resolve(url(port))
        assert client.name == "Doc Client" and client.kind == "metadata_document"
        assert client.check_redirect_uri("http://127.0.0.1:9999/cb")
        await resolver.resolve(url(port))
        assert hits == ["/client.json"]
    finally:
        await fetcher.aclose()


@pytest.mark.parametrize(
    ("status", "headers", "body", "reason"),
    [
        (200, {}, b"not json", "not JSON"),
        (200, {}, b"[]", "not a JSON object"),
        (302, {"Location": "https://client.test/other"}, b"", "HTTP 302"),
        (404, {}, b"{}", "HTTP 404"),
        (200, {}, b" " * 20000, "larger than 16384 bytes"),
    ],
)
async def test_bad_documents_are_invalid_client(document_server, status, headers, body, reason):
    port, routes, _, trust = document_server
    routes["/client.json"] = (status, headers, body)
    resolver, fetcher = resolver_for(trust)
    try:
        with pytest.raises(InvalidClient, match=reason):
            await resolver.resolve(url(port))
    finally:
        await fetcher.aclose()


async def test_document_must_name_itself(document_server):
    port, routes, _, trust = document_server
    routes["/client.json"] = (200, {}, document(port, client_id="https://other.test/c.json"))
    resolver, fetcher = resolver_for(trust)
    try:
        with pytest.raises(InvalidClient, match="different client_id"):
            await resolver.resolve(url(port))
    finally:
        await fetcher.aclose()


async def test_certificate_is_verified(document_server):
    port, routes, _, _ = document_server
    routes["/client.json"] = (200, {}, document(port))
    resolver, fetcher = resolver_for(ssl.create_default_context())
    try:
        with pytest.raises(InvalidClient, match="could not be fetched"):
            await resolver.resolve(url(port))
    finally:
        await fetcher.aclose()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]", "192.168.1.1", "localhost"]
)
async def test_default_policy_refuses_inward_addresses(host):
    fetcher = MetadataDocumentFetcher()
    resolver = ClientResolver(Sealer("x" * 40, issuer=ISSUER), fetcher)
    try:
        with pytest.raises(InvalidClient):
            await resolver.resolve(f"https://{host}/client.json")
    finally:
        await fetcher.aclose()


def test_public_address_policy():
    from openrouter_oauth.metadata_documents import is_public_address

    assert is_public_address(ipaddress.ip_address("93.184.216.34"))
    assert is_public_address(ipaddress.ip_address("2606:2800:220:1::1"))
    for inward in (
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
    ):
        assert not is_public_address(ipaddress.ip_address(inward)), inward

"""The pure rules behind the security fixes: address policy, schemes, hosts, names, limits."""

from __future__ import annotations

import gzip
import ipaddress

import pytest

from openrouter_oauth.clients import clean_name, registered_name
from openrouter_oauth.errors import InvalidClient, InvalidClientMetadata, InvalidRedirectUri
from openrouter_oauth.metadata_documents import (
    MAX_DOCUMENT_BYTES,
    embedded_ipv4,
    is_public_address,
    read_capped,
)
from openrouter_oauth.redirects import origin, parse_redirect_uri


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4 of loopback
        ("2002:a00:1::1", "10.0.0.1"),  # 6to4 of a private address
        ("2002:a9fe:a9fe::", "169.254.169.254"),  # 6to4 of the metadata service
        ("64:ff9b::a00:1", "10.0.0.1"),  # NAT64 well-known prefix
        ("64:ff9b:1::c0a8:1", "192.168.0.1"),  # NAT64 local-use prefix
        ("::127.0.0.1", "127.0.0.1"),  # IPv4-compatible (deprecated)
        ("::ffff:10.0.0.1", "10.0.0.1"),  # IPv4-mapped
    ],
)
def test_ipv6_forms_embedding_a_private_ipv4_are_not_public(address, embedded):
    ip = ipaddress.ip_address(address)
    assert embedded_ipv4(ip) == ipaddress.ip_address(embedded)
    assert not is_public_address(ip)


@pytest.mark.parametrize(
    "address",
    [
        "fec0::1",  # site-local (deprecated, still routed inward by some stacks)
        "fec0:1234::5",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_site_local_and_teredo_are_not_public(address):
    assert not is_public_address(ipaddress.ip_address(address))


def test_embedded_public_ipv4_is_judged_as_that_address():
    assert is_public_address(ipaddress.ip_address("2002:5db8:d822::"))  # 93.184.216.34
    assert is_public_address(ipaddress.ip_address("64:ff9b::5db8:d822"))
    assert embedded_ipv4(ipaddress.ip_address("2606:2800:220:1::1")) is None


@pytest.mark.parametrize(
    "uri",
    [
        "ms-msdt:/id%20PCWDiagnostic",
        "ms-msdt:/id",
        "MS-MSDT:/id",
        "search-ms:query=x&crumb=location:%5C%5Cevil.example",
        "ms-officecmd:{}",
        "ms-word:ofe|u|https://evil.example/a.docx",
        "ms-cxh-full://0",
        "its:evil.chm::/x.htm",
        "mk:@MSITStore:x",
        "smb://evil.example/share",
    ],
)
def test_abused_os_protocol_handlers_are_refused(uri):
    with pytest.raises(InvalidRedirectUri, match="scheme"):
        parse_redirect_uri(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example;script-src:443/cb",
        "https://app.example,evil.example/cb",
        "https://a;b.example/cb",
        "https://app_x.example/cb",
        "https://cl\u0430ude.ai/cb",  # Cyrillic a: register the punycode form instead
        "https://app.example:/cb",
        "https://-app.example/cb",
        "https://[::1/cb",
    ],
)
def test_hosts_must_be_rfc3986_host_names(uri):
    with pytest.raises(InvalidRedirectUri):
        parse_redirect_uri(uri)


def test_punycode_hosts_and_ip_literals_are_accepted():
    for uri in ("https://xn--clude-7ve.ai/cb", "https://[2001:db8::1]:8443/cb", "http://[::1]/cb"):
        parse_redirect_uri(uri)


def test_csp_origin_is_rebuilt_from_validated_parts():
    assert origin(parse_redirect_uri("https://App.Example:8443/cb?x=1")) == (
        "https://app.example:8443"
    )
    assert origin(parse_redirect_uri("http://[::1]:9/cb")) == "http://[::1]:9"


@pytest.mark.parametrize("name", ["Evil\u202egnp.exe", "Zero\u200bwidth", "Bell\x07", "Lone\ud800"])
def test_registration_refuses_hidden_characters_in_names(name):
    with pytest.raises(InvalidClientMetadata, match="client_name"):
        registered_name(name)


def test_names_from_elsewhere_are_shown_without_hidden_characters():
    assert clean_name("Cl\u202eaude\u200b  Code", "x") == "Claude Code"
    assert clean_name("\u202e\u200b", "fallback") == "fallback"
    assert clean_name("\ud800Name", "x") == "Name"


async def _chunks(*parts: bytes):
    for part in parts:
        yield part


async def test_a_gzip_bomb_is_refused_without_inflating_it():
    bomb = gzip.compress(b" " * (50 * 1024 * 1024))  # 50 MiB of spaces in ~50 KiB
    small_bomb = gzip.compress(gzip.compress(b"{" + b" " * (20 * 1024 * 1024) + b"}"))
    with pytest.raises(InvalidClient, match="larger than"):
        await read_capped(_chunks(bomb[:1000]), "gzip")
    with pytest.raises(InvalidClient, match="larger than"):
        await read_capped(_chunks(small_bomb[: MAX_DOCUMENT_BYTES // 2]), "gzip")


@pytest.mark.parametrize("encoding", ["gzip, gzip", "br", "deflate", "zstd", "gzip,identity"])
async def test_stacked_and_unknown_encodings_are_refused(encoding):
    with pytest.raises(InvalidClient, match="Content-Encoding"):
        await read_capped(_chunks(b"{}"), encoding)


async def test_bodies_are_capped_as_received_and_as_decoded():
    assert await read_capped(_chunks(b'{"a":', b"1}"), "") == b'{"a":1}'
    assert await read_capped(_chunks(gzip.compress(b'{"a":1}')), "gzip") == b'{"a":1}'
    with pytest.raises(InvalidClient, match="larger than"):
        await read_capped(_chunks(b" " * MAX_DOCUMENT_BYTES, b" "), "identity")
    with pytest.raises(InvalidClient, match="not valid gzip"):
        await read_capped(_chunks(b"not gzip"), "gzip")
    with pytest.raises(InvalidClient, match="not valid gzip"):
        await read_capped(_chunks(gzip.compress(b"{}")[:-8]), "gzip")

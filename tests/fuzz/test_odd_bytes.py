"""Raw bytes in every header and lone surrogates in every JSON string: never a 500.

httpx refuses to send such requests, so these go over a plain socket exactly as an
attacker would write them.
"""

from __future__ import annotations

import json
import socket

import pytest

ODD = [b"\xff\xfe", b"\xc3\x28", b"\x80", b"\xed\xa0\x80"]  # invalid UTF-8, CESU surrogate
HEADERS = [
    "Authorization",
    "Cookie",
    "Content-Type",
    "X-Request-ID",
    "X-Forwarded-For",
    "Accept",
    "Origin",
    "User-Agent",
    "MCP-Protocol-Version",
]
REQUESTS = [
    ("GET", "/me", b""),
    ("GET", "/authorize?client_id=app.example&response_type=code", b""),
    ("POST", "/authorize", b"ticket=x&action=approve"),
    ("GET", "/callback?session=x&code=y", b""),
    ("POST", "/token", b"grant_type=authorization_code&code=x&client_id=y&code_verifier=z"),
    ("POST", "/register", b'{"redirect_uris": ["http://127.0.0.1/cb"]}'),
    ("GET", "/.well-known/oauth-authorization-server", b""),
    ("GET", "/healthz", b""),
]


def send(port: int, head: bytes, body: bytes = b"") -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("header", HEADERS)
@pytest.mark.parametrize(("method", "path", "body"), REQUESTS, ids=[r[1][:20] for r in REQUESTS])
def test_raw_bytes_in_every_header(fuzz_service, header, method, path, body):
    content_type = (
        b"application/json" if path == "/register" else (b"application/x-www-form-urlencoded")
    )
    for odd in ODD:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
            + (b"" if header == "Content-Type" else b"Content-Type: " + content_type + b"\r\n")
            + header.encode()
            + b": Bearer sk-"
            + odd
            + b"\r\n"
        )
        assert send(fuzz_service.port, head, body) < 500, (header, odd)


REGISTRATION = {
    "redirect_uris": ["http://127.0.0.1/cb"],
    "client_name": "Name",
    "client_uri": "https://app.example",
    "scope": "openrouter",
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code"],
    "response_types": ["code"],
    "software_id": "sw",
}
TOKEN = {"grant_type": "authorization_code", "code": "c", "client_id": "i", "code_verifier": "v"}


def _with_surrogate(document: dict, path: tuple) -> dict:
    copy = json.loads(json.dumps(document))
    target = copy
    for step in path[:-1]:
        target = target[step]
    value = target[path[-1]]
    target[path[-1]] = "\ud800" + value if isinstance(value, str) else value
    return copy


def _string_paths(document: dict) -> list[tuple]:
    paths: list[tuple] = []
    for name, value in document.items():
        if isinstance(value, str):
            paths.append((name,))
        elif isinstance(value, list):
            paths.extend((name, i) for i, item in enumerate(value) if isinstance(item, str))
    return paths


CASES = [("/register", REGISTRATION, p) for p in _string_paths(REGISTRATION)] + [
    ("/token", TOKEN, p) for p in _string_paths(TOKEN)
]


@pytest.mark.parametrize(
    ("path", "document", "where"), CASES, ids=[f"{c[0]}:{c[2]}" for c in CASES]
)
def test_lone_surrogates_in_every_json_string(fuzz_service, path, document, where):
    body = json.dumps(_with_surrogate(document, where)).encode()  # "\ud800" as an escape
    key_body = json.dumps({"\ud800" + k: v for k, v in document.items()}).encode()
    for raw in (body, key_body):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
            + b"Content-Type: application/json\r\n"
        )
        assert send(fuzz_service.port, head, raw) == 400


def test_no_stack_trace_in_the_log(fuzz_service):
    assert "Traceback" not in fuzz_service.log()

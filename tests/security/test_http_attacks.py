"""Attacks on the HTTP layer: floods, odd bytes, slow clients, disconnects (items 4, 6, 9, 10)."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from tests.integration.flows import authorized
from tests.waiting import eventually


def raw_request(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send bytes exactly as given (httpx would refuse or re-encode them)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_an_anonymous_flood_of_bad_keys_is_bounded(http, start_service, fake):
    service = start_service(RATE_LIMITS="me=20/min")
    before = fake.requests["/api/v1/key"]
    statuses = []
    for i in range(40):
        response = await http.get(
            f"{service.url}/me", headers={"Authorization": f"Bearer sk-or-v1-bad{i}"}
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
            assert response.json()["error"] == "too_many_requests"
    assert statuses.count(401) == 20 and statuses.count(429) == 20
    assert fake.requests["/api/v1/key"] - before == 20


async def test_cached_checks_of_valid_keys_are_not_limited(http, start_service, fake):
    """A resource server re-checking its users' keys is served from the cache."""
    service = start_service(RATE_LIMITS="me=5/min")
    keys = [fake.issue_key() for _ in range(5)]
    for _ in range(10):
        for key in keys:
            response = await http.get(
                f"{service.url}/me", headers={"Authorization": f"Bearer {key}"}
            )
            assert response.status_code == 200


async def test_concurrent_key_checks_are_capped(start_service, fake):
    """Distinct keys at once: at most KEY_CHECK_CONCURRENCY reach OpenRouter together;
    the rest wait briefly, then get 503, never a pile of upstream calls."""
    service = start_service(RATE_LIMITS="off", KEY_CHECK_CONCURRENCY="2")
    fake.fail_next("/api/v1/key", *([3.0] * 2))  # the first two checks stall 3 s
    async with httpx.AsyncClient(timeout=20) as http:
        answers = await asyncio.gather(
            *(
                http.get(f"{service.url}/me", headers={"Authorization": f"Bearer sk-or-v1-c{i}"})
                for i in range(8)
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(503) >= 5 and 500 not in statuses
    assert all(
        a.json()["error"] == "temporarily_unavailable" for a in answers if a.status_code == 503
    )


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (b"GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-\xff\xfe\r\n\r\n", 401),
        (b"GET /me HTTP/1.1\r\nHost: x\r\nAuthorization: \xc3\x28 x\r\n\r\n", 401),
        (
            b"POST /authorize HTTP/1.1\r\nHost: x\r\nCookie: oauth_csrf=\xff\xfe\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 20\r\n\r\n"
            b"ticket=x&action=deny",
            400,
        ),
        (b"GET /authorize?client_id=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ],
)
def test_odd_bytes_get_standard_errors(service, request_bytes, expected):
    answer = raw_request(
        service.port, request_bytes.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    )
    assert status_of(answer) == expected, answer[:300]


@pytest.mark.parametrize(
    "body",
    [
        b'{"redirect_uris": ["http://127.0.0.1/cb"], "client_name": "\\ud800"}',
        b'{"redirect_uris": ["http://127.0.0.1/cb\\udfff"]}',
        b'{"redirect_uris": ["http://127.0.0.1/cb"], "client_uri": "\\ud800x"}',
        b'{"\\ud800": 1, "redirect_uris": ["http://127.0.0.1/cb"]}',
    ],
)
def test_lone_surrogates_in_json_get_standard_errors(service, body):
    request = (
        b"POST /register HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    answer = raw_request(service.port, request)
    assert status_of(answer) == 400, answer[:300]


def test_no_traceback_from_odd_bytes(service):
    assert "Traceback" not in service.log() and '"level": "error"' not in service.log()


async def test_slow_clients_are_cut_off_and_do_not_stop_others(start_service):
    # The drippers share one address: this test is about the deadline, not the share.
    service = start_service(
        store="memory",
        REQUEST_DEADLINE_SECONDS="2",
        MAX_CONNECTIONS="40",
        MAX_CONNECTIONS_PER_ADDRESS="40",
    )
    drippers = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(10)]
    try:
        started = time.monotonic()
        closed: set[int] = set()
        async with httpx.AsyncClient(timeout=5) as http:
            # Bounded loop: a byte per dripper per 0.5 s, for at most 8 s.
            while len(closed) < len(drippers) and time.monotonic() - started < 8:
                for i, sock in enumerate(drippers):
                    if i in closed:
                        continue
                    try:
                        sock.sendall(b"G" if time.monotonic() - started < 0.1 else b"E")
                    except OSError:
                        closed.add(i)
                assert (await http.get(f"{service.url}/healthz")).status_code == 200
                await asyncio.sleep(0.5)
        assert len(closed) == len(drippers)  # each cut off, though it never went quiet
    finally:
        for sock in drippers:
            sock.close()


def test_connections_beyond_the_cap_are_closed_at_once(start_service):
    service = start_service(store="memory", MAX_CONNECTIONS="5", REQUEST_DEADLINE_SECONDS="30")
    held = [socket.create_connection(("127.0.0.1", service.port)) for _ in range(5)]
    try:
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", service.port), timeout=5) as extra:
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = extra.recv(100)
            except ConnectionResetError:  # aborted: a reset is as closed as b""
                answer = b""
        assert answer == b""
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)
    assert httpx.get(f"{service.url}/healthz").status_code == 200


def idle_after_one_request(port: int, source: str = "127.0.0.1") -> socket.socket | None:
    """A keep-alive connection that made one request and now idles; ``None`` if the
    server refused it on arrival."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(65536)
    except ConnectionResetError:
        answer = b""
    if not answer:
        sock.close()
        return None
    assert status_of(answer) == 200 and b"keep-alive" in answer.lower()
    return sock


def served(port: int, source: str = "127.0.0.1") -> bool:
    """Whether a new client at ``source`` gets an answer now."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=5) as http:
        try:
            return http.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError):
            return False


async def test_idle_keep_alive_connections_do_not_hold_the_slots(start_service):
    """Every slot taken by a connection that made one request and went quiet: they are
    closed after KEEP_ALIVE_SECONDS, and a new client is served."""
    service = start_service(
        store="memory",
        MAX_CONNECTIONS="20",
        MAX_CONNECTIONS_PER_ADDRESS="20",
        KEEP_ALIVE_SECONDS="2",
    )
    idle = [idle_after_one_request(service.port) for _ in range(20)]
    try:
        assert all(idle), "the server refused a connection below its cap"
        assert not served(service.port), "the slots were not all taken"

        async def new_client_served() -> bool:
            return served(service.port)

        await eventually(new_client_served, within=10, step=0.5, what="a new client served")
        for sock in idle:
            assert sock.recv(1) == b""  # closed by the server, not by us
    finally:
        for sock in idle:
            if sock:
                sock.close()


def test_one_address_cannot_take_every_slot(start_service):
    """The default share: a tenth of MAX_CONNECTIONS per address, so a client holding
    connections open (within the keep-alive time) leaves room for everybody else."""
    service = start_service(store="memory", MAX_CONNECTIONS="20", KEEP_ALIVE_SECONDS="15")
    held = [idle_after_one_request(service.port) for _ in range(20)]
    try:
        assert sum(1 for sock in held if sock) == 2  # 20 // 10
        assert served(service.port, source="127.0.0.2")
        assert served(service.port, source="127.0.0.3")
        assert not served(service.port, source="127.0.0.1")
    finally:
        for sock in held:
            if sock:
                sock.close()
    assert "protocol.connection_lost" not in service.log()


async def test_client_disconnects_are_not_server_errors(start_service, fake):
    service = start_service()
    async with httpx.AsyncClient(timeout=10) as http:
        grant = await authorized(http, service.url)
        fake.fail_next("/api/v1/auth/keys", 2.0)  # OpenRouter stalls; the client gives up
        with pytest.raises(httpx.ReadTimeout):
            await http.post(f"{service.url}/token", data=grant.form(), timeout=0.5)

        async def counted() -> str:
            text = (await http.get(service.metrics_url)).text
            return text if 'route="token",status="499"' in text else ""

        metrics = await eventually(counted, within=10, what="the disconnect counted as 499")
    assert 'status="500"' not in metrics
    assert "unhandled error" not in service.log()

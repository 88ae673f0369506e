"""Faults in what the service depends on: answered quickly and cleanly, and recovered from."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.harness import EtcdServer, Service, service_env
from tests.processes import free_port
from tests.waiting import eventually

from .flows import Grant, approved, authorized, code_from, openrouter_callback, register

SECRET = "f" * 40


@pytest.fixture
def own_etcd():
    server = EtcdServer().start()
    yield server
    server.destroy()


async def ready_again(http, url: str, within: float) -> None:
    """Recovery needs no restart; it is bounded by the store's reconnect backoff (1 s)."""

    async def ready() -> bool:
        return (await http.get(f"{url}/readyz")).status_code == 200

    await eventually(ready, within=within, what="ready again after etcd returned")


async def test_etcd_outage_answers_503_and_recovers(own_etcd, fake):
    port = free_port()
    env = service_env(
        openrouter=fake.base_url,
        port=port,
        etcd=own_etcd.endpoint,
        SECRET=SECRET,
        ETCD_TIMEOUT_SECONDS="1",
    )
    service = Service(env, port).start()
    try:
        # Generous client timeouts: the service must answer on its own, well before these.
        async with httpx.AsyncClient(timeout=15) as http:
            before = await authorized(http, service.url)  # its grant is written to etcd
            client_id = await register(http, service.url)
            verifier, openrouter_url = await approved(http, service.url, client_id)

            own_etcd.stop()
            ready = await http.get(f"{service.url}/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
            token = await before.redeem(http)
            assert token.status_code == 503
            assert token.json()["error"] == "temporarily_unavailable"
            # Registration needs no store and keeps working.
            assert (
                await http.post(
                    f"{service.url}/register", json={"redirect_uris": ["http://127.0.0.1/cb"]}
                )
            ).status_code == 201
            callback = await openrouter_callback(http, openrouter_url)
            during = await http.get(callback)
            assert during.status_code == 503
            assert during.headers["content-type"].startswith("text/html")

            own_etcd.start()
            await ready_again(http, service.url, within=5)
            # Both flows written before the outage finish after it.
            assert (await before.redeem(http)).status_code == 200
            code = await code_from(http, callback)
            assert (
                await Grant(service.url, client_id, code, verifier).redeem(http)
            ).status_code == 200
    finally:
        service.stop()
    assert "Traceback" not in service.log()


async def test_slow_openrouter_times_out_and_the_code_survives(http, start_service, fake):
    service = start_service(SECRET=SECRET, ETCD_PREFIX="/slow/", UPSTREAM_TIMEOUT_SECONDS="0.5")
    grant = await authorized(http, service.url)
    fake.fail_next("/api/v1/auth/keys", 1.5)
    slow = await grant.redeem(http)
    assert slow.status_code == 503
    assert slow.json()["error"] == "temporarily_unavailable"
    assert grant.code not in slow.text
    retried = await grant.redeem(http)
    assert retried.status_code == 200, retried.text


async def test_slow_openrouter_at_me_is_503(http, start_service, fake):
    service = start_service(store="memory", UPSTREAM_TIMEOUT_SECONDS="0.5")
    key = fake.issue_key()
    fake.fail_next("/api/v1/key", 1.5)
    response = await http.get(f"{service.url}/me", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503
    assert key not in response.text


async def test_a_killed_process_leaves_the_flow_to_another(http, start_service):
    env = {"SECRET": SECRET, "ETCD_PREFIX": "/killed/"}
    first = start_service(**env)
    second = start_service(**env, ISSUER_URL=first.url)
    client_id = await register(http, first.url)
    verifier, openrouter_url = await approved(http, first.url, client_id)
    first.stop(signal.SIGKILL)
    callback = await openrouter_callback(http, openrouter_url)
    code = await code_from(http, callback.replace(first.url, second.url))
    assert (await Grant(second.url, client_id, code, verifier).redeem(http)).status_code == 200

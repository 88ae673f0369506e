"""State lives in etcd: other processes, restarts and secret rotation lose nothing."""

from __future__ import annotations

import signal

from .flows import Grant, approved, authorized, code_from, openrouter_callback, register

SECRET_A = "a" * 40
SECRET_B = "b" * 40


async def test_flow_started_on_one_process_finishes_on_another(http, start_service):
    prefix = "/shared-two/"
    first = start_service(SECRET=SECRET_A, ETCD_PREFIX=prefix)
    second = start_service(SECRET=SECRET_A, ETCD_PREFIX=prefix, ISSUER_URL=first.url)
    client_id = await register(http, first.url)
    verifier, openrouter_url = await approved(http, first.url, client_id)
    callback = await openrouter_callback(http, openrouter_url)
    # OpenRouter sends the browser back to the issuer; replay it against the other process.
    code = await code_from(http, callback.replace(first.url, second.url))
    token = await Grant(second.url, client_id, code, verifier).redeem(http)
    assert token.status_code == 200, token.text


async def test_restart_in_the_middle_of_a_flow_loses_nothing(http, start_service):
    port_env = {"SECRET": SECRET_A, "ETCD_PREFIX": "/restart/"}
    service = start_service(**port_env)
    client_id = await register(http, service.url)
    verifier, openrouter_url = await approved(http, service.url, client_id)
    service.stop(signal.SIGKILL)
    restarted = start_service(port=service.port, **port_env)
    code = await code_from(http, await openrouter_callback(http, openrouter_url))
    restarted.stop()
    again = start_service(port=service.port, **port_env)
    token = await Grant(again.url, client_id, code, verifier).redeem(http)
    assert token.status_code == 200, token.text


async def test_secret_rotation_keeps_clients_and_flows_in_flight(http, start_service):
    env = {"ETCD_PREFIX": "/rotation/"}
    old = start_service(SECRET=SECRET_A, **env)
    client_id = await register(http, old.url)
    verifier, openrouter_url = await approved(http, old.url, client_id)
    old.stop()

    rotated = start_service(port=old.port, SECRET=SECRET_B, PREVIOUS_SECRETS=SECRET_A, **env)
    code = await code_from(http, await openrouter_callback(http, openrouter_url))
    assert (await Grant(rotated.url, client_id, code, verifier).redeem(http)).status_code == 200
    rotated.stop()

    # Once the old secret is dropped, its client ids stop working, with the re-register signal.
    dropped = start_service(port=old.port, SECRET=SECRET_B, **env)
    response = await http.post(
        f"{dropped.url}/token",
        data={
            "grant_type": "authorization_code",
            "code": "x",
            "client_id": client_id,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


async def test_embedded_store_runs_a_whole_flow(http, start_service):
    service = start_service(store="memory")
    grant = await authorized(http, service.url)
    assert (await grant.redeem(http)).status_code == 200
    assert (await grant.redeem(http)).json()["error"] == "invalid_grant"
    assert "SECRET is not set" in service.log()


async def test_etcd_workers_share_state(http, start_service):
    service = start_service(SECRET=SECRET_A, workers=2, ETCD_PREFIX="/workers/")
    for _ in range(4):  # connections land on either worker
        grant = await authorized(http, service.url)
        assert (await grant.redeem(http)).status_code == 200

"""ACCESS_TOKENS=bound: the MCP client holds tokens of ours; the key reaches only the
resource server its tokens are for, through token exchange."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from openrouter_oauth import pkce
from tests.fakes.openrouter import FakeOpenRouter
from tests.harness import EtcdServer, Service, authorize_url, free_port, service_env

from .flows import REDIRECT, Grant, authorized, register

A = {"id": "server-a", "secret": "a-secret-" + "a" * 32, "resource": "http://127.0.0.1:8001/mcp"}
B = {"id": "server-b", "secret": "b-secret-" + "b" * 32, "resource": "https://b.example.com/mcp"}
A_AUTH, B_AUTH = (A["id"], A["secret"]), (B["id"], B["secret"])
PLAIN = ("plain-introspector", "p" * 40)  # INTROSPECTION_CREDENTIALS: no resource
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TYPE = "urn:ietf:params:oauth:token-type:access_token"


BOUND_SETTINGS = {
    "ACCESS_TOKENS": "bound",
    "RESOURCE_SERVERS": json.dumps([A, B]),
    "INTROSPECTION_CREDENTIALS": f"{PLAIN[0]}:{PLAIN[1]}",
    "ACCESS_TOKEN_SECONDS": "300",
    "RATE_LIMITS": "off",
}


def bound_env(fake: FakeOpenRouter, port: int, etcd: str, **extra: str) -> dict[str, str]:
    return service_env(
        openrouter=fake.base_url,
        port=port,
        etcd=etcd,
        **{"ETCD_PREFIX": f"/bound{port}/", **BOUND_SETTINGS, **extra},
    )


@pytest.fixture(scope="module")
def bound(etcd: EtcdServer, fake: FakeOpenRouter) -> Iterator[Service]:
    port = free_port()
    running = Service(bound_env(fake, port, etcd.endpoint), port).start()
    yield running
    running.stop()


async def login(http: httpx.AsyncClient, service: Service, resource: str = A["resource"]):
    grant = await authorized(http, service.url, resource=resource)
    response = await grant.redeem(http)
    assert response.status_code == 200, response.text
    return grant, response


def minted(fake: FakeOpenRouter) -> str:
    """The key the fake OpenRouter issued last."""
    return list(fake.keys)[-1]


async def exchange(http, service, token, auth=A_AUTH) -> httpx.Response:
    form = {"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": ACCESS_TYPE}
    return await http.post(f"{service.url}/token", data=form, auth=auth)


async def refresh(http, service, grant: Grant, refresh_token: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await http.post(f"{service.url}/token", data={**form, "client_id": grant.client_id})


async def introspect(http, service, token, auth=A_AUTH) -> dict:
    response = await http.post(f"{service.url}/introspect", data={"token": token}, auth=auth)
    assert response.status_code == 200, response.text
    return response.json()


# -- resource (RFC 8707) and consent ---------------------------------------------


async def consent(http, service, **extra: str) -> httpx.Response:
    client_id = await register(http, service.url)
    challenge = pkce.s256(pkce.new_verifier())
    return await http.get(authorize_url(service.url, client_id, REDIRECT, challenge, **extra))


async def test_consent_names_the_mcp_server(http, bound):
    page = await consent(http, bound, resource="HTTPS://B.example.com/mcp/")  # canonically B
    assert page.status_code == 200, page.text
    assert "server-b" in page.text and "https://b.example.com/mcp" in page.text
    assert "handed to this application" not in page.text


@pytest.mark.parametrize(
    "resource", ["https://c.example.com/mcp", "http://127.0.0.1:8001/other", None]
)
async def test_a_resource_not_declared_is_a_page_never_a_redirect(http, bound, resource):
    page = await consent(http, bound, **({"resource": resource} if resource else {}))
    # Two servers are declared, so an absent resource names none of them either.
    assert page.status_code == 400 and "location" not in page.headers
    assert "resource" in page.text and page.headers["content-type"].startswith("text/html")


# -- tokens of ours ----------------------------------------------------------------


async def test_login_gives_tokens_of_ours_never_the_key(http, bound, fake):
    _, response = await login(http, bound)
    body = response.json()
    key = minted(fake)
    assert key not in response.text
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["scope"] == "openrouter"
    assert not body["access_token"].startswith("sk-or-")


async def test_a_resource_at_token_must_be_the_authorized_one(http, bound):
    grant = await authorized(http, bound.url, resource=A["resource"])
    wrong = await grant.redeem(http, resource=B["resource"])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_target"
    right = await grant.redeem(http, resource="HTTP://127.0.0.1:8001/mcp/")
    assert right.status_code == 200, right.text


async def test_only_the_audience_exchanges_the_token_for_the_key(http, bound, fake):
    _, response = await login(http, bound)
    access = response.json()["access_token"]
    key = minted(fake)
    answer = await exchange(http, bound, access)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["access_token"] == key
    assert body["issued_token_type"] == ACCESS_TYPE and body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 300
    assert answer.headers["cache-control"] == "no-store"

    other = await exchange(http, bound, access, auth=B_AUTH)
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    assert key not in other.text


@pytest.mark.parametrize("auth", [None, (A["id"], "wrong-" + A["secret"]), PLAIN])
async def test_the_exchange_needs_a_resource_servers_credentials(http, bound, auth):
    _, response = await login(http, bound)
    answer = await exchange(http, bound, response.json()["access_token"], auth=auth)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert answer.headers["www-authenticate"].startswith("Basic")


async def test_introspection_answers_the_audience_alone(http, bound, fake):
    _, response = await login(http, bound)
    access = response.json()["access_token"]
    key = minted(fake)
    seen = await http.post(f"{bound.url}/introspect", data={"token": access}, auth=A_AUTH)
    assert key not in seen.text
    body = seen.json()
    assert body["active"] is True and body["token_type"] == "Bearer"
    assert body["aud"] == A["resource"] and body["scope"] == "openrouter"
    assert body["client_id"] and body["iat"] <= body["exp"]
    assert body["label"] == "Test Client" and "limit_remaining" in body
    assert await introspect(http, bound, access, auth=B_AUTH) == {"active": False}
    assert await introspect(http, bound, access, auth=PLAIN) == {"active": False}
    # The key itself is no token here: a bound-mode server must not accept it.
    assert await introspect(http, bound, key) == {"active": False}


async def test_metadata_in_bound_mode(http, bound):
    meta = (await http.get(f"{bound.url}/.well-known/oauth-authorization-server")).json()
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token", EXCHANGE]
    assert meta["token_endpoint_auth_methods_supported"] == ["none", "client_secret_basic"]
    assert meta["revocation_endpoint"] == f"{bound.url}/revoke"
    assert meta["revocation_endpoint_auth_methods_supported"] == ["none"]
    assert meta["introspection_endpoint"] == f"{bound.url}/introspect"


# -- refresh -----------------------------------------------------------------------


async def test_refresh_rotates_and_the_new_pair_works(http, bound, fake):
    grant, response = await login(http, bound)
    key = minted(fake)
    first = response.json()
    renewed = await refresh(http, bound, grant, first["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    pair = renewed.json()
    assert pair["refresh_token"] != first["refresh_token"] and pair["expires_in"] == 300
    assert key not in renewed.text
    assert (await exchange(http, bound, pair["access_token"])).json()["access_token"] == key
    # The spent one, just replaced: refused, and the grant lives on (a concurrent loser).
    spent = await refresh(http, bound, grant, first["refresh_token"])
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
    assert (await refresh(http, bound, grant, pair["refresh_token"])).status_code == 200


async def test_a_refresh_token_is_for_its_own_client(http, bound):
    grant, response = await login(http, bound)
    other = Grant(bound.url, await register(http, bound.url), "", "")
    refused = await refresh(http, bound, other, response.json()["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert (await refresh(http, bound, grant, response.json()["refresh_token"])).status_code == 200


async def test_thirty_concurrent_refreshes_give_one_pair(bound):
    async with httpx.AsyncClient(timeout=20) as http:
        grant, response = await login(http, bound)
        token = response.json()["refresh_token"]
        answers = await asyncio.gather(*(refresh(http, bound, grant, token) for _ in range(30)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [400] * 29, statuses
        assert {a.json()["error"] for a in answers if a.status_code == 400} == {"invalid_grant"}
        winner = next(a for a in answers if a.status_code == 200).json()
        assert (await exchange(http, bound, winner["access_token"])).status_code == 200
        assert (await refresh(http, bound, grant, winner["refresh_token"])).status_code == 200


# -- revocation --------------------------------------------------------------------


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
async def test_revoking_either_token_ends_the_grant(http, bound, which):
    grant, response = await login(http, bound)
    pair = response.json()
    revoked = await http.post(
        f"{bound.url}/revoke",
        data={"token": pair[which], "token_type_hint": which, "client_id": grant.client_id},
    )
    assert revoked.status_code == 200
    assert (await exchange(http, bound, pair["access_token"])).json()["error"] == "invalid_grant"
    assert await introspect(http, bound, pair["access_token"]) == {"active": False}
    again = await refresh(http, bound, grant, pair["refresh_token"])
    assert again.json()["error"] == "invalid_grant"
    # The code cannot bring the grant back either.
    assert (await grant.redeem(http)).json()["error"] == "invalid_grant"


async def test_revocation_of_unknown_tokens_is_200_and_of_others_tokens_refused(http, bound):
    grant, response = await login(http, bound)
    unknown = await http.post(
        f"{bound.url}/revoke", data={"token": "not-a-token", "client_id": grant.client_id}
    )
    assert unknown.status_code == 200
    other = await register(http, bound.url)
    access = response.json()["access_token"]
    refused = await http.post(f"{bound.url}/revoke", data={"token": access, "client_id": other})
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    anonymous = await http.post(f"{bound.url}/revoke", data={"token": access})
    assert anonymous.status_code == 401
    assert (await exchange(http, bound, access)).status_code == 200


async def test_revoke_does_not_exist_in_openrouter_key_mode(http, service):
    response = await http.post(f"{service.url}/revoke", data={"token": "x", "client_id": "y"})
    assert response.status_code == 404


# -- retries -----------------------------------------------------------------------


async def test_a_retried_redemption_receives_the_same_grant(http, bound, fake):
    grant, first = await login(http, bound)
    key = minted(fake)
    exchanges = fake.requests["/api/v1/auth/keys"]
    retried = await grant.redeem(http)  # as if the first answer had been lost
    assert retried.status_code == 200, retried.text
    access = retried.json()["access_token"]
    assert (await exchange(http, bound, access)).json()["access_token"] == key
    assert fake.requests["/api/v1/auth/keys"] == exchanges  # no second key
    # Once the client has refreshed, it evidently had its answer: no more replays.
    assert (await refresh(http, bound, grant, retried.json()["refresh_token"])).status_code == 200
    assert (await grant.redeem(http)).json()["error"] == "invalid_grant"
    # ...and the first pair's refresh token, same generation, is now a replay.
    assert (await refresh(http, bound, grant, first.json()["refresh_token"])).status_code == 400


async def test_a_refresh_during_a_store_outage_is_503_and_the_grant_survives(http, fake):
    own = EtcdServer().start()
    port = free_port()
    service = Service(bound_env(fake, port, own.endpoint, ETCD_TIMEOUT_SECONDS="0.5"), port)
    try:
        service.start()
        grant, response = await login(http, service)
        token = response.json()["refresh_token"]
        own.stop()
        down = await refresh(http, service, grant, token)
        assert down.status_code == 503 and down.json()["error"] == "temporarily_unavailable"
        own.start()
        for _ in range(40):  # the client reconnects within a few of its deadlines
            back = await refresh(http, service, grant, token)
            if back.status_code != 503:
                break
            await asyncio.sleep(0.25)
        assert back.status_code == 200, back.text
    finally:
        service.stop()
        own.destroy()


# -- two replicas over one etcd ----------------------------------------------------


@pytest.fixture(scope="module")
def replicas(etcd: EtcdServer, fake: FakeOpenRouter) -> Iterator[tuple[Service, Service]]:
    """Two processes, one etcd prefix, one secret: a Deployment with two pods."""
    ports = free_port(), free_port()
    started = []
    for port in ports:
        # One prefix, issuer and secret for both, as two pods behind one Service.
        env = bound_env(fake, port, etcd.endpoint, ETCD_PREFIX=f"/replicas{ports[0]}/")
        env.update(ISSUER_URL=f"http://127.0.0.1:{ports[0]}", SECRET="r" * 40)
        started.append(Service(env, port).start())
    yield started[0], started[1]
    for service in started:
        service.stop()


async def test_thirty_refreshes_across_two_replicas_give_one_pair(replicas):
    first, second = replicas
    async with httpx.AsyncClient(timeout=20) as http:
        grant, response = await login(http, first)
        token = response.json()["refresh_token"]
        answers = await asyncio.gather(
            *(refresh(http, (first, second)[i % 2], grant, token) for i in range(30))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] + [400] * 29, statuses
        winner = next(a for a in answers if a.status_code == 200).json()
        assert (await exchange(http, second, winner["access_token"])).status_code == 200


async def test_a_revocation_is_seen_by_every_replica_at_once(replicas):
    first, second = replicas
    async with httpx.AsyncClient(timeout=20) as http:
        grant, response = await login(http, first)
        pair = response.json()
        assert (await exchange(http, second, pair["access_token"])).status_code == 200
        revoked = await http.post(
            f"{first.url}/revoke",
            data={"token": pair["refresh_token"], "client_id": grant.client_id},
        )
        assert revoked.status_code == 200
        for replica in (first, second):  # no wait: the very next request, on either
            refused = await exchange(http, replica, pair["access_token"])
            assert refused.json()["error"] == "invalid_grant"
            assert await introspect(http, replica, pair["access_token"]) == {"active": False}


async def test_an_unknown_grant_type_names_the_three_supported(http, bound):
    response = await http.post(f"{bound.url}/token", data={"grant_type": "password"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unsupported_grant_type"
    assert "refresh_token" in body["error_description"] and EXCHANGE in body["error_description"]


async def test_resource_servers_are_not_held_to_the_per_address_token_limit(start_service):
    """token=2/min from one address: clients are held to it, a declared resource server
    exchanging for all its users is not (as introspection callers are not)."""
    limited = start_service(**{**BOUND_SETTINGS, "RATE_LIMITS": "token=2/min"})
    async with httpx.AsyncClient(timeout=20) as http:
        _, response = await login(http, limited)  # one /token: within the limit
        access = response.json()["access_token"]
        answers = [await exchange(http, limited, access) for _ in range(5)]
        assert {a.status_code for a in answers} == {200}
        wrong = [await exchange(http, limited, access, auth=(A["id"], "x" * 40)) for _ in range(3)]
        assert 429 in {a.status_code for a in wrong}

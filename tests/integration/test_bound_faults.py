"""Bound mode under an etcd fault: the leader of a three-member cluster is killed while
clients refresh their grants and a resource server exchanges their tokens, on two
replicas. No grant is lost: every grant still gives its key afterwards.

A client retries a 503 with the same request, as the MCP SDKs do. One outcome is
accepted and counted, not failed: a refresh whose rotation etcd applied but whose
answer was lost (503), after which the retry hears ``invalid_grant`` (that refresh
token was spent). The grant itself survives, and its access token still works; see
"Retries stay safe" in SECURITY.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.cluster import EtcdCluster, cluster
from tests.fakes.openrouter import FakeOpenRouter
from tests.harness import Service, free_port

from .flows import Grant
from .test_bound import bound_env, exchange, login, minted, refresh

GRANTS = 6
RUN_SECONDS = 9.0
KILL_AT, RESTART_AT = 2.0, 5.0
RETRY_PAUSE = 0.2


@dataclass
class Chain:
    """One client's grant: its tokens as they rotate, and what happened to it."""

    grant: Grant
    key: str
    refresh_token: str
    access_token: str
    refreshes: int = 0
    exchanges: int = 0
    retries: int = 0
    spent_by_a_lost_answer: bool = False
    failures: list[str] = field(default_factory=list)


@pytest.fixture
def etcd_cluster() -> Iterator[EtcdCluster]:
    with cluster() as running:
        yield running


@pytest.fixture
def replicas(etcd_cluster: EtcdCluster, fake: FakeOpenRouter) -> Iterator[list[Service]]:
    ports = free_port(), free_port()
    started = []
    try:
        for port in ports:
            env = bound_env(fake, port, ",".join(etcd_cluster.endpoints), ETCD_PREFIX="/faults/")
            env.update(ISSUER_URL=f"http://127.0.0.1:{ports[0]}", SECRET="f" * 40)
            started.append(Service(env, port).start())
        yield started
    finally:
        for service in started:
            service.stop()


async def until_answered(call) -> tuple[httpx.Response, int]:
    """The first answer that is not 503, and how many 503s came before it."""
    retries = 0
    while True:
        response = await call()
        if response.status_code != 503:
            return response, retries
        retries += 1
        await asyncio.sleep(RETRY_PAUSE)


async def run_chain(http: httpx.AsyncClient, chain: Chain, replicas: list[Service], end: float):
    turn = 0
    while time.monotonic() < end and not chain.spent_by_a_lost_answer and not chain.failures:
        turn += 1
        at, other = replicas[turn % 2], replicas[(turn + 1) % 2]
        answer, retries = await until_answered(
            lambda at=at: refresh(http, at, chain.grant, chain.refresh_token)
        )
        chain.retries += retries
        if answer.status_code == 200:
            chain.refreshes += 1
            chain.refresh_token = answer.json()["refresh_token"]
            chain.access_token = answer.json()["access_token"]
        elif retries and answer.json().get("error") == "invalid_grant":
            chain.spent_by_a_lost_answer = True
        else:
            chain.failures.append(f"refresh: {answer.status_code} {answer.text}")
        exchanged, retries = await until_answered(
            lambda other=other: exchange(http, other, chain.access_token)
        )
        chain.retries += retries
        if exchanged.status_code == 200 and exchanged.json()["access_token"] == chain.key:
            chain.exchanges += 1
        else:
            chain.failures.append(f"exchange: {exchanged.status_code} {exchanged.text}")


async def test_an_etcd_leader_kill_during_refreshes_and_exchanges_loses_no_grant(
    etcd_cluster: EtcdCluster, replicas: list[Service], fake: FakeOpenRouter
):
    async with httpx.AsyncClient(timeout=30) as http:
        chains = []
        for _ in range(GRANTS):
            grant, response = await login(http, replicas[0])
            pair = response.json()
            chains.append(Chain(grant, minted(fake), pair["refresh_token"], pair["access_token"]))
        leader = etcd_cluster.leader()
        start = time.monotonic()

        async def fault() -> None:
            await asyncio.sleep(KILL_AT)
            etcd_cluster.kill(leader)
            await asyncio.sleep(RESTART_AT - KILL_AT)
            await asyncio.to_thread(etcd_cluster.restart, leader)

        await asyncio.gather(
            fault(), *(run_chain(http, c, replicas, start + RUN_SECONDS) for c in chains)
        )
        # Every grant still gives its key, on either replica.
        for chain in chains:
            for replica in replicas:
                final, _ = await until_answered(
                    lambda r=replica, c=chain: exchange(http, r, c.access_token)
                )
                assert final.status_code == 200 and final.json()["access_token"] == chain.key
    summary = ", ".join(
        f"{c.refreshes} refreshes/{c.exchanges} exchanges/{c.retries} retries"
        + (" (refresh token spent by a lost answer)" if c.spent_by_a_lost_answer else "")
        for c in chains
    )
    print(f"\nleader kill: {summary}")
    assert not [f for c in chains for f in c.failures], [c.failures for c in chains]
    assert sum(c.retries for c in chains) > 0, "the fault was never felt: not a test"
    assert all(c.refreshes > 0 for c in chains)
    for replica in replicas:
        assert "Traceback" not in replica.log()

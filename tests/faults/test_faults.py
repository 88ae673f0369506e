"""The production shape under fire: a short version of every fault, invariants asserted.

One shape (3 etcd members, 3 replicas, nginx with TLS; tests/production.py) serves
the whole module. Each test runs the load (tests/faults/load.py), injects one fault
while it runs (tests/faults/scenarios.py), restores the part, lets every flow finish,
then asserts on counts, never on timings:

- every flow completed: a retryable answer is retried by the client, so a failed
  flow means a non-retryable answer (or retries that never succeeded);
- no code was redeemed twice: OpenRouter exchanged each of its codes for a key at
  most once, and every replayed code of ours was refused;
- no key was issued for a flow that never received one, except for /token answers
  lost in transit (at most one key each);
- no 500, from the clients' side nor in nginx's log of replica answers;
- no request went unanswered within the client's timeout (no hang).

``python -m bench.faults`` runs the same faults for longer and prints the figures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.faults.load import figures, violations
from tests.faults.scenarios import FAULTS, Timing, under_fault
from tests.production import Shape, production

CLIENTS = 4
HOLD = {  # seconds each fault lasts; a pause outlasts ETCD_TIMEOUT_SECONDS (2 s)
    "etcd leader SIGKILL": 3.0,
    "etcd member SIGSTOP": 4.0,
    "etcd quorum lost": 3.0,
    "replica SIGKILL": 2.0,
    "secret rotation, two phases": 0.5,  # between restarts
    "nginx reload": 2.0,
}


@pytest.fixture(scope="module")
def shape() -> Iterator[Shape]:
    with production() as running:
        yield running


@pytest.mark.parametrize("fault", list(FAULTS))
def test_nothing_lost_nothing_doubled(shape: Shape, fault: str) -> None:
    run = asyncio.run(
        under_fault(shape, fault, FAULTS[fault], Timing(2.0, HOLD[fault], 4.0), CLIENTS)
    )
    row = figures(run)
    print(f"\n{fault}: {run.note}; " + ", ".join(f"{k} {row[k]}" for k in COUNTS))
    during = [f for f in run.flows if f.started < run.restored_at and f.ended > run.fault_at]
    after = [f for f in run.flows if f.started >= run.restored_at]
    assert during and after, "the load did not run through the fault"
    found = violations(run)
    assert not found, f"{len(found)} violations under {fault}:\n" + "\n".join(found[:30])


COUNTS = (
    "started",
    "completed",
    "retried",
    "failed",
    "checks",
    "keys_lost_in_transit",
    "codes_presented_again",
)

# -- rate limits through the ingress ------------------------------------------------

PROCESSES = 4  # replicas of 1, 1 and 2 workers: each process keeps its own buckets
REGISTER_LIMIT = 5  # tests/production.py's RATE_LIMITS: register=5/h


async def _register(shape: Shape, source: str, count: int, forged: bool = False) -> list[int]:
    """POST /register ``count`` times from ``source``, one connection (one nginx worker,
    so strict round-robin over the replicas). ``forged``: each request claims a different
    client address in its own X-Forwarded-For, as a client may try."""
    transport = httpx.AsyncHTTPTransport(verify=shape.context, local_address=source)
    statuses = []
    async with httpx.AsyncClient(transport=transport, timeout=20) as http:
        for n in range(count):
            headers = {"X-Forwarded-For": f"198.51.100.{n + 1}"} if forged else {}
            response = await http.post(
                f"{shape.issuer}/register",
                json={"client_name": "limits", "redirect_uris": ["http://127.0.0.1:5555/cb"]},
                headers=headers,
            )
            statuses.append(response.status_code)
    return statuses


def test_rate_limits_are_per_client_address_through_the_ingress(shape: Shape) -> None:
    capacity = PROCESSES * REGISTER_LIMIT  # no refill within the test: the window is an hour
    plain = asyncio.run(_register(shape, "127.0.0.2", 30))
    assert set(plain) == {201, 429}
    assert plain.count(201) <= capacity

    # Another address is limited separately: its buckets are full.
    other = asyncio.run(_register(shape, "127.0.0.3", REGISTER_LIMIT))
    assert other == [201] * REGISTER_LIMIT

    # A forged X-Forwarded-For: nginx appends the real address, and with
    # TRUSTED_PROXIES=1 the service believes only that last hop. Believed, each of
    # these would have a fresh bucket and all would be 201; they share 127.0.0.2's.
    forged = asyncio.run(_register(shape, "127.0.0.2", 12, forged=True))
    assert set(forged) <= {201, 429}
    assert plain.count(201) + forged.count(201) <= capacity
    # ...which tells the two apart: round-robin gave every replica at least 10 of the
    # 30, so 127.0.0.2 has used at least 3 x 5 of its capacity already.
    assert plain.count(201) + len(forged) > capacity

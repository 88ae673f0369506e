"""The store against a real three-member etcd cluster while members hang, die and return.

Every test drives an EtcdStore configured with all members and injects the fault
into real etcd processes. Assertions are on counts, with generous time bounds
derived from the store's deadline; the measured figures are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from openrouter_oauth.settings import EtcdSettings
from openrouter_oauth.store import StoreUnavailable
from openrouter_oauth.store.etcd import EtcdStore
from tests.certs import CertificateAuthority
from tests.cluster import WORKERS, EtcdCluster, Load, cluster, under_load
from tests.harness import EtcdServer, EtcdTls, Service, service_env
from tests.processes import free_port
from tests.waiting import eventually

TIMEOUT = 2.0  # ETCD_TIMEOUT_SECONDS's default: what production runs with
BOUND = 5 * TIMEOUT  # "within about the timeout", asserted generously on a shared machine


@pytest.fixture
def etcd_cluster() -> Iterator[EtcdCluster]:
    with cluster() as running:
        yield running


def settings(endpoints: list[str], timeout: float = TIMEOUT) -> EtcdSettings:
    return EtcdSettings(endpoints=tuple(endpoints), prefix="/cluster/", timeout_seconds=timeout)


async def store_on(running: EtcdCluster, index: int, timeout: float = TIMEOUT) -> EtcdStore:
    """A store on all members that happens to be talking to member ``index``.

    Each store starts on a random member; open stores until one picks ``index``.
    """
    for _ in range(60):
        store = EtcdStore(settings(running.endpoints, timeout))
        await store.ping()
        if store.member == running.members[index].address:
            return store
        await store.close()
    raise AssertionError(f"no store started on member {index}")


@pytest.fixture
async def stores() -> AsyncIterator[list[EtcdStore]]:
    """Stores a test opened; closed after it, whatever happened."""
    opened: list[EtcdStore] = []
    yield opened
    for store in opened:
        await store.close()


def key() -> str:
    return "k/" + secrets.token_hex(8)


def report(name: str, load: Load) -> None:
    print(f"\n{name}: {load.summary()}")


@pytest.mark.parametrize("role", ["leader", "follower"])
async def test_a_paused_member_is_left_within_the_timeout(etcd_cluster, stores, role):
    leader = etcd_cluster.leader()
    victim = leader if role == "leader" else (leader + 1) % 3
    store = await store_on(etcd_cluster, victim)
    stores.append(store)
    try:
        load = await under_load(store, lambda: etcd_cluster.pause(victim), 4 * TIMEOUT)
    finally:
        etcd_cluster.resume(victim)
    report(f"pause of the {role} in use", load)
    # Only the calls in flight when it hung fail (a leader's pause adds an election).
    assert load.failures <= 2 * WORKERS
    assert load.recovery is not None and load.recovery < BOUND
    assert store.member != etcd_cluster.members[victim].address
    assert load.slowest < TIMEOUT + 1  # no call waits past its deadline


async def test_killing_the_leader_loses_nothing_written_before(etcd_cluster, stores):
    leader = etcd_cluster.leader()
    store = await store_on(etcd_cluster, leader)
    stores.append(store)
    written = {key(): secrets.token_bytes(16) for _ in range(20)}
    for k, value in written.items():
        assert await store.create(k, value, 60)

    load = await under_load(store, lambda: etcd_cluster.kill(leader), 3 * TIMEOUT)
    report("kill of the leader in use", load)
    assert load.failures <= 2 * WORKERS
    assert load.recovery is not None and load.recovery < BOUND

    # Records and their shared lease survive the failover, on the members left.
    assert store.member != etcd_cluster.members[leader].address
    for k, value in written.items():
        assert await store.take(k) == value
    assert await store.create(key(), b"after", 60)  # the cached lease is still good

    etcd_cluster.restart(leader)
    assert etcd_cluster.leader() in range(3)


async def test_processes_spread_over_the_members(etcd_cluster, stores):
    # Each process starts on a random member: 12 all on one has odds of 3 in 3**12.
    for _ in range(12):
        stores.append(EtcdStore(settings(etcd_cluster.endpoints)))
        await stores[-1].ping()
    assert len({store.member for store in stores}) > 1


async def test_lost_quorum_answers_within_the_deadline_then_recovers(etcd_cluster, stores):
    timeout = 1.0
    store = EtcdStore(settings(etcd_cluster.endpoints, timeout))
    stores.append(store)
    before = key()
    assert await store.create(before, b"kept", 60)
    in_use = [m.address for m in etcd_cluster.members].index(store.member)
    down = [i for i in range(3) if i != in_use]  # the member in use stays, without quorum
    for index in down:
        etcd_cluster.kill(index)

    durations = []
    for _ in range(6):  # round every member at least once
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.create(key(), b"v", 60)
        durations.append(time.monotonic() - started)
    print(f"\nlost quorum: 6 calls failed, slowest {max(durations):.2f}s (deadline {timeout}s)")
    assert max(durations) < timeout + 1

    for index in down:
        etcd_cluster.restart(index, wait=False)
    recovered = await eventually(
        lambda: store.take(before), within=10 * timeout, retry_on=(StoreUnavailable,)
    )
    assert recovered == b"kept"


async def test_the_service_rides_through_a_pause_of_each_member(etcd_cluster):
    """The shipped service, two workers, ETCD_ENDPOINTS listing the three members.

    Each worker starts on a random member, so each member is paused in turn: whichever
    one a worker uses, it must leave it, and the end of every pause must be clean.
    """
    port = free_port()
    env = service_env(
        openrouter="http://127.0.0.1:9", port=port, etcd=",".join(etcd_cluster.endpoints)
    )
    service = Service(env, port, workers=2).start()
    failed = []
    try:
        async with httpx.AsyncClient(timeout=5 * TIMEOUT) as http:
            for victim in range(3):
                etcd_cluster.pause(victim)
                try:
                    answers = await poll_ready(http, service.url, 4 * TIMEOUT)
                finally:
                    etcd_cluster.resume(victim)
                failed.append(sum(1 for _, status in answers if status != 200))
                late = [status for at, status in answers if at > 2.5 * TIMEOUT]
                assert late and set(late) == {200}, f"pause of m{victim}: {answers}"
    finally:
        service.stop()
    print(f"\nservice, 503s of /readyz per member paused: {failed}")
    assert sum(failed) <= 3 * 2 * WORKERS  # at most the requests in flight on each worker


async def poll_ready(http: httpx.AsyncClient, url: str, seconds: float) -> list[tuple[float, int]]:
    """/readyz from WORKERS callers for ``seconds``: (when it was sent, status) pairs."""
    started = time.monotonic()
    answers: list[tuple[float, int]] = []

    async def caller() -> None:
        while (sent := time.monotonic() - started) < seconds:
            answers.append((sent, (await http.get(f"{url}/readyz")).status_code))

    await asyncio.gather(*(caller() for _ in range(WORKERS)))
    return answers


async def test_an_expired_auth_token_costs_one_call(stores):
    # Simple tokens live --auth-token-ttl seconds; the store must log in again by itself.
    with cluster(extra_args=("--auth-token-ttl", "1")) as running:
        running.etcdctl("user", "add", "root:root-password-1")
        running.etcdctl("auth", "enable")
        store = EtcdStore(
            EtcdSettings(
                endpoints=tuple(running.endpoints),
                username="root",
                password="root-password-1",
                timeout_seconds=TIMEOUT,
            )
        )
        stores.append(store)
        assert await store.create(key(), b"v", 60)
        await asyncio.sleep(3)
        outcomes = []
        for _ in range(3):
            try:
                outcomes.append(await store.create(key(), b"v", 60))
            except StoreUnavailable:
                outcomes.append(False)
        assert outcomes[1:] == [True, True]  # at most the first call finds the token stale
        await store.close()


async def test_one_name_resolving_to_all_members_fails_over(stores, monkeypatch):
    """The other shape the docs name: ETCD_ENDPOINTS is one DNS name for the whole cluster.

    Nothing on loopback resolves one name to several addresses (``localhost`` is
    127.0.0.1 only here), so the resolver answers for a test name with the members'
    three addresses — everything after name resolution is real.
    """
    with cluster(shared_port=True) as running:
        name, port = "etcd.cluster.test", running.members[0].client_port
        addresses = [m.host for m in running.members]
        monkeypatch.setattr(socket, "getaddrinfo", resolving(name, addresses))
        store = EtcdStore(settings([f"http://{name}:{port}"]))
        stores.append(store)
        await store.ping()
        victim = [m.address for m in running.members].index(store.member)
        try:
            load = await under_load(store, lambda: running.pause(victim), 3 * TIMEOUT)
        finally:
            running.resume(victim)
        report("pause behind one DNS name", load)
        assert load.failures <= 2 * WORKERS
        assert load.recovery is not None and load.recovery < BOUND
        await store.close()


def resolving(name: str, addresses: list[str]) -> object:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list:
        if host != name:
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses
        ]

    return getaddrinfo


@pytest.fixture
def named_tls_etcd(tmp_path) -> Iterator[tuple[EtcdServer, CertificateAuthority]]:
    """One TLS member whose certificate names only ``etcd.tls.test``, not its IP."""
    authority = CertificateAuthority(tmp_path)
    issued = authority.issue("etcd", dns="etcd.tls.test")
    health = authority.issue("health", client=True)
    context = ssl.create_default_context(cafile=str(authority.ca))
    context.load_cert_chain(health.cert, health.key)
    context.check_hostname = False  # the harness's health check goes to the IP
    server = EtcdServer(EtcdTls(authority.ca, issued.cert, issued.key, context))
    try:  # a start that fails must not leave the process behind either
        yield server.start(), authority
    finally:
        server.destroy()


@pytest.mark.parametrize(("name", "verified"), [("etcd.tls.test", True), ("other.test", False)])
async def test_tls_checks_the_configured_name_not_the_resolved_ip(
    named_tls_etcd, stores, monkeypatch, name, verified
):
    server, authority = named_tls_etcd
    client = authority.issue("service", client=True)
    monkeypatch.setattr(socket, "getaddrinfo", resolving(name, ["127.0.0.1"]))
    store = EtcdStore(
        EtcdSettings(
            endpoints=(f"https://{name}:{server.client_port}",),
            ca_file=authority.ca,
            cert_file=client.cert,
            key_file=client.key,
            timeout_seconds=1,
        )
    )
    stores.append(store)
    if verified:
        assert await store.create(key(), b"v", 60)
    else:
        with pytest.raises(StoreUnavailable):
            await store.create(key(), b"v", 60)

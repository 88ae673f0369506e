"""Fixtures shared by every level: a real etcd, the fake OpenRouter, the service as it ships."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from tests.fakes.openrouter import FakeOpenRouter
from tests.harness import Browser, EtcdServer, Service, service_env
from tests.processes import free_port


@pytest.fixture(scope="session")
def etcd() -> Iterator[EtcdServer]:
    server = EtcdServer().start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeOpenRouter]:
    server = FakeOpenRouter().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service(etcd: EtcdServer, fake: FakeOpenRouter) -> Iterator[Service]:
    """The service on etcd, shared by tests that do not restart or reconfigure it."""
    port = free_port()
    running = Service(
        service_env(
            openrouter=fake.base_url, port=port, etcd=etcd.endpoint, ETCD_PREFIX=f"/t{port}/"
        ),
        port,
    ).start()
    yield running
    running.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
def browser(http: httpx.AsyncClient) -> Browser:
    return Browser(http)


@pytest.fixture
def start_service(fake: FakeOpenRouter, etcd: EtcdServer) -> Iterator[object]:
    """Start services with their own settings; every one is stopped after the test."""
    started: list[Service] = []

    def start(
        *, store: str = "etcd", port: int | None = None, workers: int = 1, **env: str
    ) -> Service:
        port = port or free_port()
        etcd_endpoint = etcd.endpoint if store == "etcd" else None
        env.setdefault("ETCD_PREFIX", f"/t{port}/") if etcd_endpoint else None
        running = Service(
            service_env(openrouter=fake.base_url, port=port, etcd=etcd_endpoint, **env),
            port,
            workers,
        ).start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


# What tests showed beyond pass/fail (figures, counts), printed at the end of the run.
_SHOWN = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SHOWN] = []


@pytest.fixture(scope="session")
def shown(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Record one line of what a test showed; the run's summary prints every line."""
    return pytestconfig.stash[_SHOWN].append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(_SHOWN, [])
    if lines:
        terminalreporter.section("what the tests showed")
        for line in lines:
            terminalreporter.write_line(line)

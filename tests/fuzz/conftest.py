"""The service the fuzz tests hammer: real etcd, the fake OpenRouter, no rate limits."""

from __future__ import annotations

import pytest

from tests.harness import Service, free_port, service_env


@pytest.fixture(scope="module")
def fuzz_service(etcd, fake):
    port = free_port()
    running = Service(
        service_env(
            openrouter=fake.base_url,
            port=port,
            etcd=etcd.endpoint,
            ETCD_PREFIX="/fuzz/",
            RATE_LIMITS="off",
        ),
        port,
    ).start()
    yield running
    running.stop()

"""The service the fuzz tests hammer: real etcd, the fake OpenRouter, no rate limits."""

from __future__ import annotations

import pytest

from tests.harness import Service, service_env
from tests.processes import free_port

# /introspect exists only with callers configured: fuzz it too.
FUZZ_ENV = {"INTROSPECTION_CREDENTIALS": "fuzzer:" + "f" * 40}


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
            **FUZZ_ENV,
        ),
        port,
    ).start()
    yield running
    running.stop()

"""The service the fuzz tests hammer: real etcd, the fake OpenRouter, no rate limits."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.harness import Service, service_env
from tests.processes import free_port

# /introspect exists only with callers configured: fuzz it too.
FUZZ_ENV = {"INTROSPECTION_CREDENTIALS": "fuzzer:" + "f" * 40}
FUZZ_BOUND_ENV = {
    **FUZZ_ENV,
    "ACCESS_TOKENS": "bound",
    "RESOURCE_SERVERS": json.dumps(
        [{"id": "fuzz-mcp", "secret": "m" * 40, "resource": "http://127.0.0.1:9/mcp"}]
    ),
}


def _fuzzed(etcd, fake, env: dict[str, str], prefix: str) -> Iterator[Service]:
    port = free_port()
    running = Service(
        service_env(
            openrouter=fake.base_url,
            port=port,
            etcd=etcd.endpoint,
            ETCD_PREFIX=prefix,
            RATE_LIMITS="off",
            **env,
        ),
        port,
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fuzz_service(etcd, fake):
    yield from _fuzzed(etcd, fake, FUZZ_ENV, "/fuzz/")


@pytest.fixture(scope="module")
def fuzz_bound_service(etcd, fake):
    yield from _fuzzed(etcd, fake, FUZZ_BOUND_ENV, "/fuzz-bound/")

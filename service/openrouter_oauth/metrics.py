"""Prometheus metrics. Labels are fixed names (routes, OAuth error codes), never request values.

With several workers, the CLI points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before any worker starts, so ``/metrics`` (served by the main process
on ``METRICS_PORT``) reports the sum over all of them (prometheus_client's
multiprocess mode).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter(
    "openrouter_oauth_requests_total",
    "HTTP requests by route, status and outcome (ok or the OAuth error code).",
    ["route", "status", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "openrouter_oauth_request_duration_seconds",
    "HTTP request latency.",
    ["route"],
    buckets=_BUCKETS,
)
UPSTREAM_SECONDS = Histogram(
    "openrouter_oauth_upstream_duration_seconds",
    "Calls to OpenRouter.",
    ["operation"],
    buckets=_BUCKETS,
)
UPSTREAM_ERRORS = Counter(
    "openrouter_oauth_upstream_errors_total",
    "Failed calls to OpenRouter by kind (rejected, invalid_key, unavailable).",
    ["operation", "kind"],
)
STORE_SECONDS = Histogram(
    "openrouter_oauth_store_duration_seconds",
    "State store operations.",
    ["operation"],
    buckets=_BUCKETS,
)
STORE_ERRORS = Counter(
    "openrouter_oauth_store_errors_total", "State store operations that failed.", ["operation"]
)
AUTHORIZATIONS = Counter(
    "openrouter_oauth_authorizations_total",
    "Authorizations by event: started (consent shown), approved, denied, completed.",
    ["event"],
)
CODES_REDEEMED = Counter("openrouter_oauth_codes_redeemed_total", "Codes exchanged for keys.")
GRANT_EVENTS = Counter(
    "openrouter_oauth_grants_total",
    "Bound-mode grants by event: started, refreshed, exchanged, revoked, reused (ended).",
    ["event"],
)
ME_CACHE = Counter(
    "openrouter_oauth_me_cache_total",
    "/me key checks by cache result: hit, miss (asked OpenRouter), shared (joined a pending miss).",
    ["result"],
)
RATE_LIMITED = Counter(
    "openrouter_oauth_rate_limited_total", "Requests refused with 429.", ["route"]
)
CONNECTIONS_REFUSED = Counter(
    "openrouter_oauth_connections_refused_total",
    "Connections closed on arrival because the process held MAX_CONNECTIONS already.",
)


# Label sets are few and fixed (routes x statuses x OAuth error codes): look each up once.
@functools.lru_cache(maxsize=1024)
def requests(route: str, status: int, outcome: str) -> Counter:
    return REQUESTS.labels(route, str(status), outcome)


@functools.lru_cache(maxsize=64)
def request_seconds(route: str) -> Histogram:
    return REQUEST_SECONDS.labels(route)


@asynccontextmanager
async def timed(
    histogram: Histogram, operation: str, errors: Counter | None = None
) -> AsyncIterator[None]:
    """Observe the block's duration, and count it in ``errors`` if it raises."""
    start = time.perf_counter()
    try:
        yield
    except Exception:
        if errors is not None:
            errors.labels(operation).inc()
        raise
    finally:
        histogram.labels(operation).observe(time.perf_counter() - start)


def serve_metrics(host: str, port: int) -> None:
    """Serve /metrics on its own port, from a thread of the main process.

    Off the service's port, so an ingress in front of it never exposes the metrics;
    with several workers the main process sums every worker's samples.
    """
    registry: CollectorRegistry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)

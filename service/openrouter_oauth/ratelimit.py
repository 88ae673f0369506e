"""Per-address token buckets, kept in each process.

Why not in etcd: a shared counter would add a store round trip to every
request, and the limits exist to damp abuse, not to meter a quota. With R
replicas and W workers an address gets at most R*W times the configured rate
(connections are spread, so usually far less); put a global limit at the
ingress if you need one exact figure.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from .settings import RateLimit

MAX_TRACKED_ADDRESSES = 100_000


class RateLimiter:
    """Token buckets per (endpoint, client address), in this process only."""

    def __init__(
        self,
        limits: tuple[RateLimit, ...],
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = MAX_TRACKED_ADDRESSES,
    ) -> None:
        self._limits = {limit.endpoint: limit for limit in limits}
        self._clock = clock
        self._max_tracked = max_tracked
        # (endpoint, address) -> (tokens left, time of last refill)
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def retry_after(self, endpoint: str, address: str) -> int | None:
        """Take one token; None if allowed, else the whole seconds until one is available."""
        limit = self._limits.get(endpoint)
        if limit is None:
            return None
        now = self._clock()
        rate = limit.count / limit.seconds
        key = (endpoint, address)
        tokens, last = self._buckets.pop(key, (float(limit.count), now))
        tokens = min(float(limit.count), tokens + (now - last) * rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        if len(self._buckets) > self._max_tracked:
            self._buckets.popitem(last=False)  # the least recently seen address
        return None if allowed else max(1, math.ceil((1 - tokens) / rate))

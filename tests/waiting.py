"""Waiting on events, not time: one bounded polling helper for every test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def eventually(
    check: Callable[[], Awaitable[Any]],
    *,
    within: float = 15.0,
    step: float = 0.1,
    retry_on: tuple[type[BaseException], ...] = (),
    what: str = "",
) -> Any:
    """Await ``check()`` until it returns something truthy, and return that.

    Exceptions in ``retry_on`` count as "not yet" (the last one is raised at the
    deadline); anything else fails at once. Bounded by ``within`` seconds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            result = await check()
        except retry_on:
            if loop.time() > deadline:
                raise
        else:
            if result:
                return result
            if loop.time() > deadline:
                raise AssertionError(f"not within {within:g}s: {what or check.__doc__ or check}")
        await asyncio.sleep(step)

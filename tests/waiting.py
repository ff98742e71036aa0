"""Waiting for something to happen in a test without asserting how long it takes."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable


async def eventually(check: Callable[[], Any | Awaitable[Any]], what: str, limit: float = 10.0) -> None:
    """Poll until ``check`` holds; the limit only bounds a broken run (no timing is asserted)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)

"""The event loop and the HTTP parser the process runs on: uvloop and httptools where installed.

Both are C implementations of what asyncio's default loop and h11 do in Python; a plain route
answers about three times as many requests per core on them (docs/benchmarks.md). They are
dependencies wherever wheels exist; where one is missing the process runs on asyncio or h11
instead, and its start-up log says which ones run (``describe``).

httptools has no bound on the request head (uvicorn's ``h11_max_incomplete_event_size`` applies to
h11 only; llhttp keeps an unfinished header line in memory however long it grows), so the
protocol used here adds the same 64 KiB bound h11 enforces, with the same answer.
"""

from __future__ import annotations

import asyncio
import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Callable, Coroutine, TypeVar

T = TypeVar("T")

# Largest request line + headers a client may send; h11 gets it as ``h11_max_incomplete_event_size``.
MAX_REQUEST_HEAD = 64 * 1024
BAD_REQUEST = "Invalid HTTP request received."  # uvicorn's words for h11's refusal, kept for both


def _installed(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``uvloop.new_event_loop`` when uvloop imports, else None (asyncio's default loop)."""
    if not _installed("uvloop"):
        return None
    import uvloop

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the loop ``loop_factory`` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


def http_protocol() -> type[asyncio.Protocol] | str:
    """What uvicorn's ``http`` option gets: the bounded httptools protocol, else ``"h11"``."""
    if not _installed("httptools"):
        return "h11"
    from mxproxy.httptools_protocol import BoundedHttpToolsProtocol

    return BoundedHttpToolsProtocol


def _named(module: str) -> str:
    try:
        return f"{module} {version(module)}"
    except PackageNotFoundError:
        return module


def describe(loop: asyncio.AbstractEventLoop, http: type[asyncio.Protocol] | str) -> str:
    """``event loop uvloop 0.23.0, HTTP parser httptools 0.9.0`` — for the start-up log."""
    loop_name = _named("uvloop") if type(loop).__module__.startswith("uvloop") else "asyncio"
    return f"event loop {loop_name}, HTTP parser {_named(http if isinstance(http, str) else 'httptools')}"


__all__ = ["BAD_REQUEST", "MAX_REQUEST_HEAD", "describe", "http_protocol", "loop_factory", "run"]

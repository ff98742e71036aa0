"""Connection limits for uvicorn's HTTP protocols: a header-read deadline and a connection cap.

uvicorn closes a connection that stays idle *after* an answer (``timeout_keep_alive``), but
neither its h11 nor its httptools protocol times a connection that never completes a request
head: one opened and left silent, or fed a header byte now and then (slowloris), is held for
ever. The deadline is armed when a connection opens (``header_timeout``) and again when an answer
completes (the longer of ``header_timeout`` and the keep-alive timeout, which closes idle
connections first); unless a new request's head arrived by then, the connection is closed.

The cap: a connection accepted while ``max_connections`` others are open answers its request
with 503 ``{"error": …}`` and is closed; the connections already open keep being served (uvicorn's
own ``limit_concurrency`` answers every connection with a text 503 while over the limit).

Both are a mixin over whichever protocol uvicorn would use, so parsing stays uvicorn's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from mxproxy.api.errors import error_response

#: The answer of a connection beyond the cap (an ASGI app; Connection: close ends it).
OVER_CAPACITY = error_response(503, "server busy: too many open connections",
                               {"Connection": "close", "Retry-After": "1"})


class ConnectionLimits:
    """Mixin for uvicorn's ``H11Protocol``/``HttpToolsProtocol`` (both keep ``self.cycle``, the
    current request, ``self.app``, ``self.connections`` and ``self.transport``); the class
    attributes are set by ``limited_protocol``."""

    header_timeout: float
    max_connections: int
    timeout_keep_alive: float  # uvicorn's
    app: Any
    cycle: Any
    connections: set[Any]
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self.max_connections:  # this one included
            self.app = OVER_CAPACITY
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        # armed before uvicorn starts a pipelined request, so that request's cycle is a new one;
        # an idle kept-alive connection is uvicorn's to close (timeout_keep_alive), so the next
        # head gets at least that long
        self._arm_header_deadline(max(self.header_timeout, self.timeout_keep_alive))
        super().on_response_complete()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_header_deadline(self, seconds: float | None = None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout if seconds is None else seconds,
                                                  self._header_deadline_passed, self.cycle)

    def _header_deadline_passed(self, cycle_when_armed: Any) -> None:
        """No request head arrived since the timer was armed (the cycle is still the old one)."""
        self._header_timer = None
        if self.cycle is cycle_when_armed and not self.transport.is_closing():
            self.transport.close()


def limited_protocol(http: str | type[asyncio.Protocol], *, header_timeout: float,
                     max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's protocol class for ``http`` (``auto``, ``h11``, ``httptools``, or a protocol
    class such as ``mxproxy.runtime.http_protocol()``'s) with the limits."""
    base: type[asyncio.Protocol] = (import_from_string(HTTP_PROTOCOLS.get(http, http)) if isinstance(http, str)
                                    else http)
    return type(f"Limited{base.__name__}", (ConnectionLimits, base),
                {"header_timeout": header_timeout, "max_connections": max_connections})


__all__ = ["ConnectionLimits", "OVER_CAPACITY", "limited_protocol"]

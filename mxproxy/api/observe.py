"""Request metrics for the public and the admin API: one pure-ASGI middleware.

Labels use the matched **route template** (``/calls/{id}``), never the raw path, so a scanner
hitting random URLs cannot blow up the series count: anything no route matched is ``unmatched``,
and unusual methods are folded into ``OTHER``. Pure ASGI (not ``BaseHTTPMiddleware``) so streamed
voicemail downloads and disconnect detection stay untouched.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from mxproxy.metrics import Metrics, RequestSeries

UNMATCHED = "unmatched"
CLIENT_CLOSED = 499
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def with_header(start: Message, header: tuple[bytes, bytes]) -> Message:
    """``start`` (an ``http.response.start`` message) with ``header`` replacing any of that name."""
    headers = start.get("headers", ())
    name = header[0]
    for key, _ in headers:
        if key.lower() == name:
            headers = [(k, v) for k, v in headers if k.lower() != name]
            break
    return {**start, "headers": [*headers, header]}


def route_label(scope: Scope) -> str:
    """The template of the route Starlette's router picked (it stores it in ``scope["route"]``);
    a 405 answer still names the route whose path matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class ObserveMiddleware:
    """Counts every answered request (``http_requests``) and times it (``http_latency``).

    Latency runs until the app returns, so a streamed body is included. An exception escaping the
    app (Starlette's last-resort handler turns it into a 500 outside this middleware) is counted
    as ``500`` before it is re-raised; a request cancelled before any answer as ``499``.

    ``server_header``: also stamp ``Server`` on every answer (what ``ServerHeaderMiddleware``
    does), in the same ``send`` wrapper: each pure-ASGI layer costs a coroutine, a closure and a
    call per message on every request, a noticeable share of ``GET /auth`` (docs/benchmarks.md).
    """

    def __init__(self, app: ASGIApp, metrics: "Metrics", api: str = "public", server_header: str | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.api = api
        self.server = (b"server", server_header.encode("latin-1")) if server_header else None
        # the series by (method, route, status), so a request costs one dict look-up. Bounded:
        # methods are folded into _METHODS + OTHER, routes are templates, statuses the app's own.
        self._series: dict[tuple[str, int, int], RequestSeries] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        status = 0
        server = self.server

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if server is not None:
                    message = with_header(message, server)
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except asyncio.CancelledError:
            if status == 0:
                status = CLIENT_CLOSED  # the client went away before an answer (nginx's 499)
            raise
        except BaseException:
            if status == 0:
                status = 500
            raise
        finally:
            self._record(scope, status or 500, perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope.get("method", "")
        if method not in _METHODS:
            method = str(method).upper()
            if method not in _METHODS:
                method = "OTHER"
        # the route object (the app's, alive as long as it): its label is computed once
        key = (method, id(scope.get("route")), status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.metrics.http.series(self.api, method, route_label(scope), str(status))
        series.observe(seconds)


__all__ = ["ObserveMiddleware", "UNMATCHED", "route_label", "with_header"]

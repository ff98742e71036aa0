"""Request metrics for the public and the admin API: one pure-ASGI middleware.

Labels use the matched **route template** (``/calls/{id}``), never the raw path, so a scanner
hitting random URLs cannot blow up the series count: anything no route matched is ``unmatched``,
and unusual methods are folded into ``OTHER``. Pure ASGI (not ``BaseHTTPMiddleware``) so streamed
voicemail downloads and disconnect detection stay untouched.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from mxproxy.metrics import Metrics

UNMATCHED = "unmatched"
CLIENT_CLOSED = 499
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
    """

    def __init__(self, app: ASGIApp, metrics: "Metrics", api: str = "public") -> None:
        self.app = app
        self.metrics = metrics
        self.api = api
        # the labelled children by (method, route, status): ``labels()`` costs a few µs per call
        # (label validation, a lock, a dict look-up with a freshly built key). Bounded: methods
        # are folded into _METHODS + OTHER, routes are templates, statuses are the app's own.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
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
            self._record(scope, status or 500, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope.get("method", "")
        if method not in _METHODS:
            method = str(method).upper()
            if method not in _METHODS:
                method = "OTHER"
        route = route_label(scope)
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.metrics.http_requests.labels(self.api, method, route, str(status)),
                self.metrics.http_latency.labels(self.api, route),
            )
        counter, latency = children
        counter.inc()
        latency.observe(seconds)


__all__ = ["ObserveMiddleware", "UNMATCHED", "route_label"]

"""Per-request log context (a request id, later the user) and the optional access log.

Pure ASGI, like ``observe``: streamed bodies and disconnect detection stay untouched. The request
id is the client's (or reverse proxy's) ``X-Request-ID`` when it is a sane token, else a new one,
so a proxy's log line and ours can be matched.
"""

from __future__ import annotations

import logging
import os
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mxproxy.logs import ACCESS_LOGGER, log_context

access_log = logging.getLogger(ACCESS_LOGGER)

_REQUEST_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-")


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= 64 and _REQUEST_ID_CHARS.issuperset(text):
                return text
            break
    return os.urandom(8).hex()


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


class RequestLogMiddleware:
    """Sets ``request_id`` for every line logged while a request runs; with ``access=True`` also
    writes one ``mxproxy.access`` line per request when it is answered."""

    def __init__(self, app: ASGIApp, api: str = "public", access: bool = False) -> None:
        self.app = app
        self.api = api
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with log_context(request_id=request_id(scope)):
            if not self.access:
                await self.app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 0

            async def send_seen(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_seen)
            finally:
                ms = (time.perf_counter() - started) * 1000
                method, path = scope.get("method", ""), scope.get("path", "")
                access_log.info('%s %s "%s %s" %s %.1fms', self.api, client_ip(scope), method, path,
                                status or 499, ms,
                                extra={"api": self.api, "client_ip": client_ip(scope), "method": method,
                                       "path": path, "status": status or 499, "duration_ms": round(ms, 1)})


__all__ = ["RequestLogMiddleware", "client_ip", "request_id"]

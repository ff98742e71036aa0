"""``create_app``: the routes, the ``Server`` header and JSON errors for everything.

Routing follows the original's table (spec §7.4) method for method. Unknown paths answer 404
``{"error": "not found"}``, a known path with another method 405 with ``Allow``.

Compression: gzip (when the client accepts it, for answers of at least ``GZIP_MINIMUM`` bytes) is
applied per route, only to the routes whose answers can be large (lists, the log, the OpenAPI
document). The hot small routes (``/auth``, token registration, call control) never pass through
the gzip wrapper, which costs ~9 µs per request even when it leaves the answer alone — a third of
what ``GET /auth`` costs (docs/benchmarks.md). ``/contacts`` and ``GET /calls`` answer from
pre-rendered bytes (``mxproxy.api.rendered``), compressed once per cached value by the same rule;
the other answers of ``/calls`` (call mode, a new call) are small.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mxproxy import SERVER_NAME
from mxproxy.api import auth, calls, conferences, debuglog, directory, docs_page, events, tokens, voicemails
from mxproxy.api.context import ApiContext
from mxproxy.api.errors import exception_handlers
from mxproxy.api.forwarding import ForwardingMiddleware
from mxproxy.api.idempotency import IdempotencyCache
from mxproxy.api.observe import ObserveMiddleware, with_header
from mxproxy.api.openapi import openapi_document
from mxproxy.api.render import json_response
from mxproxy.api.rendered import GZIP_LEVEL, GZIP_MINIMUM


class ServerHeaderMiddleware:
    """Stamp ``Server: MXProxy/2.3 (…)`` on every response, errors included (pure ASGI, so
    streaming responses and disconnect detection are untouched)."""

    def __init__(self, app: ASGIApp, server: str = SERVER_NAME) -> None:
        self.app = app
        self.header = (b"server", server.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = self.header

        async def send_with_server(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = with_header(message, header)
            await send(message)

        await self.app(scope, receive, send_with_server)


async def openapi(request: Request) -> Response:
    return json_response(openapi_document(sse=auth.context(request).config.sse.enabled))


GZIP = [Middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM, compresslevel=GZIP_LEVEL)]

ROUTES: list[Route] = [
    Route("/auth", auth.auth_route, methods=["POST", "GET", "DELETE"]),
    Route("/auth/logout", auth.sign_out, methods=["DELETE"]),
    Route("/contacts", directory.contacts, methods=["GET"]),  # gzip: RenderedJSON
    Route("/services", directory.services, methods=["GET"], middleware=GZIP),
    Route("/calls", calls.calls_route, methods=["GET", "PATCH", "POST"]),  # gzip: RenderedJSON
    Route("/calls/{id}", calls.call_route, methods=["GET", "PUT", "POST", "DELETE", "PATCH"], middleware=GZIP),
    Route("/calls/{id}/hold", calls.hold, methods=["PUT"]),
    Route("/calls/{id}/unhold", calls.unhold, methods=["PUT"]),
    Route("/calls/{id}/record", calls.record_start, methods=["POST"]),
    Route("/calls/{id}/record/stop", calls.record_stop, methods=["POST"]),
    Route("/calls/{id}/conference", calls.conference_from_call, methods=["POST"]),
    Route("/voicemails", voicemails.list_voicemails, methods=["GET"], middleware=GZIP),
    Route("/voicemails/{id}", voicemails.voicemail_route, methods=["GET", "DELETE", "PATCH"], middleware=GZIP),
    Route("/conferences/info", conferences.conference_info, methods=["GET"], middleware=GZIP),
    Route("/conferences", conferences.conferences_route, methods=["GET", "POST"], middleware=GZIP),
    Route("/conferences/{id}", conferences.conference_route, methods=["PUT", "POST", "DELETE"]),
    Route("/tokens/{kind}/{topic}/{token}", tokens.token_route, methods=["PUT", "DELETE"]),
    Route("/debug/log", debuglog.debug_log, methods=["GET"], middleware=GZIP),
    Route("/openapi.json", openapi, methods=["GET"], middleware=GZIP),
]


def edge_middleware(ctx: ApiContext, api: str) -> list[Middleware]:
    """The one pure-ASGI layer around the public and the admin app: the ``Server`` header, and
    with metrics on, the request metrics in the same layer (outermost: they count what the client
    got, error-handler answers too)."""
    if ctx.metrics is None:
        return [Middleware(ServerHeaderMiddleware)]
    return [Middleware(ObserveMiddleware, metrics=ctx.metrics, api=api, server_header=SERVER_NAME)]


class ProxyApp(Starlette):
    """The public app. ``ctx`` is a plain attribute because every request reads it
    (``mxproxy.api.auth.context``); ``state.ctx`` holds the same object for generic code."""

    def __init__(self, ctx: ApiContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx
        self.state.ctx = ctx


def optional_routes(ctx: ApiContext) -> list[Route]:
    """Routes that exist only when configured: ``GET /events`` with ``[sse] enabled`` (else that
    path answers 404 as any unknown path). Makes the stream registry on first use."""
    if not ctx.config.sse.enabled:
        return []
    if ctx.events is None:
        raise RuntimeError("[sse] enabled needs the event bus (ApiContext.events)")
    if ctx.streams is None:
        ctx.streams = events.StreamHub(ctx.config.sse)
    ctx.events.require("sse")  # the bus keeps listening (and its history) with no stream open
    return [Route(events.PATH, events.event_stream, methods=["GET"])]


def create_app(ctx: ApiContext) -> ProxyApp:
    middleware = edge_middleware(ctx, "public")
    if ctx.config.server.trusted_proxies:
        # the client address is the peer's, unless the peer is a configured proxy: then the last
        # X-Forwarded-For entry that is not one of them (uvicorn's own reading of the header)
        middleware.insert(0, Middleware(ProxyHeadersMiddleware, trusted_hosts=list(ctx.config.server.trusted_proxies)))
    if ctx.forwarder is not None:
        middleware.append(Middleware(ForwardingMiddleware, ctx=ctx))
    app = ProxyApp(
        ctx,
        routes=[*ROUTES, *optional_routes(ctx), *docs_page.routes(GZIP)],  # /docs: not in the API document
        middleware=middleware,
        exception_handlers=exception_handlers(),
    )
    app.state.idempotency = IdempotencyCache(ctx.config.server.idempotency_ttl, ctx.config.server.idempotency_keys)
    return app

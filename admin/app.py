"""``create_admin_app``: the admin API served on 127.0.0.1:8043 by ``mxproxy serve``.

Routes: the original's listings (``/apps``, ``/connections``, ``/tokens``, ``/users`` incl.
``POST /users`` sign-out; README "Административный веб", spec §7.9) plus ``/sessions``,
``/cluster`` (instances and leases), ``/push`` (test push, dispatcher status), ``/trace`` (CSTA trace of
one user), ``/webhooks`` (subscriptions and deliveries, admin/webhooks.py), ``/healthz``, ``/readyz`` and ``/metrics``.
Errors are the public API's JSON (``mxproxy.api.errors``); with ``[server] adminToken`` every
route but ``/healthz`` needs ``Authorization: Bearer <token>`` (docs/operations.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from admin import certificates, cluster, health, listings, push, trace, webhooks
from admin.auth import AdminAuthMiddleware
from admin.browser import AllowedHosts, BrowserGuardMiddleware
from mxproxy.api.app import edge_middleware
from mxproxy.api.errors import exception_handlers

if TYPE_CHECKING:
    from mxproxy.api.context import ApiContext

ROUTES: list[Route] = [
    Route("/apps", listings.apps, methods=["GET"]),
    Route("/connections", listings.connections, methods=["GET"]),
    Route("/tokens", listings.tokens, methods=["GET"]),
    Route("/users", listings.users, methods=["GET", "POST"]),
    Route("/sessions", listings.sessions, methods=["GET"]),
    Route("/cluster", cluster.cluster, methods=["GET"]),
    Route("/push", push.push_route, methods=["GET", "POST"]),
    Route("/trace", trace.trace_route, methods=["POST"]),
    Route("/mx/certificates", certificates.certificates, methods=["GET", "DELETE"]),
    Route("/webhooks", webhooks.collection, methods=["GET", "POST"]),
    Route("/webhooks/{webhook}", webhooks.item, methods=["GET", "PATCH", "DELETE"]),
    Route("/webhooks/{webhook}/deliveries", webhooks.deliveries, methods=["GET"]),
    Route("/webhooks/{webhook}/deliveries/{delivery}/redeliver", webhooks.redeliver, methods=["POST"]),
    Route("/healthz", health.healthz, methods=["GET"]),
    Route("/readyz", health.readyz, methods=["GET"]),
    Route("/metrics", health.metrics, methods=["GET"]),
]


def create_admin_app(ctx: "ApiContext", *, push: Any | None, bind_host: str | None = None,
                     webhooks: Any | None = None) -> Starlette:
    """``push`` is the ``PushDispatcher`` (None when push is not configured: ``/push`` → 503);
    ``webhooks`` the ``WebhookService`` (None with ``[webhooks] enabled = false``: 503);
    ``bind_host`` the address the admin listens on (its Host is accepted, admin/browser.py)."""
    # outside auth, so refused requests are counted too (as route "unmatched")
    middleware = edge_middleware(ctx, "admin")
    hosts = AllowedHosts(bind_host, ctx.config.server.admin_hosts)
    middleware.append(Middleware(BrowserGuardMiddleware, hosts=hosts))
    token = ctx.config.server.admin_token
    if token:
        middleware.append(Middleware(AdminAuthMiddleware, token=token))
    app = Starlette(routes=list(ROUTES), middleware=middleware, exception_handlers=exception_handlers())
    app.state.ctx = ctx
    app.state.push = push
    app.state.webhooks = webhooks
    return app


__all__ = ["ROUTES", "create_admin_app"]

"""Liveness, readiness and the Prometheus scrape.

* ``/healthz``: the process answers HTTP. Always 200, no auth, no I/O.
* ``/readyz``: 200 when this instance can do its job, else 503, with the reasons:
  the store answers a ping (bounded by ``STORE_PING_SECONDS``), the push dispatcher reports no
  problems (``ready_problems()``, e.g. the prune guard tripped), and **not** "users are stored
  but none of their MX sessions is live" (every MX unreachable, or still resuming at start).
  A partial share of live sessions is normal (one customer's MX down) and stays ready.
* ``/metrics``: ``Metrics.exposition()`` in the Prometheus text format.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from admin.listings import context
from mxproxy.api.errors import ApiError
from mxproxy.api.render import json_response
from mxproxy.metrics import CONTENT_TYPE

log = logging.getLogger("admin")

STORE_PING_SECONDS = 2.0


async def healthz(request: Request) -> Response:
    return json_response({"status": "ok"})


async def _store_state(request: Request) -> str:
    try:
        await asyncio.wait_for(context(request).store.ping(), STORE_PING_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready", never a 500
        log.warning("readiness: store ping failed: %s", type(exc).__name__)
        return "error"
    return "ok"


def session_summary(request: Request) -> dict[str, Any]:
    manager = context(request).sessions
    users = len(manager.logins())
    live = len(manager.live_logins())
    return {"users": users, "live": live, "share": round(live / users, 4) if users else 1.0}


async def readyz(request: Request) -> Response:
    store = await _store_state(request)
    sessions = session_summary(request)
    push = request.app.state.push
    problems: list[str] = []
    warnings: list[str] = []
    if push is not None:
        try:
            problems = [str(p) for p in push.ready_problems()]
            warnings = [str(w) for w in getattr(push, "ready_warnings", list)()]
        except Exception as exc:  # noqa: BLE001
            problems = [f"push dispatcher status unavailable: {type(exc).__name__}"]
    ready = store == "ok" and not problems and not (sessions["users"] and not sessions["live"])
    body = {"status": "ok" if ready else "not ready", "store": store, "sessions": sessions, "push": problems,
            "warnings": warnings}
    ownership = getattr(context(request).sessions, "ownership", None)
    if ownership is not None:  # a member whose lease rounds fail must leave the load balancer
        member = ownership.ready and not ownership.leaving
        ready = ready and member
        body["status"] = "ok" if ready else "not ready"
        body["cluster"] = {"instance": ownership.id, "member": member, "members": len(ownership.view.members)}
    return json_response(body, status=200 if ready else 503)


async def metrics(request: Request) -> Response:
    registry = context(request).metrics
    if registry is None:
        raise ApiError(404, "metrics are not enabled")
    return Response(registry.exposition(), media_type=CONTENT_TYPE)

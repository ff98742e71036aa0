"""``GET /cluster``: the instances sharing this store, users per instance, leases about to expire.

Answered from this instance's view of the last lease round (no extra store round trip). A single
instance (SQLite store) answers ``{"mode": "single"}``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from admin.listings import context
from mxproxy.api.render import json_response


async def cluster(request: Request) -> Response:
    ownership = getattr(context(request).sessions, "ownership", None)
    if ownership is None:
        return json_response({"mode": "single"})
    return json_response({"mode": "cluster", **ownership.describe()})

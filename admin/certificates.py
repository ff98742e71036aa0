"""``/mx/certificates``: the MX certificates trusted on first use (``[mx] tlsTrustOnFirstUse``).

``GET`` lists them (``{"certificates": {"host:port": "<sha256>"}}``); ``DELETE`` forgets the one
of ``?address=host:port`` (or all, without it) so that the next connection to that MX trusts
the certificate it then presents — after a planned certificate change. The store keeps them, so
every instance sharing it sees the same list.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from admin.listings import context
from mxproxy.api.errors import ApiError
from mxproxy.api.render import json_response

log = logging.getLogger("admin")


async def certificates(request: Request) -> Response:
    store = context(request).store
    if request.method == "GET":
        return json_response({"certificates": await store.mx_certificates()})
    address = request.query_params.get("address")
    if address is not None and not address.strip():
        raise ApiError(400, "address: expected host:port")
    forgotten = await store.forget_mx_certificates(address)
    if address is not None and not forgotten:
        raise ApiError(404, f"no certificate trusted for {address}")
    log.warning("admin: forgot %d trusted MX certificate(s)%s; the next connection trusts what it is shown",
                forgotten, f" of {address}" if address else "")
    return json_response({"forgotten": forgotten})

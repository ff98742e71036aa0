"""``PUT|DELETE /tokens/{apn|fcm}/{topic}/{token}``: device-token registration (storage only)."""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.auth import context, current_login
from mxproxy.api.errors import BEARER_CHALLENGE, ApiError
from mxproxy.api.render import no_content
from mxproxy.push.topics import token_shape_ok
from mxproxy.store.base import DeviceToken

log = logging.getLogger(__name__)

_FALSE = {"0", "false", "f", "no", "off"}


def _sandbox(request: Request) -> bool:
    """``?sandbox`` / ``?sandbox=1|true`` select sandbox; ``?sandbox=false|0`` means production."""
    if "sandbox" not in request.query_params:
        return False
    return request.query_params["sandbox"].strip().lower() not in _FALSE


def _short(token: str) -> str:
    return token[:8] + "…"


async def _signed_in_login(request: Request) -> str:
    """A valid JWT for a user we still hold (live or reconnecting): registering needs no MX round trip."""
    login = await current_login(request)
    if context(request).sessions.state(login) in ("absent", "needs_reauth"):
        raise ApiError(401, "active mx connection unavailable", BEARER_CHALLENGE)
    return login


async def token_route(request: Request) -> Response:
    login = await _signed_in_login(request)
    ctx = context(request)
    kind = request.path_params["kind"]
    topic = request.path_params["topic"]
    token = request.path_params["token"]
    sandbox = False
    if kind == "apn":
        sandbox = _sandbox(request)
        if not ctx.push_topics.apn_ok(topic, sandbox):
            raise ApiError(404, "unsupported APNS topic ID or sandbox flag")
    elif kind == "fcm":
        if not ctx.push_topics.fcm_ok(topic):
            raise ApiError(404, "unsupported FCM application ID")
    else:
        raise ApiError(404, f'unsupported push type "{kind}"')
    if not token_shape_ok(kind, token):
        raise ApiError(400, "bad push token")

    if request.method == "PUT":
        previous = await ctx.store.put_token(
            DeviceToken(kind=kind, topic=topic, token=token, login=login, sandbox=sandbox, created_at=time.time())
        )
        if previous and previous != login:
            log.info("%s token %s for %s moved from user %s to %s", kind, _short(token), topic, previous, login)
        return no_content()

    # DELETE: only the owner may unregister; unknown (or someone else's) token → 404, always.
    if not await ctx.store.delete_token(kind, topic, token, login=login):
        raise ApiError(404, "not found")
    return no_content()

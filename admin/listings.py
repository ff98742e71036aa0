"""The original's admin listings (README "Административный веб", spec §7.9) and user sign-out.

Shapes are the original's, key for key: ``{"apps": {…}}``, ``{"connections": […]}``,
``{"tokens": {"apn:topic[~]:token": login}}``, ``{"users": {login: {"host", "login",
"password"}}}``, ``{"userLogout": login}``. Secrets never leave: client secrets and MX passwords
are shown as ``xxxxx``, exactly as the README's example shows the password (docs/compat.md).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.bodies import Field, read_fields
from mxproxy.api.errors import ApiError
from mxproxy.api.render import json_response

if TYPE_CHECKING:
    from mxproxy.api.context import ApiContext
    from mxproxy.store.base import DeviceToken

log = logging.getLogger("admin")

#: What every secret looks like in an admin answer (the README's example password).
MASK = "xxxxx"


def context(request: Request) -> "ApiContext":
    return request.app.state.ctx


async def resolve_login(request: Request, name: str) -> str | None:
    """The stored user's MX login for ``name``, which may be the MX login or the name the user
    signed in with (``dmitrys`` or ``dmitrys@xyzrd.com``); None when no such user is stored."""
    user = await context(request).store.find_user(name)
    return None if user is None else user.login


def token_key(token: "DeviceToken") -> str:
    """``apn:<topic>[~]:<token>`` / ``fcm:<app>:<token>``: the original's bucket key (``~`` = sandbox)."""
    topic = token.topic + ("~" if token.kind == "apn" and token.sandbox else "")
    return f"{token.kind}:{topic}:{token.token}"


async def apps(request: Request) -> Response:
    """Client ids of ``[apps]``; the original returned the secrets too (spec §9.19)."""
    ids = sorted(context(request).config.apps)
    return json_response({"apps": {client_id: MASK for client_id in ids}})


async def connections(request: Request) -> Response:
    """Logins with a live MX session, sorted (``[]`` rather than the original's ``null``); in a
    cluster, those of this instance, which ``instance`` names."""
    manager = context(request).sessions
    return json_response({"connections": manager.live_logins(), **_instance(manager)})


def _instance(manager: Any) -> dict[str, str]:
    ownership = getattr(manager, "ownership", None)
    return {"instance": ownership.id} if ownership is not None else {}


async def tokens(request: Request) -> Response:
    rows = await context(request).store.list_tokens()
    return json_response({"tokens": {token_key(t): t.login for t in sorted(rows, key=token_key)}})


async def list_users(request: Request) -> Response:
    users = await context(request).store.list_users()
    return json_response(
        {
            "users": {
                u.login: {"host": u.host, "login": u.mx_login, "password": MASK}
                for u in sorted(users, key=lambda u: u.login)
            }
        }
    )


async def logout_user(request: Request) -> Response:
    """Close the user's MX session (``<logout/>``), delete them and their device tokens, and
    revoke their JWTs. ``login`` is the MX login or the sign-in name; the answer echoes
    it as given. 404 when no such user is stored (the session, if any, is closed anyway, as the
    original did)."""
    fields = await read_fields(request, [Field("login")])
    name = fields.get("login", "").strip()
    if not name:
        raise ApiError(400, 'missing "login"')
    login = await resolve_login(request, name) or name
    ctx = context(request)
    await ctx.tokens.revoke(login)  # the user's JWTs stop working, on every instance sharing the store
    existed = await ctx.sessions.logout(login)
    if not existed:
        raise ApiError(404, "not found")
    log.info("admin: user %s signed out", login)
    return json_response({"userLogout": name})


async def users(request: Request) -> Response:
    if request.method == "POST":
        return await logout_user(request)
    return await list_users(request)


async def sessions(request: Request) -> Response:
    """Every MX session the process holds, with its state (live, reconnecting, …) and last error.
    An addition: the original only listed live logins."""
    manager = context(request).sessions
    described: list[dict[str, Any]] = []
    for login in manager.logins():
        info = manager.describe(login)
        if info is not None:
            described.append(info)
    return json_response({"sessions": described, **_instance(manager)})

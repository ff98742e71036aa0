"""``/conferences``: list, server info, create, update, join, delete."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.auth import context, current_session
from mxproxy.api.bodies import Field, read_fields
from mxproxy.api.errors import ApiError
from mxproxy.api.idempotency import idempotently
from mxproxy.api.render import conference_info_json, conference_json, json_response, no_content
from mxproxy.connectors.base import Conference
from mxproxy.connectors.errors import CSTAError

if TYPE_CHECKING:
    from mxproxy.sessions import UserSession

CONFERENCE_FIELDS = [
    Field("Id"), Field("ownerId", "id"), Field("name"), Field("accessId", "id"), Field("description"),
    Field("type"), Field("startDate", "int"), Field("duration", "int"), Field("waitForOwner", "bool"),
    Field("delOnOwnerLeave", "bool"), Field("ws"), Field("wsType"),
]


def _conf_id(request: Request) -> str:
    conf_id = request.path_params["id"]
    if not conf_id or len(conf_id) > 64:
        raise ApiError(404, "not found")
    return conf_id


async def _conference_body(request: Request, default_owner: int, conf_id: str | None) -> Conference:
    body = await read_fields(request, CONFERENCE_FIELDS)
    return Conference(
        conf_id=conf_id if conf_id is not None else body.get("Id", ""),
        owner_id=body.get("ownerId") or default_owner,
        name=body.get("name", ""),
        access_id=body.get("accessId", 0),
        description=body.get("description", ""),
        type=body.get("type", ""),
        start_date=body.get("startDate", 0),
        duration=body.get("duration", 0),
        wait_for_owner=body.get("waitForOwner", False),
        del_on_owner_leave=body.get("delOnOwnerLeave", False),
        ws=body.get("ws", ""),
        ws_type=body.get("wsType", ""),
    )


async def conferences_route(request: Request) -> Response:
    session = await current_session(request)
    if request.method == "GET":
        return json_response({"conferences": [conference_json(c) for c in await session.mx.conferences()]})
    return await idempotently(request, lambda: create_conference(request, session))


def _create_lock(request: Request, login: str) -> asyncio.Lock:
    """One lock per user while a create checks the cap, so concurrent creates cannot pass it
    together (a user's requests all reach the instance owning their session, also in cluster
    mode). Kept per app: a lock belongs to one event loop."""
    state = request.app.state
    locks: "weakref.WeakValueDictionary[str, asyncio.Lock] | None" = getattr(state, "conference_locks", None)
    if locks is None:
        locks = state.conference_locks = weakref.WeakValueDictionary()
    return locks.setdefault(login, asyncio.Lock())


async def create_conference(request: Request, session: "UserSession") -> Response:
    """At most ``[server] maxConferences`` per owner (the caller, and the ``ownerId`` the body
    names): every conference is on the MX and in every ``GET /conferences`` answer, which has to
    fit one CSTA frame (docs/compat.md A30)."""
    conference = await _conference_body(request, session.info.user_id, None)
    limit = context(request).config.server.max_conferences
    async with _create_lock(request, session.login):
        owners = {session.info.user_id, conference.owner_id}
        owned = sum(1 for c in await session.mx.conferences() if c.owner_id in owners)
        if owned >= limit:
            raise ApiError(409, f"conference limit reached: at most {limit} conferences per user; "
                                "delete one first")
        created = await session.mx.create_conference(conference)
    return json_response({"conference": conference_json(created)})


async def conference_info(request: Request) -> Response:
    session = await current_session(request)
    return json_response({"conferences": conference_info_json(await session.mx.conference_server_info())})


async def conference_route(request: Request) -> Response:
    session = await current_session(request)
    conf_id = _conf_id(request)
    if request.method == "PUT":
        conference = await _conference_body(request, session.info.user_id, conf_id)
        updated = await session.mx.update_conference(conference)
        return json_response({"conference": conference_json(updated)})
    if request.method == "POST":
        body = await read_fields(request, [Field("accessId", "id")])
        await session.mx.join_conference(conf_id, body.get("accessId", 0))
        return no_content()
    try:
        await session.mx.delete_conference(conf_id)
    except CSTAError as exc:
        raise ApiError(404, exc.text or "not found") from None
    return no_content()

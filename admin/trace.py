"""``POST /trace``: record one user's CSTA traffic for N minutes (docs/simulator.md, "Recording a
trace"). Body (JSON)::

    {"login": "dmitrys", "minutes": 10, "pseudonymise": false}

``login`` is the MX login or the name the user signs in with; ``minutes`` 0 stops a trace, at
most 1440. Every MX session of that user logged in within the time is traced from its first
frame, and the live one from now on. Answer: ``{"login", "until" (Unix seconds), "directory",
"live": whether the live session is traced now}``. Per instance: in a cluster, ask the instance
that holds the user's session (admin ``GET /sessions``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from admin.bodies import read_body
from admin.listings import context, resolve_login
from mxproxy.api.errors import ApiError
from mxproxy.api.render import json_response
from mxproxy.sessions import NotSignedIn, SessionUnavailable

MAX_MINUTES = 24 * 60


def _parse(body: dict[str, Any]) -> tuple[str, float, bool]:
    unknown = sorted(set(body) - {"login", "minutes", "pseudonymise"})
    if unknown:
        raise ApiError(400, f'unknown field "{unknown[0]}"')
    login = body.get("login")
    if not isinstance(login, str) or not login.strip():
        raise ApiError(400, 'bad value for "login": expected a non-empty string')
    minutes = body.get("minutes", 10)
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 <= minutes <= MAX_MINUTES:
        raise ApiError(400, f'bad value for "minutes": expected a number from 0 to {MAX_MINUTES}')
    pseudonymise = body.get("pseudonymise", False)
    if not isinstance(pseudonymise, bool):
        raise ApiError(400, 'bad value for "pseudonymise": expected true or false')
    return login.strip(), float(minutes), pseudonymise


async def trace_route(request: Request) -> Response:
    name, minutes, pseudonymise = _parse(await read_body(request))
    ctx = context(request)
    login = await resolve_login(request, name) or name
    plan = ctx.sessions.connector.trace_user(login, minutes * 60, pseudonymise)  # MXUnsupported → 501
    try:
        live = ctx.sessions.get(login).mx.start_trace(plan)
    except (NotSignedIn, SessionUnavailable):  # no live session now: its next login is traced
        live = False
    return json_response({"login": login, "until": int(plan.until) if minutes else 0,
                          "directory": str(plan.directory), "live": live})

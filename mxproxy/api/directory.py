"""``/contacts`` and ``/services``: the MX directory and service list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.auth import current_session
from mxproxy.api.render import contacts_json, json_response, service_json


async def contacts(request: Request) -> Response:
    session = await current_session(request)
    return json_response({"contacts": contacts_json(await session.directory())})


async def services(request: Request) -> Response:
    session = await current_session(request)
    return json_response({"services": [service_json(s) for s in await session.mx.services()]})

"""``/contacts`` and ``/services``: the MX directory and service list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.auth import current_session
from mxproxy.api.render import contacts_json, json_response, service_json
from mxproxy.api.rendered import RenderedJSON
from mxproxy.connectors.base import Contact


def render_contacts(directory: list[Contact]) -> RenderedJSON:
    return RenderedJSON({"contacts": contacts_json(directory)})


async def contacts(request: Request) -> Response:
    """Rendered once per cached directory (shared by the MX's users), then served as bytes."""
    session = await current_session(request)
    return (await session.directory_as(render_contacts)).response(request)


async def services(request: Request) -> Response:
    session = await current_session(request)
    return json_response({"services": [service_json(s) for s in await session.mx.services()]})

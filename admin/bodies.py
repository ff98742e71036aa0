"""Request bodies of the admin API's JSON routes, as operators send them with curl."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from mxproxy.api.bodies import parse_json, read_raw_fields


async def read_body(request: Request) -> dict[str, Any]:
    """The request as JSON. ``curl -d '{…}'`` labels a JSON body as a form; the body is nested
    JSON either way, so a form-labelled body that is a JSON object is read as JSON."""
    body = await request.body()
    if body.lstrip().startswith(b"{") and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        data = parse_json(body)
        if isinstance(data, dict):
            return data
    return await read_raw_fields(request)

"""Framework conventions: JSON errors for unknown routes and methods, pretty JSON, Server header."""

from __future__ import annotations

import httpx

from mxproxy import SERVER_NAME
from tests.api.conftest import ApiHarness


async def test_unknown_route_is_json_404(api: ApiHarness) -> None:
    r = await api.client.get("/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "not found"}
    assert r.headers["content-type"] == "application/json; charset=utf-8"


async def test_wrong_method_is_405_with_allow(api: ApiHarness) -> None:
    r = await api.client.delete("/contacts")
    assert r.status_code == 405
    assert r.json() == {"error": "method not allowed"}
    assert "GET" in r.headers["allow"]


async def test_json_is_pretty_printed_with_trailing_newline(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/auth", headers=api.bearer(token))
    assert r.status_code == 200
    assert r.text.startswith('{\n    "mx": ')
    assert r.text.endswith("}\n")


async def test_server_header_on_success_and_error(api: ApiHarness) -> None:
    assert (await api.client.get("/nope")).headers["server"] == SERVER_NAME
    assert (await api.client.get("/openapi.json")).headers["server"] == SERVER_NAME


async def test_live_server_sends_exactly_one_server_header(api: ApiHarness,
                                                           live_client: httpx.AsyncClient) -> None:
    r = await live_client.get("/nope")
    assert r.status_code == 404
    assert r.headers.get_list("server") == [SERVER_NAME]

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


# --- compression ------------------------------------------------------------------------------------


async def test_large_contacts_answer_is_gzipped_when_asked(api: ApiHarness, token: str) -> None:
    plain = await api.client.get("/contacts", headers={**api.bearer(token), "Accept-Encoding": "identity"})
    zipped = await api.client.get("/contacts", headers={**api.bearer(token), "Accept-Encoding": "gzip"})
    assert len(plain.content) >= 1024  # above the gzip threshold
    assert zipped.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in zipped.headers["vary"].lower()
    assert int(zipped.headers["content-length"]) < len(plain.content)
    assert zipped.json() == plain.json()  # httpx decoded it
    assert "content-encoding" not in plain.headers


async def test_large_answer_without_accept_encoding_is_sent_as_is(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/contacts", headers={**api.bearer(token), "Accept-Encoding": ""})
    assert r.status_code == 200 and "content-encoding" not in r.headers
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.json()["contacts"]


async def test_small_answers_are_intact_whether_or_not_gzip_is_asked(api: ApiHarness, token: str) -> None:
    for encoding in ("gzip", "identity", ""):
        for path in ("/auth", "/services", "/nope"):
            r = await api.client.get(path, headers={**api.bearer(token), "Accept-Encoding": encoding})
            assert "content-encoding" not in r.headers, (path, encoding)
            assert int(r.headers["content-length"]) == len(r.content), (path, encoding)
            assert isinstance(r.json(), dict), (path, encoding)
            assert r.headers["server"] == SERVER_NAME


async def test_live_server_gzips_the_call_log_on_the_wire(api: ApiHarness, token: str) -> None:
    from tests.api.conftest import serve

    headers = {**api.bearer(token), "Accept-Encoding": "gzip"}
    async with serve(api.app) as url, httpx.AsyncClient(base_url=url) as client, \
            client.stream("GET", "/calls", headers=headers) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    assert r.headers["content-encoding"] == "gzip"
    assert raw[:2] == b"\x1f\x8b"  # a gzip member, not the JSON itself

"""Bodies, path ids and query integers that used to crash the parser answer 400 (or the status the
same value class always had), never 500; multipart bodies obey the body limit."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from mxproxy.api.bodies import MAX_BODY, MAX_JSON_DEPTH, MAX_NUMBER_DIGITS, check_json_shape, parse_int_text
from mxproxy.api.errors import ApiError
from mxproxy.api.openapi import openapi_document
from tests.api.conftest import README_BASIC, ApiHarness

HUGE = "9" * 5000  # beyond Python's 4,300-digit int() limit

# Every route the OpenAPI document gives a JSON body, ids filled with a well-formed value.
JSON_ROUTES = [
    (method.upper(), path.replace("{id}", "1"))
    for path, ops in openapi_document()["paths"].items()
    for method, op in ops.items()
    if "application/json" in op.get("requestBody", {}).get("content", {})
]

BAD_JSON = {
    "deep array": "[" * 5000 + "]" * 5000,
    "deep object": '{"a":' * 5000 + "1" + "}" * 5000,
    "deep inside a field": '{"device": ' + "[" * 10_000 + "]" * 10_000 + "}",
    "huge integer": '{"timeout": ' + HUGE + "}",
    "huge negative integer": '{"callId": -' + HUGE + "}",
    "huge exponent digits": '{"timeout": 1e' + HUGE + "}",
}


def test_json_routes_are_found() -> None:
    assert ("POST", "/calls") in JSON_ROUTES and ("PATCH", "/voicemails/1") in JSON_ROUTES
    assert len(JSON_ROUTES) >= 10


@pytest.mark.parametrize("route", JSON_ROUTES, ids=" ".join)
@pytest.mark.parametrize("body", BAD_JSON.values(), ids=list(BAD_JSON))
async def test_json_that_would_crash_the_parser_is_400(api: ApiHarness, token: str, route: tuple[str, str],
                                                       body: str) -> None:
    method, path = route
    r = await api.client.request(method, path, content=body,
                                 headers={**api.bearer(token), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("malformed JSON body: ")


def test_strings_do_not_count_towards_depth_or_number_length() -> None:
    check_json_shape('{"note": "' + "[{" * 5000 + "9" * 5000 + '\\"]"}')


@pytest.mark.parametrize("text", ["[" * (MAX_JSON_DEPTH + 1), "1" * (MAX_NUMBER_DIGITS + 1)])
def test_just_past_the_bounds_is_refused(text: str) -> None:
    with pytest.raises(ApiError) as info:
        check_json_shape(text)
    assert info.value.status == 400


def test_up_to_the_bounds_is_left_to_the_parser() -> None:
    check_json_shape("[" * MAX_JSON_DEPTH + "1" * MAX_NUMBER_DIGITS + "]" * MAX_JSON_DEPTH)


@pytest.mark.parametrize(("text", "value"), [
    (HUGE, 2**64), ("-" + HUGE, -(2**64)), ("0" * 5000 + "42", 42), ("-" + "0" * 30 + "7", -7),
    ("9223372036854775807", 2**63 - 1), ("99999999999999999999", 2**64),
])
def test_integer_text_of_any_length_parses_or_saturates(text: str, value: int) -> None:
    assert parse_int_text(text) == value


async def test_huge_form_integer_is_out_of_range(api: ApiHarness, token: str) -> None:
    r = await api.client.patch("/calls", content=f"ringDelay={HUGE}",
                              headers={**api.bearer(token), "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400
    assert r.json() == {"error": 'bad value for "ringDelay": out of range'}


@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE"])
async def test_huge_call_id_is_an_unknown_call_like_any_id_beyond_64_bits(api: ApiHarness, token: str,
                                                                          method: str) -> None:
    r = await api.client.request(method, f"/calls/{HUGE}", headers=api.bearer(token))
    assert r.status_code == 404
    assert r.json()["error"].startswith('bad call id "9999')


@pytest.mark.parametrize(("timestamp", "status"), [(HUGE, 200), ("-" + HUGE, 200), (HUGE + "x", 400)])
async def test_huge_timestamp_is_far_future_or_past_like_any_other(api: ApiHarness, token: str,
                                                                   timestamp: str, status: int) -> None:
    r = await api.client.get("/calls", params={"timestamp": timestamp}, headers=api.bearer(token))
    assert r.status_code == status, r.text


async def _counted(chunks: list[int], total: int) -> AsyncIterator[bytes]:
    boundary = b"--xyz\r\n"
    yield boundary + b'Content-Disposition: form-data; name="f"; filename="f.bin"\r\n\r\n'
    for _ in range(total // 16384):
        chunks.append(1)
        yield b"x" * 16384
    yield b"\r\n--xyz--\r\n"


async def test_multipart_body_over_the_limit_is_413_without_reading_it_all(api: ApiHarness) -> None:
    consumed: list[int] = []
    total = 4 * 1024 * 1024
    r = await api.client.post("/auth", content=_counted(consumed, total),
                              headers={"Authorization": README_BASIC,
                                       "Content-Type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413
    assert r.json() == {"error": "request body too large"}
    assert len(consumed) * 16384 <= 2 * MAX_BODY


async def test_multipart_file_part_is_refused(api: ApiHarness) -> None:
    r = await api.client.post("/auth", headers={"Authorization": README_BASIC},
                              files={"username": ("name.txt", b"dmitrys@xyzrd.com")},
                              data={"password": "78561", "grant_type": "password"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("malformed multipart body: ")


async def test_malformed_multipart_is_400(api: ApiHarness) -> None:
    r = await api.client.post("/auth", content=b"--xyz\r\nno headers here",
                              headers={"Authorization": README_BASIC,
                                       "Content-Type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("malformed multipart body: ")

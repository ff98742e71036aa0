"""Request body parsing: JSON or form fields, typed, with 400s instead of crashes.

The original decoded JSON, XML or forms by Content-Type and answered 500 for an empty or
malformed JSON body and 400 for a missing Content-Type even when every field was optional. Here
a missing or empty body simply means "no fields given"; malformed JSON and wrong types are 400
with a message that names the problem (docs/compat.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, AsyncIterator, Literal, Mapping
from urllib.parse import parse_qsl

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from mxproxy.api.errors import ApiError

FieldType = Literal["str", "bool", "int", "id"]

MAX_BODY = 64 * 1024  # no route takes more than a few hundred bytes, whatever the content type
# Bounds checked before ``json.loads`` sees a body: deeper nesting makes it raise RecursionError,
# longer digit runs make ``int()`` raise ValueError (Python's 4,300-digit limit). No body of ours
# nests more than three levels or holds a number of more than 20 digits.
MAX_JSON_DEPTH = 64
MAX_NUMBER_DIGITS = 100
MAX_FORM_FIELDS = 100
# 64-bit decimal integers have at most 19 significant digits; text with more is out of range
INT64_DIGITS = 19


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType = "str"


def _content_type(request: Request) -> tuple[str, dict[str, str]]:
    raw = request.headers.get("content-type", "")
    main, _, rest = raw.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            params[key.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), params


async def _read(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, "request body too large")
    return body


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_NUMBER_DIGITS + 1},}}")
_BRACKET = re.compile(r"[\[\]{}]")


def check_json_shape(text: str) -> None:
    """400 for JSON that would crash the parser: nesting deeper than ``MAX_JSON_DEPTH``, or a
    number longer than ``MAX_NUMBER_DIGITS`` digits. Strings are blanked out first, so their
    contents never count."""
    skeleton = _STRING.sub('""', text) if '"' in text else text
    if _LONG_NUMBER.search(skeleton):
        raise ApiError(400, f"malformed JSON body: number longer than {MAX_NUMBER_DIGITS} digits")
    if skeleton.count("[") + skeleton.count("{") <= MAX_JSON_DEPTH:
        return
    depth = 0
    for match in _BRACKET.finditer(skeleton):
        if match.group() in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ApiError(400, f"malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
        else:
            depth -= 1


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` with a 400 for everything it can fail on (the shape is bounded first)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "request body is not valid UTF-8") from None
    check_json_shape(text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


async def _parse_multipart(request: Request, body: bytes) -> dict[str, Any]:
    """The text fields of a multipart body already read in full (so ``MAX_BODY`` holds); file
    parts are refused: no route takes a file."""

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    parser = MultiPartParser(request.headers, chunks(), max_files=0, max_fields=MAX_FORM_FIELDS,
                             max_part_size=MAX_BODY)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, f"malformed multipart body: {exc.message}") from None
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def read_raw_fields(request: Request) -> dict[str, Any]:
    """The body as a flat mapping of raw values (JSON values, or strings from a form)."""
    ctype, params = _content_type(request)
    charset = params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(400, "unsupported charset")
    body = await _read(request)
    if not body.strip():
        return {}
    if ctype == "multipart/form-data":
        return await _parse_multipart(request, body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid UTF-8") from None
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text, keep_blank_values=True))
    if ctype in ("", "application/json", "text/json") or ctype.endswith("+json"):
        data = parse_json(text)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ApiError(400, "JSON body must be an object")
        return data
    raise ApiError(400, "unsupported content type")


_TRUE = {"", "1", "t", "true", "yes", "on"}
_FALSE = {"0", "f", "false", "no", "off"}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Decimal integers as the OpenAPI document describes them (``openapi.INT64_TEXT``): ASCII digits
# and an optional minus, nothing else (Python's ``int()`` also takes ``_``, ``+``, spaces and
# non-ASCII digits, which no client means to send).
_DIGITS = re.compile(r"-?[0-9]+")


def parse_int_text(text: str) -> int | None:
    """``text`` as a decimal integer, or None when it is not one. Beyond 64 bits the value is
    only known to be out of range: ±2^64 stands for it (``int()`` refuses 4,300+ digits)."""
    if not _DIGITS.fullmatch(text):
        return None
    negative = text.startswith("-")
    if len(text) - negative <= INT64_DIGITS:
        return int(text, 10)
    significant = text[negative:].lstrip("0") or "0"
    if len(significant) > INT64_DIGITS:
        return -(2**64) if negative else 2**64
    return -int(significant, 10) if negative else int(significant, 10)


def _convert(field: Field, value: Any, from_form: bool) -> Any:
    name = field.name
    if field.type == "str":
        if isinstance(value, str):
            return value
        raise ApiError(400, f'bad value for "{name}": expected a string')
    if field.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and from_form and value.isascii():
            low = value.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
        raise ApiError(400, f'bad value for "{name}": expected true or false')
    # int / id: integers, also given as digit strings (ids beyond 2^53 survive JavaScript that way)
    if isinstance(value, bool):
        raise ApiError(400, f'bad value for "{name}": expected an integer')
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)  # JSON has one number type: 30.0 is the integer 30 (JSON Schema agrees)
    elif isinstance(value, str) and (from_form or field.type == "id"):
        if value == "" and from_form:
            return 0
        parsed = parse_int_text(value)
        if parsed is None:
            raise ApiError(400, f'bad value for "{name}": expected an integer')
        number = parsed
    else:
        raise ApiError(400, f'bad value for "{name}": expected an integer')
    if not INT64_MIN <= number <= INT64_MAX:
        raise ApiError(400, f'bad value for "{name}": out of range')
    return number


async def read_fields(request: Request, fields: list[Field]) -> dict[str, Any]:
    """Typed values of the given fields that are present (absent and ``null`` are left out)."""
    ctype, _ = _content_type(request)
    from_form = ctype in ("application/x-www-form-urlencoded", "multipart/form-data")
    raw = await read_raw_fields(request)
    out: dict[str, Any] = {}
    for field in fields:
        if field.name not in raw or raw[field.name] is None:
            continue
        out[field.name] = _convert(field, raw[field.name], from_form)
    return out


async def read_form(request: Request) -> Mapping[str, str]:
    """Body form fields only (``POST /auth``): the URL query is ignored, a JSON body gives nothing."""
    ctype, _ = _content_type(request)
    if ctype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {}
    raw = await read_raw_fields(request)
    return {k: v for k, v in raw.items() if isinstance(v, str)}

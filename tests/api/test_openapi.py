"""The OpenAPI document names exactly the routes the app serves, and its form patterns are the parser's."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route

from mxproxy.api import openapi
from mxproxy.api.app import ROUTES
from mxproxy.api.bodies import Field, _convert
from mxproxy.api.errors import ApiError
from tests.api.conftest import ApiHarness


def _app_operations() -> set[tuple[str, str]]:
    ops: set[tuple[str, str]] = set()
    for route in ROUTES:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                ops.add((route.path, method.lower()))
    return ops


async def test_openapi_paths_and_methods_match_the_routes(api: ApiHarness) -> None:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert documented == _app_operations()


async def test_openapi_schema_references_resolve(api: ApiHarness) -> None:
    doc = (await api.client.get("/openapi.json")).json()
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    refs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(doc)
    assert refs
    for ref in refs:
        _, section, kind, name = ref.split("/")
        assert name in doc[section][kind], ref


# --- the patterns the document gives form fields are exactly what the form parser takes ----------

_CANDIDATES = ["", "0", "1", "-0", "-1", "007", "+1", " 1", "1 ", "1_0", "\u0661", "1.0", "x", "true", "TRUE",
               "True ", "yes", "On", "oFF", "no", "t", "F", "2", "y", "65535", "65536", "-65535",
               str(2**63 - 1), str(2**63), str(-(2**63)), str(-(2**63) - 1), "0" * 30 + "9", "9" * 40]


def _form_value(kind: str, value: str) -> object:
    """What the form parser makes of ``value`` (``ApiError`` when it refuses it)."""
    return _convert(Field("f", kind), value, True)  # type: ignore[arg-type]


def _accepted(kind: str, value: str, low: int | None = None, high: int | None = None) -> bool:
    try:
        converted = _form_value(kind, value)
    except ApiError:
        return False
    return low is None or low <= converted <= high  # type: ignore[operator]


@pytest.mark.parametrize("kind,pattern,low,high", [
    ("bool", openapi.BOOL_FORM, None, None),
    ("int", openapi.INT64_FORM, None, None),
    ("id", openapi.INT64_FORM, None, None),
    ("int", openapi.UINT16_FORM, 0, openapi.UINT16_MAX),  # ringDelay / vmDelay and their range check
])
def test_form_patterns_accept_exactly_what_the_form_parser_takes(kind: str, pattern: str, low: int | None,
                                                                  high: int | None) -> None:
    wrong = [v for v in _CANDIDATES if bool(re.fullmatch(pattern, v)) != _accepted(kind, v, low, high)]
    assert wrong == []


def test_int64_text_pattern_is_exactly_int64() -> None:
    values = [0, 1, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 10**18, 10**19, 9223372036854775799,
              9223372036854775810, -9223372036854775799, 1234567890123456789]
    wrong = [n for n in values if bool(re.fullmatch(openapi.INT64_TEXT, str(n))) != (-(2**63) <= n < 2**63)]
    assert wrong == []

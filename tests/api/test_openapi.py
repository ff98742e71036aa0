"""The OpenAPI document names exactly the routes the app serves."""

from __future__ import annotations

from starlette.routing import Route

from mxproxy.api.app import ROUTES
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

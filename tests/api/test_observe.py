"""``ObserveMiddleware``: request counts and latency by route template, never by raw path."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mxproxy.api.errors import exception_handlers
from mxproxy.api.observe import ObserveMiddleware
from mxproxy.metrics import Metrics


async def item(request: Request) -> Response:
    return PlainTextResponse(request.path_params["id"])


async def boom(request: Request) -> Response:
    raise RuntimeError("handler bug")


def make_app(metrics: Metrics) -> Starlette:
    return Starlette(
        routes=[Route("/items/{id}", item, methods=["GET"]), Route("/boom", boom, methods=["GET"])],
        middleware=[Middleware(ObserveMiddleware, metrics=metrics, api="test")],
        exception_handlers=exception_handlers(),
    )


def count(metrics: Metrics, method: str, route: str, status: str) -> float | None:
    return metrics.registry.get_sample_value(
        "mxproxy_http_requests_total", {"api": "test", "method": method, "route": route, "status": status})


async def test_requests_are_labelled_by_template_and_unmatched_paths_share_one_label() -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=make_app(metrics), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for i in range(3):
            assert (await client.get(f"/items/{i}")).status_code == 200
        await client.get("/random/scan/1")
        await client.get("/random/scan/2")
        await client.post("/items/1")
        await client.request("PROPFIND", "/items/1")
    assert count(metrics, "GET", "/items/{id}", "200") == 3
    assert count(metrics, "GET", "unmatched", "404") == 2
    assert count(metrics, "POST", "/items/{id}", "405") == 1
    assert count(metrics, "OTHER", "/items/{id}", "405") == 1
    assert metrics.registry.get_sample_value("mxproxy_http_request_seconds_count",
                                             {"api": "test", "route": "/items/{id}"}) == 5


async def test_an_exception_escaping_the_handler_is_counted_as_500() -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=make_app(metrics), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/boom")
    assert (r.status_code, r.json()) == (500, {"error": "internal server error"})
    assert count(metrics, "GET", "/boom", "500") == 1



async def test_each_status_of_a_route_keeps_its_own_count_across_requests() -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=make_app(metrics), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(3):
            await client.get("/items/1")
            await client.post("/items/1")
            await client.get("/items/2")  # another path of the same template: the same children
    assert count(metrics, "GET", "/items/{id}", "200") == 6
    assert count(metrics, "POST", "/items/{id}", "405") == 3
    assert metrics.registry.get_sample_value("mxproxy_http_request_seconds_count",
                                             {"api": "test", "route": "/items/{id}"}) == 9

"""``/healthz``, ``/readyz`` (store ping, live share of MX sessions, push problems) and
``/metrics`` (Prometheus text with the public and admin request counts and sign-in results)."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.admin.conftest import AdminHarness
from tests.api.conftest import README_BASIC, README_USERNAME, basic


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float | None:
    return parsed.get((name, tuple(sorted(labels.items()))))


async def test_healthz_is_ok(admin: AdminHarness) -> None:
    r = await admin.client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


async def test_readyz_is_ready_with_no_users_and_with_live_ones(admin: AdminHarness) -> None:
    r = await admin.client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ok", "store": "ok",
                                               "sessions": {"users": 0, "live": 0, "share": 1.0}, "push": [],
                                               "warnings": []})
    await admin.sign_in()
    r = await admin.client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["sessions"] == {"users": 1, "live": 1, "share": 1.0}


async def test_readyz_is_503_when_users_exist_but_no_mx_session_is_live(admin: AdminHarness) -> None:
    await admin.sign_in()
    await admin.api.sim.stop()  # the MX goes away; the session manager keeps reconnecting
    for _ in range(200):
        r = await admin.client.get("/readyz")
        if r.status_code == 503:
            break
        await asyncio.sleep(0.02)
    assert r.status_code == 503
    assert r.json() == {"status": "not ready", "store": "ok", "sessions": {"users": 1, "live": 0, "share": 0.0},
                        "push": [], "warnings": []}


async def test_readyz_is_503_when_the_store_does_not_answer(admin: AdminHarness) -> None:
    store = admin.ctx.store
    await store.close()
    try:
        r = await admin.client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["store"] == "error" and r.json()["status"] == "not ready"
    finally:
        await store.open()


async def test_metrics_parse_and_count_public_and_admin_requests_by_route_template(admin: AdminHarness) -> None:
    token = await admin.sign_in()
    bearer = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        assert (await admin.public.get("/contacts", headers=bearer)).status_code == 200
    await admin.public.get("/calls/123", headers=bearer)
    await admin.public.get("/calls/456", headers=bearer)
    await admin.public.get("/no/such/path")
    await admin.public.delete("/contacts", headers=bearer)  # 405
    await admin.client.get("/users")

    r = await admin.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    parsed = samples(r.text)
    total = "mxproxy_http_requests_total"
    assert value(parsed, total, api="public", method="POST", route="/auth", status="200") == 1
    assert value(parsed, total, api="public", method="GET", route="/contacts", status="200") == 2
    calls = [v for (n, labels), v in parsed.items() if n == total and ("route", "/calls/{id}") in labels]
    assert sum(calls) == 2  # both ids under one template, never the raw path
    assert not [k for k in parsed if any(lv in ("/calls/123", "/no/such/path") for _, lv in k[1])]
    assert value(parsed, total, api="public", method="GET", route="unmatched", status="404") == 1
    assert value(parsed, total, api="public", method="DELETE", route="/contacts", status="405") == 1
    assert value(parsed, total, api="admin", method="GET", route="/users", status="200") == 1
    assert value(parsed, "mxproxy_http_request_seconds_count", api="public", route="/contacts") == 3  # 405 too
    assert value(parsed, "mxproxy_logins_total", result="ok") == 1
    assert value(parsed, "mxproxy_mx_live_sessions") == 1


async def test_sign_in_failures_are_counted_by_result(admin: AdminHarness) -> None:
    form = {"username": README_USERNAME, "password": "wrong", "grant_type": "password"}
    r = await admin.public.post("/auth", data=form, headers={"Authorization": README_BASIC})
    assert r.status_code in (401, 403)
    r = await admin.public.post("/auth", data=form, headers={"Authorization": basic("client7664", "bad")})
    assert r.status_code == 403
    r = await admin.public.post("/auth", data={**form, "grant_type": "code"}, headers={"Authorization": README_BASIC})
    assert r.status_code == 403
    parsed = samples((await admin.client.get("/metrics")).text)
    assert value(parsed, "mxproxy_logins_total", result="bad_credentials") == 1
    assert value(parsed, "mxproxy_logins_total", result="bad_client") == 2
    assert value(parsed, "mxproxy_logins_total", result="ok") is None


async def test_an_mx_timeout_on_a_public_request_is_counted(admin: AdminHarness) -> None:
    token = await admin.sign_in()
    admin.api.sim.set_delay(3.0, command="GetServiceList")  # over the harness's 1 s response timeout
    r = await admin.public.get("/services", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 504
    parsed = samples((await admin.client.get("/metrics")).text)
    assert value(parsed, "mxproxy_mx_timeouts_total") == 1
    assert value(parsed, "mxproxy_http_requests_total", api="public", method="GET", route="/services", status="504") == 1


async def test_metrics_is_404_json_when_metrics_are_off(admin: AdminHarness) -> None:
    admin.ctx.metrics = None
    r = await admin.client.get("/metrics")
    assert (r.status_code, r.json()) == (404, {"error": "metrics are not enabled"})


async def test_a_streamed_public_answer_over_a_socket_is_counted_once(admin: AdminHarness) -> None:
    from mxproxy.api.app import create_app
    from tests.api.conftest import serve

    async with serve(create_app(admin.ctx)) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/openapi.json")).status_code == 200
    parsed = samples((await admin.client.get("/metrics")).text)
    assert value(parsed, "mxproxy_http_requests_total", api="public", method="GET", route="/openapi.json",
                 status="200") == 1

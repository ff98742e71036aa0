"""``/webhooks`` on the admin API: create (the secret shown once), list, get, patch, delete, the
delivery log with its filter and pages, redeliver; every bad body a 400 naming the field, an
unknown id 404, the SSRF guard at create and patch, 503 while ``[webhooks] enabled = false``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from mxproxy.config import WebhooksConfig
from mxproxy.store.outbox import NewDelivery
from mxproxy.webhooks.service import WebhookService
from tests.admin.conftest import AdminHarness, build_admin

HOOK = "http://127.0.0.1:9/hook"  # loopback is allowed below; nothing is sent in these tests


@pytest.fixture
async def hooks(tmp_path: Path) -> AsyncIterator[AdminHarness]:
    async with build_admin(tmp_path) as harness:
        config = WebhooksConfig(enabled=True, allow_networks=("127.0.0.0/8",), max_webhooks=3, poll_interval=60.0)
        svc = WebhookService(config, harness.ctx.store)
        await svc.start()
        await svc.worker.stop()  # nothing is sent here: the rows stay as the tests leave them
        harness.app.state.webhooks = svc
        try:
            yield harness
        finally:
            await svc.aclose()


async def create(admin: AdminHarness, **body: Any) -> dict[str, Any]:
    r = await admin.client.post("/webhooks", json={"url": HOOK, "events": ["call.*"], **body})
    assert r.status_code == 201, r.text
    return r.json()


async def test_creating_shows_the_secret_once_and_never_again(hooks: AdminHarness, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    made = await create(hooks, users=["dmitrys"])
    assert made["secret"].startswith("whsec_") and made["id"].startswith("wh_")
    assert (made["url"], made["events"], made["users"], made["enabled"]) == (HOOK, ["call.*"], ["dmitrys"], True)
    listed = (await hooks.client.get("/webhooks")).json()["webhooks"]
    got = (await hooks.client.get(f"/webhooks/{made['id']}")).json()
    assert [w["id"] for w in listed] == [made["id"]] and got["id"] == made["id"]
    for answer in (listed[0], got):
        assert "secret" not in answer and made["secret"] not in str(answer)
    assert made["secret"] not in caplog.text and made["secret"][6:] not in caplog.text


async def test_curl_d_json_is_accepted_and_users_may_be_sign_in_names(hooks: AdminHarness) -> None:
    await hooks.sign_in()  # stores dmitrys, who signed in as dmitrys@xyzrd.com
    r = await hooks.client.post("/webhooks", content=b'{"url": "%s", "events": ["call.ended"], '
                                b'"users": ["dmitrys@xyzrd.com"]}' % HOOK.encode(),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text
    assert r.json()["users"] == ["dmitrys"]


@pytest.mark.parametrize(("body", "message"), [
    ({}, 'missing "url"'),
    ({"url": HOOK}, 'missing "events"'),
    ({"url": HOOK, "events": "call.*"}, 'bad value for "events": expected a non-empty list of non-empty strings'),
    ({"url": HOOK, "events": []}, 'bad value for "events": expected a non-empty list of non-empty strings'),
    ({"url": HOOK, "events": ["call.rang"]}, 'bad value for "events": unknown event type'),
    ({"url": HOOK, "events": ["call.*"], "users": "alice"}, 'bad value for "users"'),
    ({"url": HOOK, "events": ["call.*"], "users": [7]}, 'bad value for "users"'),
    ({"url": HOOK, "events": ["call.*"], "enabled": False}, 'unknown field "enabled"'),
    ({"url": HOOK, "events": ["call.*"], "secret": "mine"}, 'unknown field "secret"'),
    ({"url": 5, "events": ["call.*"]}, 'bad value for "url": expected an http:// or https:// URL'),
    ({"url": "ftp://example.com/", "events": ["call.*"]}, 'bad value for "url": expected an http:// or https://'),
    ({"url": "http://10.0.0.5/hook", "events": ["call.*"]}, 'bad value for "url": 10.0.0.5 is a private address'),
    ({"url": "http://169.254.169.254/", "events": ["call.*"]}, 'bad value for "url": 169.254.169.254 is a link-local'),
    ({"url": "http://[::1]/", "events": ["call.*"]}, 'bad value for "url": ::1 is a loopback address'),
])
async def test_bad_bodies_are_400_naming_the_field_and_nothing_is_created(hooks: AdminHarness, body: dict,
                                                                            message: str) -> None:
    r = await hooks.client.post("/webhooks", json=body)
    assert r.status_code == 400 and r.json()["error"].startswith(message), r.text
    assert (await hooks.client.get("/webhooks")).json() == {"webhooks": []}


async def test_malformed_json_is_400(hooks: AdminHarness) -> None:
    r = await hooks.client.post("/webhooks", content="{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON body")


async def test_patch_changes_fields_re_checks_the_url_and_re_enables(hooks: AdminHarness) -> None:
    made = await create(hooks)
    url = f"/webhooks/{made['id']}"
    r = await hooks.client.patch(url, json={"events": ["call.ended", "voicemail.new"], "enabled": False})
    assert r.status_code == 200 and r.json()["events"] == ["call.ended", "voicemail.new"]
    assert r.json()["enabled"] is False and r.json()["disabledReason"] == "disabled by an operator"
    r = await hooks.client.patch(url, json={"url": "http://192.168.0.7/"})
    assert r.status_code == 400 and "private address" in r.json()["error"]
    r = await hooks.client.patch(url, json={"enabled": True, "users": None})
    assert r.status_code == 200 and r.json()["enabled"] is True and r.json()["disabledReason"] is None
    assert r.json()["url"] == HOOK and "secret" not in r.json()
    for body, message in (({}, "nothing to change"), ({"enabled": "yes"}, 'bad value for "enabled"'),
                          ({"id": "x"}, 'unknown field "id"')):
        r = await hooks.client.patch(url, json=body)
        assert r.status_code == 400 and message in r.json()["error"], r.text


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/webhooks/wh_0000000000000000"), ("PATCH", "/webhooks/wh_0000000000000000"),
    ("DELETE", "/webhooks/wh_0000000000000000"), ("GET", "/webhooks/not-an-id"),
    ("GET", "/webhooks/wh_0000000000000000/deliveries"),
    ("POST", "/webhooks/wh_0000000000000000/deliveries/1/redeliver"),
])
async def test_unknown_webhooks_are_404(hooks: AdminHarness, method: str, path: str) -> None:
    r = await hooks.client.request(method, path, json={"enabled": True} if method == "PATCH" else None)
    assert (r.status_code, r.json()) == (404, {"error": "no such webhook"}) or r.json() == {"error": "no such delivery"}


async def test_delete_removes_the_webhook(hooks: AdminHarness) -> None:
    made = await create(hooks)
    r = await hooks.client.delete(f"/webhooks/{made['id']}")
    assert r.status_code == 200 and r.json() == {"deleted": made["id"]}
    assert (await hooks.client.get(f"/webhooks/{made['id']}")).status_code == 404


async def test_the_number_of_webhooks_is_limited(hooks: AdminHarness) -> None:
    for _ in range(3):
        await create(hooks)
    r = await hooks.client.post("/webhooks", json={"url": HOOK, "events": ["call.*"]})
    assert r.status_code == 409 and "maxWebhooks" in r.json()["error"]


async def test_deliveries_are_listed_newest_first_by_state_and_page_and_redelivered(hooks: AdminHarness) -> None:
    made = await create(hooks)
    store = hooks.ctx.store
    await store.enqueue_deliveries([
        NewDelivery(webhook_id=made["id"], login="dmitrys", event_id=i, event_type="call.ringing",
                    ordering_key=f"call:c{i}", payload=b"{}", event_time=1_700_000_000.0) for i in range(1, 6)])
    claimed = await store.claim_deliveries("test", 1, 30.0)
    await store.finish_delivery(claimed[0].id, "test", "failed", status=404, error="HTTP 404")
    base = f"/webhooks/{made['id']}/deliveries"
    page = (await hooks.client.get(base, params={"limit": 2})).json()
    assert [d["event"]["id"] for d in page["deliveries"]] == [5, 4] and page["next"] == page["deliveries"][1]["id"]
    rest = (await hooks.client.get(base, params={"before": page["next"]})).json()
    assert [d["event"]["id"] for d in rest["deliveries"]] == [3, 2, 1] and rest["next"] is None
    failed = (await hooks.client.get(base, params={"state": "failed"})).json()["deliveries"]
    assert [(d["event"]["id"], d["state"], d["lastStatus"], d["attempts"]) for d in failed] == [(1, "failed", 404, 1)]
    assert failed[0]["event"]["type"] == "call.ringing" and failed[0]["messageId"].startswith("msg_")
    r = await hooks.client.post(f"{base}/{failed[0]['id']}/redeliver")
    assert r.status_code == 202 and r.json()["state"] == "pending" and r.json()["attempts"] == 0
    for params, message in (({"state": "lost"}, 'bad value for "state"'), ({"limit": "0"}, 'bad value for "limit"'),
                            ({"before": "x"}, 'bad value for "before"')):
        r = await hooks.client.get(base, params=params)
        assert r.status_code == 400 and r.json()["error"].startswith(message)
    assert (await hooks.client.post(f"{base}/999999/redeliver")).status_code == 404


async def test_without_webhooks_enabled_the_routes_answer_503(admin: AdminHarness) -> None:
    for method, path in (("GET", "/webhooks"), ("POST", "/webhooks"), ("GET", "/webhooks/wh_0000000000000000")):
        r = await admin.client.request(method, path)
        assert r.status_code == 503 and "[webhooks] enabled = false" in r.json()["error"]

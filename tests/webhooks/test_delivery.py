"""Delivery through the real worker to a real receiver on loopback: signed, in order per call,
once each; retried with backoff while the receiver is down or busy (Retry-After honoured),
parked after ``retryFor`` and redeliverable; an endpoint disabled after ``disableAfter``
parked deliveries in a row; the SSRF guard re-checked when sending."""

from __future__ import annotations

import asyncio

import pytest

from tests.webhooks.conftest import Rig, event


async def wait_until(predicate, what: str, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


async def test_a_calls_events_arrive_signed_in_order_once_each(rig: Rig) -> None:
    svc = await rig.service()
    hook, secret = await rig.subscribe(svc)
    for kind in ("call.ringing", "call.answered", "call.ended"):
        svc.writer(event(kind))
    received = await rig.receiver.wait_for(3)
    await asyncio.sleep(0.3)  # a duplicate would have arrived by now
    assert rig.receiver.types() == ["call.ringing", "call.answered", "call.ended"]
    bodies = [r.verified(secret) for r in received]
    assert [b["data"]["callUUID"] for b in bodies] == ["c-1"] * 3
    assert len({r.headers["webhook-id"] for r in received}) == 3
    assert received[0].headers["Content-Type"] == "application/json"
    assert rig.metric("mxproxy_webhook_deliveries_total", result="delivered") == 3
    assert rig.metric("mxproxy_webhook_delivery_seconds_count") == 3
    stored = await rig.store.get_webhook(hook.id)
    assert stored.total_delivered == 3


async def test_only_matching_types_and_users_are_delivered(rig: Rig) -> None:
    svc = await rig.service()
    await rig.subscribe(svc, events=["call.ended", "voicemail.*"], users=["bob"])
    svc.writer(event("call.ringing", "bob"))
    svc.writer(event("call.ended", "alice"))
    svc.writer(event("voicemail.new", "bob", call=None, mailId="m1"))
    svc.writer(event("call.ended", "bob"))
    await rig.receiver.wait_for(2)
    await asyncio.sleep(0.3)
    assert sorted(rig.receiver.types()) == ["call.ended", "voicemail.new"]


async def test_a_receiver_that_is_down_gets_everything_in_order_once_it_is_back(rig: Rig) -> None:
    svc = await rig.service()
    hook, _ = await rig.subscribe(svc)
    await rig.receiver.stop()
    for kind in ("call.ringing", "call.answered", "call.ended"):
        svc.writer(event(kind))

    async def retried() -> bool:
        rows = await rig.store.list_deliveries(hook.id)
        return any(r.attempts >= 2 for r in rows)

    await wait_until(retried, "a delivery retried while the receiver is down")
    rows = await rig.store.list_deliveries(hook.id)
    assert all(r.state in ("pending", "delivering") for r in rows)
    assert "connection failed" in (rows[-1].last_error or "")
    await rig.receiver.start()  # same port
    await rig.receiver.wait_for(3)
    assert rig.receiver.types() == ["call.ringing", "call.answered", "call.ended"]
    assert rig.metric("mxproxy_webhook_deliveries_total", result="retry") >= 1


async def test_a_429_retry_after_is_honoured(rig: Rig) -> None:
    svc = await rig.service()
    await rig.subscribe(svc)
    rig.receiver.answers = [(429, {"Retry-After": "2"})]
    svc.writer(event("call.ringing"))
    first, second = await rig.receiver.wait_for(2)
    assert second.at - first.at >= 1.9  # backoff alone would have retried within 0.2 s
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


async def test_a_receiver_that_does_not_answer_in_time_gets_the_delivery_again(rig: Rig) -> None:
    svc = await rig.service(timeout=0.5)
    hook, _ = await rig.subscribe(svc)
    rig.receiver.delays = [3.0]  # the first request is answered long after the timeout
    svc.writer(event("call.ringing"))
    first, second = await rig.receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]

    async def delivered() -> bool:
        rows = await rig.store.list_deliveries(hook.id)
        return rows[0].state == "delivered" and rows[0].attempts == 2

    await wait_until(delivered, "delivered on the second attempt")
    assert rig.metric("mxproxy_webhook_deliveries_total", result="retry") == 1


async def test_5xx_is_retried_and_a_4xx_parks_at_once(rig: Rig) -> None:
    svc = await rig.service()
    hook, _ = await rig.subscribe(svc)
    rig.receiver.answers = [(503, {}), (500, {}), (404, {})]
    svc.writer(event("call.ringing"))
    await rig.receiver.wait_for(3)

    async def parked() -> bool:
        return bool(await rig.store.list_deliveries(hook.id, state="failed"))

    await wait_until(parked, "the delivery parked after the 404")
    [row] = await rig.store.list_deliveries(hook.id)
    assert (row.state, row.attempts, row.last_status, row.last_error) == ("failed", 3, 404, "HTTP 404")
    await asyncio.sleep(0.4)
    assert len(rig.receiver.received) == 3  # a permanent failure is not retried


async def test_a_call_waits_behind_its_retrying_event_while_another_call_goes_ahead(rig: Rig) -> None:
    svc = await rig.service(retry_min=0.5, retry_max=0.5)
    await rig.subscribe(svc)
    rig.receiver.answers = [(503, {})]
    svc.writer(event("call.ringing", call="a"))
    await rig.receiver.wait_for(1)
    svc.writer(event("call.ended", call="a"))
    svc.writer(event("call.ringing", call="b"))
    await rig.receiver.wait_for(4)
    order = [(r.event["data"]["callUUID"], r.event["type"]) for r in rig.receiver.received]
    assert order == [("a", "call.ringing"), ("b", "call.ringing"), ("a", "call.ringing"), ("a", "call.ended")]


async def test_after_retry_for_a_delivery_is_parked_and_redeliver_sends_it_again(rig: Rig) -> None:
    svc = await rig.service(retry_for=0.6)
    hook, secret = await rig.subscribe(svc)
    rig.receiver.default = (502, {})
    svc.writer(event("call.ringing"))

    async def parked() -> bool:
        return bool(await rig.store.list_deliveries(hook.id, state="failed"))

    await wait_until(parked, "parked after retryFor")
    [row] = await rig.store.list_deliveries(hook.id, state="failed")
    assert row.attempts >= 2 and "parked" in row.last_error
    rig.receiver.default = (200, {})
    tries = len(rig.receiver.received)
    assert (await svc.redeliver(hook.id, row.id)).state == "pending"
    await rig.receiver.wait_for(tries + 1)
    rig.receiver.received[-1].verified(secret)

    async def delivered() -> bool:
        return (await rig.store.get_delivery(hook.id, row.id)).state == "delivered"

    await wait_until(delivered, "delivered after redeliver")


async def test_an_endpoint_is_disabled_after_the_threshold_with_a_metric_and_one_log_line(rig: Rig, caplog) -> None:  # type: ignore[no-untyped-def]
    svc = await rig.service(disable_after=2, concurrency=1)  # one request at a time: a, b, then c
    hook, _ = await rig.subscribe(svc)
    rig.receiver.default = (410, {})
    for call in ("a", "b", "c"):
        svc.writer(event("call.ringing", call=call))

    async def disabled() -> bool:
        return not (await rig.store.get_webhook(hook.id)).enabled

    await wait_until(disabled, "the endpoint disabled")
    await asyncio.sleep(0.5)
    assert len(rig.receiver.received) == 2  # the third waits for the endpoint to be enabled again
    assert rig.metric("mxproxy_webhook_endpoints_disabled_total") == 1
    assert rig.metric("mxproxy_webhook_disabled_endpoints") == 1
    lines = [r for r in caplog.records if "disabled after" in r.getMessage()]
    assert len(lines) == 1 and hook.id in lines[0].getMessage()
    svc.writer(event("call.ringing", call="d"))  # a disabled endpoint gets no new rows
    rig.receiver.default = (200, {})
    await svc.update(hook.id, enabled=True)
    await rig.receiver.wait_for(3)
    await asyncio.sleep(0.3)
    assert [r.event["data"]["callUUID"] for r in rig.receiver.received] == ["a", "b", "c"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_the_ssrf_guard_is_checked_again_when_sending(rig: Rig, host: str) -> None:
    """The URL was accepted where loopback was allowed; an instance without that allowance
    refuses to connect (a literal before the request, a name in the client's resolver) and
    parks the delivery."""
    allowing = await rig.service()
    hook, _ = await rig.subscribe(allowing, url=f"http://{host}:{rig.receiver.port}/hook")
    await allowing.aclose()
    rig.services.remove(allowing)
    strict = await rig.service(allow_networks=())
    strict.writer(event("call.ringing"))

    async def parked() -> bool:
        return bool(await rig.store.list_deliveries(hook.id, state="failed"))

    await wait_until(parked, "parked by the guard")
    [row] = await rig.store.list_deliveries(hook.id)
    assert row.last_error.startswith("refused: ") and "is a loopback address" in row.last_error
    assert rig.receiver.received == []


async def test_a_full_queue_drops_and_counts_instead_of_blocking(rig: Rig) -> None:
    svc = await rig.service(queue_size=2)
    await rig.subscribe(svc)
    for call in "abcdef":
        svc.writer(event("call.ringing", call=call))  # synchronous: the writer has not run yet
    assert svc.writer.dropped == 4
    assert rig.metric("mxproxy_webhook_dropped_total", reason="queue_full") == 4
    await rig.receiver.wait_for(2)


async def test_events_wait_in_memory_while_the_store_is_unreachable_and_are_stored_after(rig: Rig) -> None:
    svc = await rig.service()
    hook, _ = await rig.subscribe(svc)
    await rig.store.close()  # every statement now fails with StoreError
    for kind in ("call.ringing", "call.ended"):
        svc.writer(event(kind))
    await asyncio.sleep(0.5)
    assert svc.writer.queued == 2 and rig.receiver.received == []
    await rig.store.open()
    await rig.receiver.wait_for(2)
    assert rig.receiver.types() == ["call.ringing", "call.ended"]
    assert len(await rig.store.list_deliveries(hook.id)) == 2


def test_the_transition_key_is_the_events_key_else_the_call_for_a_once_per_call_type() -> None:
    from types import SimpleNamespace

    from mxproxy.webhooks.outbox import ordering

    def ev(kind: str, key: str = "", **data: str) -> SimpleNamespace:
        return SimpleNamespace(type=kind, user="alice", data=data, key=key)

    assert ordering(ev("call.held", "call.held:c-9:2", callUUID="c-9")) == ("call:c-9", "call.held:c-9:2")
    assert ordering(ev("call.ringing", callUUID="c-9")) == ("call:c-9", "c-9")  # no key: the call
    assert ordering(ev("call.held", callUUID="c-9")) == ("call:c-9", None)  # may repeat: no key
    assert ordering(ev("voicemail.new", "voicemail.new:alice:VoiceMail:m1", mailId="m1")) == (
        "user:alice", "voicemail.new:alice:VoiceMail:m1")
    assert ordering(ev("presence.changed")) == ("user:alice", None)

"""MX event → push, end to end: the simulator (driven through its control API) → the Zultys
connector → SessionManager → PushDispatcher → real ApnsSender/FcmSender → local APNs / FCM."""

from __future__ import annotations

import time

from mxproxy.connectors.base import ConnectionCleared, Delivered, MailIncomingReady
from mxproxy.eventjson import event_json
from mxproxy.push.apns import encode_payload
from mxproxy.push.fcm import data_payload
from tests.push.conftest import BUNDLE
from tests.push.dispatch_harness import (  # noqa: F401 - fixtures
    EXT,
    USER,
    apn,
    fcm_token,
    make_rig,
)
from tests.waiting import eventually


async def ring(rig, to: str = EXT) -> int:
    answer = await rig.control_post("/calls", {"to": to, "from": "3044", "name": "Peter Hyde"})
    return int(answer["callId"])


async def test_incoming_call_rings_each_device_once_with_the_original_event_json(make_rig):
    rig = await make_rig()
    await rig.sign_in()
    await rig.store.put_token(apn("ok-ios-0001"))
    await rig.store.put_token(fcm_token("ok-android-0001"))
    call_id = await ring(rig)
    await eventually(lambda: rig.seen(Delivered), "Delivered reached the session")
    await rig.dispatcher.drain()

    [delivered] = rig.seen(Delivered)
    assert delivered.call_id == call_id
    [req] = rig.apns.requests
    assert req.token == "ok-ios-0001"
    assert req.headers["apns-push-type"] == "voip"
    assert req.headers["apns-topic"] == f"{BUNDLE}.voip"
    assert req.headers["apns-priority"] == "10"
    assert int(time.time()) + 20 <= int(req.headers["apns-expiration"]) <= int(time.time()) + 31
    original = event_json(delivered)
    assert req.body == encode_payload(original)  # compat preset: the event JSON, byte for byte
    assert original["type"] == "Delivered" and original["callId"] == call_id and original["alertingDevice"] == EXT

    [send] = rig.fcm.sends
    assert send.message["token"] == "ok-android-0001"
    assert send.message["android"]["priority"] == "high"
    assert send.message["data"] == data_payload(original)

    for token in (apn("ok-ios-0001"), fcm_token("ok-android-0001")):
        stored = await rig.store.get_token(token.kind, token.topic, token.token)
        assert stored is not None and stored.last_result == "ok"
    assert rig.metric("mxproxy_pushes_total", provider="apns", kind="voip", result="ok") == 1
    assert rig.metric("mxproxy_pushes_total", provider="fcm", kind="voip", result="ok") == 1
    assert rig.metric("mxproxy_push_seconds_count", provider="apns", connection="cold") == 1


async def test_voicemail_becomes_a_mail_incoming_push(make_rig):
    rig = await make_rig()
    await rig.sign_in()
    await rig.store.put_token(apn("ok-ios-0002"))
    await rig.store.put_token(fcm_token("ok-android-0002"))
    answer = await rig.control_post("/voicemails", {"ext": EXT, "from": "3044", "name": "Peter Hyde", "duration": 7})
    await eventually(lambda: rig.seen(MailIncomingReady), "MailIncomingReady reached the session")
    await rig.dispatcher.drain()
    [mail] = rig.seen(MailIncomingReady)
    [req] = rig.apns.requests
    payload = req.json()
    assert payload["type"] == "MailIncoming" and payload["mailId"] == str(answer["mailId"])
    assert payload["from"] == "3044" and req.body == encode_payload(event_json(mail))
    [send] = rig.fcm.sends
    assert send.message["data"]["type"] == "MailIncoming" and send.message["data"]["mx_from"] == "3044"


async def test_modern_preset_sends_the_voicemail_as_an_alert(make_rig):
    rig = await make_rig(preset="modern")
    await rig.sign_in()
    await rig.store.put_token(apn("ok-ios-0003"))
    await rig.control_post("/voicemails", {"ext": EXT, "from": "3044", "name": "Peter Hyde", "duration": 7})
    await eventually(lambda: rig.seen(MailIncomingReady), "MailIncomingReady reached the session")
    await rig.dispatcher.drain()
    [req] = rig.apns.requests
    assert req.headers["apns-push-type"] == "alert" and req.headers["apns-topic"] == BUNDLE
    assert req.json()["aps"]["alert"]["title"] == "New voicemail"


async def test_unregistered_token_is_deleted_and_a_server_error_is_retried_and_kept(make_rig):
    rig = await make_rig()
    await rig.sign_in()
    for token in (apn("gone-ios-0001"), apn("flaky500-ios-0001"), apn("fail-ios-0001"),
                  fcm_token("unregistered-android-1"), fcm_token("flaky429-android-1")):
        await rig.store.put_token(token)
    await ring(rig)
    await eventually(lambda: rig.seen(Delivered), "Delivered reached the session")
    await rig.dispatcher.drain()

    left = {t.token: t.last_result for t in await rig.store.tokens_for_user(USER)}
    assert left == {
        "flaky500-ios-0001": "ok",  # 500 then 200: retried, kept
        "fail-ios-0001": "unavailable: InternalServerError",  # 500 every time: kept
        "flaky429-android-1": "ok",  # 429 + Retry-After: 0, then 200
    }
    tries = [r.token for r in rig.apns.requests]
    assert tries.count("flaky500-ios-0001") == 2 and tries.count("fail-ios-0001") == 3 and tries.count("gone-ios-0001") == 1
    assert [s.message["token"] for s in rig.fcm.sends].count("flaky429-android-1") == 2
    assert rig.metric("mxproxy_push_tokens_pruned_total", provider="apns") == 1
    assert rig.metric("mxproxy_push_tokens_pruned_total", provider="fcm") == 1
    assert rig.dispatcher.status()["pruneGuard"] == [] and rig.dispatcher.ready_problems() == []


async def test_a_hanging_provider_does_not_hold_up_the_mx_session(make_rig):
    rig = await make_rig(callDeadline="3s")
    await rig.sign_in()
    await rig.store.put_token(apn("hang-ios-0001"))
    call_id = await ring(rig)
    await eventually(lambda: rig.dispatcher.status()["inFlight"] == 1, "the ring's push is outstanding")
    # the MX session keeps going while APNs says nothing: the hang-up arrives, the API answers
    await rig.control_post(f"/calls/{call_id}/hangup", {"by": "3044"})
    await eventually(lambda: rig.seen(ConnectionCleared), "ConnectionCleared reached the session")
    user = rig.sessions.get(USER)
    assert (await user.mx.directory())  # an MX round trip while the push still hangs
    status = rig.dispatcher.status()
    assert status["inFlight"] >= 1 and "apns" not in status["sent"]  # the first push has not finished yet
    await rig.dispatcher.drain()
    assert rig.dispatcher.status()["sent"]["apns"] == {"timeout": 2}
    stored = await rig.store.get_token("apn", BUNDLE, "hang-ios-0001")
    assert stored is not None and stored.last_result == "timeout: Timeout"


async def test_a_hanging_fcm_does_not_hold_up_the_apns_pushes_of_later_calls(make_rig):
    rig = await make_rig(callDeadline="3s", concurrency=1)
    await rig.sign_in()
    await rig.store.put_token(fcm_token("hang-android-0001"))
    await rig.store.put_token(apn("ok-ios-0001"))
    first = await ring(rig)
    await eventually(lambda: len(rig.apns.requests) == 1, "the first ring reached APNs")
    await rig.control_post(f"/calls/{first}/hangup", {"by": "3044"})
    # FCM's only send slot is held by the hanging ring; APNs has slots of its own
    await eventually(lambda: len(rig.apns.requests) == 2, "the hang-up reached APNs while FCM still hangs")
    assert "fcm" not in rig.dispatcher.status()["sent"]  # no FCM answer yet
    assert rig.dispatcher.status()["pending"]["fcm"] == 2
    await rig.dispatcher.drain()
    assert rig.dispatcher.status()["sent"]["fcm"] == {"timeout": 2}


async def test_a_stopped_provider_costs_a_transport_result_and_keeps_the_token(make_rig):
    rig = await make_rig(maxAttempts=2)
    await rig.sign_in()
    await rig.store.put_token(apn("ok-ios-0004"))
    await rig.apns.stop()
    await ring(rig)
    await eventually(lambda: rig.seen(Delivered), "Delivered reached the session")
    await rig.dispatcher.drain()
    assert rig.dispatcher.status()["sent"]["apns"] == {"transport": 1}
    assert await rig.store.get_token("apn", BUNDLE, "ok-ios-0004") is not None


async def test_no_duplicate_push_when_the_session_reconnects_mid_ring(make_rig):
    rig = await make_rig()
    await rig.sign_in()
    await rig.store.put_token(apn("ok-ios-0005"))
    call_id = await ring(rig)
    await eventually(lambda: rig.seen(Delivered), "Delivered reached the session")
    await rig.dispatcher.drain()
    reconnects = rig.sessions.stats.reconnects
    await rig.control_post(f"/users/{USER}/drop")
    await eventually(lambda: rig.sessions.stats.reconnects > reconnects and rig.sessions.state(USER) == "live",
                     "the session reconnected")
    assert [c["callId"] for c in rig.sim.calls()] == [call_id]  # still ringing at the simulator
    before = len(rig.events)
    # A connector or MX that reported the ringing call again on the new session would hand the
    # same Delivered to the listener a second time: it is recognised and not pushed.
    [delivered] = rig.seen(Delivered)
    rig.dispatcher.on_event(USER, delivered)
    await rig.dispatcher.drain()
    await rig.control_post(f"/calls/{call_id}/hangup", {"by": "3044"})
    await eventually(lambda: rig.seen(ConnectionCleared), "ConnectionCleared after the reconnect")
    # The simulator itself does not report the ringing call again when the new monitor starts:
    # the only event the new session sees is the hang-up.
    calls_after = [type(e) for _, e in rig.events[before:] if isinstance(e, (Delivered, ConnectionCleared))]
    assert calls_after == [ConnectionCleared]
    await rig.dispatcher.drain()
    assert [r.json()["type"] for r in rig.apns.requests] == ["Delivered", "ConnectionCleared"]
    assert rig.dispatcher.status()["sent"]["duplicates"] == 1


async def test_a_burst_of_bad_device_tokens_trips_the_prune_guard_and_tokens_survive(make_rig):
    rig = await make_rig()
    logins = [("testone", "pass3080", "3080"), ("testtwo", "pass3081", "3081"), ("testthree", "pass3082", "3082"),
              ("dstest1", "pass3091", "3091"), ("dstest2", "pass3092", "3092"), ("johns", "pass3098", "3098")]
    for login, password, _ in logins:
        await rig.sign_in(login, password)
        await rig.store.put_token(apn(f"bad-{login}-0001", login))
    for _, _, ext in logins:
        await ring(rig, ext)
    await eventually(lambda: len(rig.seen(Delivered)) == len(logins), "every ring reached its session")
    await rig.dispatcher.drain()

    assert len(rig.apns.requests) == len(logins)
    survivors = [t.login for t in await rig.store.list_tokens()]
    assert len(survivors) == len(logins) - 4  # the 5th failing user trips it; from then on nothing is deleted
    status = rig.dispatcher.status()
    assert [(g["provider"], g["topic"]) for g in status["pruneGuard"]] == [("apns", BUNDLE)]
    assert status["sent"]["pruned"] == 4 and status["sent"]["pruneHeld"] == 2
    [problem] = rig.dispatcher.ready_problems()
    assert BUNDLE in problem
    assert rig.metric("mxproxy_push_prune_guard_active", provider="apns", topic=BUNDLE) == 1
    for token in await rig.store.list_tokens():
        assert token.last_result == "BadDeviceToken"

"""PushDispatcher: admin pushes, pruning and the prune guard, duplicates, the bounded queue,
sample payloads, status — with the real senders against the local APNs and FCM."""

from __future__ import annotations

import datetime as dt

import pytest

from mxproxy.connectors.base import Delivered, Held, MailIncomingReady, Retrieved
from mxproxy.connectors.registry import create_connector
from mxproxy.eventjson import PUSHED_TYPES
from mxproxy.metrics import Metrics
from mxproxy.push import results
from mxproxy.push.dispatcher import (
    DuplicateFilter,
    PruneGuard,
    create_dispatcher,
    sample_event,
)
from mxproxy.push.results import PushResult
from mxproxy.sessions import SessionManager
from mxproxy.store.base import DeviceToken
from mxproxy.localpush.pki import make_push_p12
from tests.push.conftest import APP, BUNDLE
from tests.push.dispatch_harness import (  # noqa: F401 - fixtures
    EXT,
    USER,
    apn,
    dispatcher_config,
    fcm_token,
    make_rig,
)

CALL = {"type": "Delivered", "callId": 7, "deviceId": "201"}


# -- admin pushes, results and pruning ------------------------------------------------------------


async def test_push_to_user_reaches_every_device_and_records_each_answer(make_rig):
    rig = await make_rig(simulator=False)
    await rig.add_user("alice")
    for token in (apn("ok-ios-a1", "alice"), apn("ok-ios-a2", "alice", sandbox=True), fcm_token("ok-android-a1", "alice"),
                  apn("badtopic-ios-a1", "alice")):
        await rig.store.put_token(token)
    found = await rig.dispatcher.push_to_user("alice", CALL, "voip")
    assert sorted((r.token.token, r.status) for r in found) == [
        ("badtopic-ios-a1", "rejected"), ("ok-android-a1", "ok"), ("ok-ios-a1", "ok"), ("ok-ios-a2", "ok")]
    assert {r.token for r in rig.apns.requests} == {"ok-ios-a1", "ok-ios-a2", "badtopic-ios-a1"}
    stored = {t.token: t.last_result for t in await rig.store.tokens_for_user("alice")}
    assert stored == {"ok-ios-a1": "ok", "ok-ios-a2": "ok", "ok-android-a1": "ok", "badtopic-ios-a1": "BadTopic"}
    assert rig.metric("mxproxy_pushes_total", provider="apns", kind="voip", result="rejected") == 1


async def test_a_repeated_result_is_written_once_and_a_changed_one_at_once(make_rig):
    rig = await make_rig(simulator=False, maxAttempts=1)
    await rig.add_user("alice")
    token = apn("ok-ios-r1", "alice")
    await rig.store.put_token(token)
    await rig.dispatcher.push_to_token(token, CALL, "voip")
    first = await rig.store.get_token("apn", BUNDLE, "ok-ios-r1")
    await rig.dispatcher.push_to_token(token, CALL, "voip")
    again = await rig.store.get_token("apn", BUNDLE, "ok-ios-r1")
    assert first is not None and again is not None
    assert (again.last_result, again.last_result_at) == ("ok", first.last_result_at)  # not rewritten
    await rig.apns.stop()
    await rig.dispatcher.push_to_token(token, CALL, "voip")
    changed = await rig.store.get_token("apn", BUNDLE, "ok-ios-r1")
    assert changed is not None and changed.last_result is not None and changed.last_result.startswith("transport")


async def test_push_to_token_prunes_on_a_final_verdict_only(make_rig):
    rig = await make_rig(simulator=False)
    await rig.add_user("alice")
    for token in (apn("missing-ios-1", "alice"), fcm_token("invalid-android-1", "alice"), fcm_token("badpayload-1", "alice")):
        await rig.store.put_token(token)
    dead = await rig.dispatcher.push_to_token(apn("missing-ios-1", "alice"), CALL, "alert")
    invalid = await rig.dispatcher.push_to_token(fcm_token("invalid-android-1", "alice"), CALL, "voip")
    payload_refused = await rig.dispatcher.push_to_token(fcm_token("badpayload-1", "alice"), CALL, "voip")
    assert dead.final and invalid.final and not payload_refused.final
    assert [t.token for t in await rig.store.tokens_for_user("alice")] == ["badpayload-1"]
    assert rig.apns.requests[0].headers["apns-push-type"] == "alert"


async def test_tokens_without_a_credential_are_reported_not_sent(make_rig):
    rig = await make_rig(simulator=False)
    await rig.add_user("alice")
    other = DeviceToken(kind="fcm", topic="com.other.app", token="ok-android-x", login="alice")
    await rig.store.put_token(other)
    [result] = await rig.dispatcher.push_to_user("alice", CALL, "voip")
    assert result.status == results.NO_CREDENTIALS and rig.fcm.sends == []
    assert await rig.store.get_token("fcm", "com.other.app", "ok-android-x") is not None


async def test_an_unknown_push_kind_is_a_value_error(make_rig):
    rig = await make_rig(simulator=False)
    with pytest.raises(ValueError):
        await rig.dispatcher.push_to_user("alice", CALL, "silent")
    with pytest.raises(ValueError):
        await rig.dispatcher.push_to_token(apn("ok-ios-1"), CALL, "background")


# -- the queue ----------------------------------------------------------------------------------


async def test_a_full_queue_drops_pushes_instead_of_blocking_the_session(make_rig):
    rig = await make_rig(simulator=False, queueSize=2, concurrency=1)
    await rig.add_user("alice")
    await rig.store.put_token(apn("ok-ios-q1", "alice"))
    for call_id in range(1, 6):  # the listener returns at once every time; nothing ran in between
        rig.dispatcher.on_event("alice", Delivered(call_id=call_id, called_device="", alerting_device=""))
    assert rig.dispatcher.status()["queued"] == 2
    assert rig.metric("mxproxy_push_dropped_total", reason="queue_full") == 3
    await rig.dispatcher.drain()
    assert [r.json()["callId"] for r in rig.apns.requests] == [1, 2]
    assert rig.dispatcher.status()["sent"]["dropped"] == 3 and rig.dispatcher.ready_problems() == []


# -- duplicates ---------------------------------------------------------------------------------


def test_the_same_event_again_within_the_window_is_a_duplicate_but_later_it_is_not():
    seen = DuplicateFilter(window=30.0)
    ring = Delivered(call_id=3, called_device="201", alerting_device="201", received_at=100.0)
    again = Delivered(call_id=3, called_device="201", alerting_device="201", received_at=105.0)  # other timestamp
    assert not seen.seen("alice", ring, 0.0)
    assert seen.seen("alice", again, 5.0)
    assert not seen.seen("bob", again, 5.0)  # another user's copy of the call
    assert not seen.seen("alice", again, 31.0)  # a ring still reported half a minute later is pushed


def test_hold_retrieve_hold_is_three_events_not_a_duplicate():
    seen = DuplicateFilter()
    held, retrieved = Held(call_id=4, holding_device="201"), Retrieved(call_id=4, retrieving_device="201")
    assert [seen.seen("alice", e, t) for t, e in enumerate([held, retrieved, held])] == [False, False, False]


def test_a_mail_reported_twice_is_pushed_once():
    seen = DuplicateFilter()
    mail = MailIncomingReady(mail_id="118", sender="3044")
    assert not seen.seen("alice", mail, 0.0)
    assert seen.seen("alice", MailIncomingReady(mail_id="118", sender="3044"), 1.0)
    assert not seen.seen("alice", MailIncomingReady(mail_id="119", sender="3044"), 1.0)


# -- the prune guard ------------------------------------------------------------------------------


def answer(login: str, token: str, reason: str = "", *, status: int = 400, provider: str = "apns") -> PushResult:
    if status == 200:
        return PushResult(provider, "voip", apn(token, login), results.OK, http_status=200)
    final = reason in ("BadDeviceToken", "Unregistered", "UNREGISTERED", "DeviceTokenNotForTopic")
    return PushResult(provider, "voip", apn(token, login), results.REJECTED, reason=reason, final=final,
                      http_status=status)


def test_one_user_with_many_stale_tokens_does_not_trip_the_guard():
    guard = PruneGuard()
    verdicts = [guard.observe(answer("alice", f"bad-{n}", "BadDeviceToken"), float(n)) for n in range(8)]
    assert all(allowed for allowed, _ in verdicts) and guard.active() == []


def test_uninstalls_never_trip_the_guard():
    guard = PruneGuard()
    verdicts = [guard.observe(answer(f"user{n}", f"gone-{n}", "Unregistered", status=410), float(n)) for n in range(10)]
    assert all(allowed for allowed, _ in verdicts) and guard.active() == []


def test_most_users_rejected_at_once_trips_the_guard_until_they_are_accepted_again():
    guard = PruneGuard()
    for n in range(5):
        guard.observe(answer(f"ok{n}", f"ok-{n}", status=200), 0.0)
    changes = [guard.observe(answer(f"user{n}", f"bad-{n}", "BadDeviceToken"), 1.0 + n) for n in range(5)]
    assert changes == [(True, None)] * 5  # 5 failing of 10 users: not more than half
    allowed, change = guard.observe(answer("user5", "bad-5", "DeviceTokenNotForTopic"), 7.0)
    assert (allowed, change) == (False, True)  # 6 failing of 11 users
    assert [(g["provider"], g["topic"]) for g in guard.active()] == [("apns", BUNDLE)]
    # transport trouble says nothing about tokens and changes nothing
    timeout = PushResult("apns", "voip", apn("x", "user9"), results.TIMEOUT)
    assert guard.observe(timeout, 8.0) == (False, None)
    # after the window, mostly successes again: deletion resumes
    changes = [guard.observe(answer(f"fine{n}", f"ok-f{n}", status=200), 400.0 + n) for n in range(5)]
    assert changes[-1] == (True, False) and guard.active() == []


def test_the_guard_is_per_provider_and_topic():
    guard = PruneGuard(min_users=2)
    guard.observe(answer("a", "bad-a", "BadDeviceToken"), 0.0)
    assert guard.observe(answer("b", "bad-b", "BadDeviceToken"), 1.0) == (False, True)
    assert guard.observe(answer("c", "bad-c", "UNREGISTERED", status=404, provider="fcm"), 2.0) == (True, None)


# -- sample payloads --------------------------------------------------------------------------------


async def test_test_payload_builds_each_type_as_the_policy_would_for_the_users_extension(make_rig):
    rig = await make_rig()
    await rig.sign_in()
    for name in PUSHED_TYPES:
        payload = rig.dispatcher.test_payload(name, USER)
        assert payload["type"] == name and "timestamp" in payload
    ring = rig.dispatcher.test_payload("Delivered", USER)
    assert (ring["calledDevice"], ring["alertingDevice"], ring["localConnectionInfo"]) == (EXT, EXT, "alerting")
    mail = rig.dispatcher.test_payload("mailincoming", USER)
    assert mail["to"] == EXT and mail["ownerId"] == 43884851147406145  # dmitrys' JID from the MX login
    with pytest.raises(ValueError):
        rig.dispatcher.test_payload("Ringing", USER)


async def test_test_payload_follows_the_modern_preset(make_rig):
    rig = await make_rig(simulator=False, preset="modern")
    cancel = rig.dispatcher.test_payload("ConnectionCleared", "alice")
    assert cancel["callUUID"] and cancel["sentAt"]
    mail = rig.dispatcher.test_payload("MailIncoming", "alice")
    assert mail["aps"]["alert"]["title"] == "New voicemail"
    assert rig.dispatcher.test_payload("HeldEvent", "alice")["type"] == "HeldEvent"  # not pushed: plain JSON


def test_sample_events_are_the_pushed_types():
    assert {type(sample_event(name, "201")).__name__ for name in PUSHED_TYPES} == {
        "Delivered", "Established", "Originated", "ConnectionCleared", "Held", "Retrieved", "MailIncomingReady",
        "RecordingState"}


# -- status, certificates -------------------------------------------------------------------------


async def test_status_reports_certificates_and_exports_their_expiry(make_rig, pki):
    rig = await make_rig(simulator=False)
    status = rig.dispatcher.status()
    assert status["queued"] == 0 and status["inFlight"] == 0 and status["pruneGuard"] == []
    certs = status["apnsCertificates"]
    assert [(c["topic"], c["sandbox"]) for c in certs] == [(BUNDLE, False), (BUNDLE, True)]
    assert all(c["file"] == str(pki["p12"]) and 360 <= c["daysLeft"] <= 365 for c in certs)
    not_after = dt.datetime.fromisoformat(certs[0]["notAfter"].replace("Z", "+00:00"))
    assert rig.metric("mxproxy_apns_certificate_expiry_timestamp_seconds", topic=BUNDLE, file=str(pki["p12"])) == \
        not_after.timestamp()
    assert rig.dispatcher.topics.apn_ok(BUNDLE, True) and rig.dispatcher.topics.fcm_ok(APP)
    assert not rig.dispatcher.topics.fcm_ok("com.other.app")
    assert rig.dispatcher.ready_problems() == []


async def test_a_certificate_close_to_expiry_is_warned_and_shows_its_days_left(tmp_path, pki, apns, fcm, store, caplog):
    soon_p12 = make_push_p12(pki["ca"], tmp_path / "soon.p12", "com.example.soon", development=False, days=10)
    config = dispatcher_config(tmp_path, {**pki, "p12": soon_p12}, apns, fcm)
    connector = create_connector(config.mx)
    with caplog.at_level("WARNING"):
        dispatcher = create_dispatcher(config, store, SessionManager(connector, store, config), metrics=Metrics())
    assert any("expires in" in r.getMessage() and "soon.p12" in r.getMessage() for r in caplog.records)
    [cert] = dispatcher.status()["apnsCertificates"]
    assert (cert["topic"], cert["sandbox"], cert["daysLeft"]) == ("com.example.soon", False, 9)
    await dispatcher.aclose()
    await connector.aclose()

"""FcmSender (pyfcm, FCM HTTP v1) against a local Google token endpoint and FCM send endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mxproxy.push import results
from mxproxy.push.fcm import FcmSender, data_payload, fcm_key, fcm_value
from mxproxy.store.base import DeviceToken
from tests.push.conftest import APP, PROJECT, push_config, send_once, soon
from tests.push.fcm_server import LocalFCM

MAIL = {
    "type": "MailIncoming", "from": "3044", "fromName": "Peter Hyde", "callerName": "Peter Hyde", "to": "3095",
    "ownerId": 43884851147406145, "ownerType": "user", "mailId": "117", "mediaType": "VoiceMail",
    "gcid": "63022-00-0000D-47A", "received": 1502565440, "duration": 7, "timestamp": 1700000000,
}


def make_sender(tmp_path: Path, fcm: LocalFCM, *, fcm_apps: dict[str, str] | None = None,
                push: dict[str, Any] | None = None) -> FcmSender:
    cfg = push_config(
        tmp_path,
        voip={"fcm": fcm_apps if fcm_apps is not None else {APP: "service-account.json"}},
        push={"retryBackoff": "10ms", "fcm": {"sendURL": fcm.send_url}, **(push or {})},
    )
    return FcmSender(cfg.voip, cfg.push, cfg.base_dir)


def token(value: str, app: str = APP) -> DeviceToken:
    return DeviceToken(kind="fcm", topic=app, token=value, login="alice")


async def test_voip_push_is_a_high_priority_data_message_with_string_values(tmp_path, fcm):
    sender = make_sender(tmp_path, fcm)
    try:
        first = await sender.send(token("ok-1"), MAIL, "voip", deadline=soon())
        second = await sender.send(token("ok-2"), MAIL, "voip", deadline=soon())
    finally:
        await sender.aclose()
    assert first.ok and second.ok and not first.final
    assert fcm.token_requests == 1  # the access token is cached and shared between sends
    req = fcm.sends[0]
    assert req.project == PROJECT
    assert req.headers["authorization"].startswith("Bearer ya29.test-")
    message = req.message
    assert message["token"] == "ok-1"
    assert "notification" not in message
    assert message["android"] == {"priority": "high", "ttl": "30s"}
    assert message["data"] == {
        "type": "MailIncoming", "mx_from": "3044", "fromName": "Peter Hyde", "callerName": "Peter Hyde",
        "to": "3095", "ownerId": "43884851147406145", "ownerType": "user", "mailId": "117",
        "mediaType": "VoiceMail", "gcid": "63022-00-0000D-47A", "received": "1502565440", "duration": "7",
        "timestamp": "1700000000",
    }
    assert req.body["validate_only"] is False


async def test_alert_push_carries_a_visible_notification(tmp_path, fcm):
    sender = make_sender(tmp_path, fcm)
    payload = {"aps": {"alert": {"title": "New voicemail", "body": "From Peter Hyde (3044)"}}, **MAIL}
    result = await send_once(sender, token("ok-1"), payload, "alert")
    assert result.ok
    message = fcm.sends[0].message
    assert message["notification"] == {"title": "New voicemail", "body": "From Peter Hyde (3044)"}
    assert message["android"]["priority"] == "normal"
    assert "aps" not in message["data"] and message["data"]["mx_from"] == "3044"


@pytest.mark.parametrize(
    ("value", "status", "reason", "final", "http_status"),
    [
        ("unregistered-1", results.REJECTED, "UNREGISTERED", True, 404),
        ("invalid-1", results.REJECTED, "INVALID_ARGUMENT", True, 400),
        ("badpayload-1", results.REJECTED, "INVALID_ARGUMENT", False, 400),
        ("quota-1", results.UNAVAILABLE, "QUOTA_EXCEEDED", False, 429),
        ("unavailable-1", results.UNAVAILABLE, "UNAVAILABLE", False, 503),
    ],
)
async def test_each_fcm_verdict_is_classified(tmp_path, fcm, value, status, reason, final, http_status):
    sender = make_sender(tmp_path, fcm, push={"maxAttempts": 2})
    result = await send_once(sender, token(value), MAIL, "voip")
    assert (result.status, result.reason, result.final, result.http_status) == (status, reason, final, http_status)
    assert result.attempts == len(fcm.sends) == (2 if status == results.UNAVAILABLE else 1)
    if value.startswith("quota"):
        assert result.retry_after == 0


@pytest.mark.parametrize("value", ["flaky503-1", "flaky429-1"])
async def test_unavailable_and_quota_are_retried_until_success(tmp_path, fcm, value):
    sender = make_sender(tmp_path, fcm)
    result = await send_once(sender, token(value), MAIL, "voip")
    assert result.ok and result.attempts == 2


async def test_a_silent_fcm_gives_a_timeout_result_within_the_deadline(tmp_path, fcm):
    sender = make_sender(tmp_path, fcm)
    try:
        result = await sender.send(token("hang-1"), MAIL, "voip", deadline=soon(0.5))
    finally:
        await sender.aclose()
    assert result.status == results.TIMEOUT and not result.final


async def test_unknown_app_has_no_credentials(tmp_path, fcm):
    sender = make_sender(tmp_path, fcm)
    result = await send_once(sender, token("ok-1", app="com.other"), MAIL, "voip")
    assert result.status == results.NO_CREDENTIALS and fcm.sends == []


async def test_a_legacy_server_key_keeps_the_app_but_sends_nothing(tmp_path, fcm, caplog):
    sender = make_sender(tmp_path, fcm, fcm_apps={APP: "service-account.json", "com.old": "AAAAlegacyServerKey:APA91b"})
    try:
        result = await send_once(sender, token("old-device-token-1", app="com.old"), MAIL, "voip")
    finally:
        await sender.aclose()
    assert sender.app_ids == {APP, "com.old"}  # its tokens are still accepted and kept
    assert sender.problems == []  # not a load failure: the upgrade goes on
    assert result.status == results.NO_CREDENTIALS and not result.final and "legacy server key" in result.reason
    assert [s.message["token"] for s in fcm.sends] == []
    warned = [r for r in caplog.records if "com.old" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelname == "WARNING"  # once, at start
    message = warned[0].getMessage()
    assert 'voip.fcm."com.old"' in message and "legacy" in message and "service-account" in message
    assert "AAAAlegacy" not in caplog.text  # the key itself is never logged


async def test_missing_service_account_file_is_reported(tmp_path, fcm):
    sender = make_sender(tmp_path, fcm, fcm_apps={APP: "absent/sa.json"})
    await sender.aclose()
    assert sender.app_ids == frozenset() and "does not exist" in sender.problems[0]


def test_reserved_keys_are_prefixed_with_mx():
    assert [fcm_key(k) for k in ("from", "message_type", "notification", "collapse_key", "google.x", "gcm_y",
                                 "fromName", "type")] == [
        "mx_from", "mx_message_type", "mx_notification", "mx_collapse_key", "mx_google.x", "mx_gcm_y",
        "fromName", "type"]


def test_data_values_are_strings_and_non_strings_are_json():
    assert fcm_value("x") == "x"
    assert fcm_value(21) == "21"
    assert fcm_value(True) == "true"
    assert fcm_value([{"name": "a", "type": "string"}]) == '[{"name":"a","type":"string"}]'
    assert data_payload({"aps": {"alert": "hi"}, "from": "1", "n": 2}) == {"mx_from": "1", "n": "2"}

"""The shared pruning rule: only a provider's final verdict about a token removes it."""

from __future__ import annotations

import pytest

from mxproxy.push import results
from mxproxy.push.results import PushResult, classify_apns, classify_fcm
from mxproxy.store.base import DeviceToken


@pytest.mark.parametrize(("status", "reason", "expected"), [
    (200, "", (results.OK, False)),
    (400, "BadDeviceToken", (results.REJECTED, True)),
    (400, "DeviceTokenNotForTopic", (results.REJECTED, True)),
    (400, "MissingDeviceToken", (results.REJECTED, True)),
    (410, "Unregistered", (results.REJECTED, True)),
    (410, "ExpiredToken", (results.REJECTED, True)),
    (400, "BadTopic", (results.REJECTED, False)),
    (403, "ExpiredProviderToken", (results.REJECTED, False)),
    (413, "PayloadTooLarge", (results.REJECTED, False)),
    (429, "TooManyRequests", (results.UNAVAILABLE, False)),
    (500, "InternalServerError", (results.UNAVAILABLE, False)),
    (503, "ServiceUnavailable", (results.UNAVAILABLE, False)),
])
def test_apns_classification(status, reason, expected):
    assert classify_apns(status, reason) == expected


@pytest.mark.parametrize(("status", "code", "token_field", "expected"), [
    (200, "", False, (results.OK, False)),
    (404, "UNREGISTERED", False, (results.REJECTED, True)),
    (400, "INVALID_ARGUMENT", True, (results.REJECTED, True)),
    (400, "INVALID_ARGUMENT", False, (results.REJECTED, False)),
    (403, "SENDER_ID_MISMATCH", False, (results.REJECTED, False)),
    (401, "UNAUTHENTICATED", False, (results.REJECTED, False)),
    (429, "QUOTA_EXCEEDED", False, (results.UNAVAILABLE, False)),
    (503, "UNAVAILABLE", False, (results.UNAVAILABLE, False)),
    (500, "INTERNAL", False, (results.UNAVAILABLE, False)),
])
def test_fcm_classification(status, code, token_field, expected):
    assert classify_fcm(status, code, token_field) == expected


def test_summary_is_short_and_names_the_reason():
    tok = DeviceToken(kind="apn", topic="t", token="x" * 64, login="alice")
    assert PushResult("apns", "voip", tok, results.OK).summary() == "ok"
    assert PushResult("apns", "voip", tok, results.REJECTED, "BadDeviceToken", final=True).summary() == "BadDeviceToken"
    assert PushResult("fcm", "voip", tok, results.TRANSPORT, "ConnectError").summary() == "transport: ConnectError"
    assert PushResult("fcm", "voip", tok, results.TIMEOUT).summary() == "timeout"
    assert PushResult("fcm", "voip", tok, results.TRANSPORT).retryable
    assert not PushResult("fcm", "voip", tok, results.TIMEOUT).retryable

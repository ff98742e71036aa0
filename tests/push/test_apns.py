"""ApnsSender against a local HTTP/2 APNs with the real aioapns client."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from mxproxy.push import results
from mxproxy.push.apns import ApnsSender, apns_id, apns_topic, encode_payload
from mxproxy.push.certificates import CredentialError, load_p12
from mxproxy.store.base import DeviceToken
from mxproxy.localpush.apns import LocalAPNs
from mxproxy.localpush.pki import make_p8, make_push_p12
from tests.push.conftest import BUNDLE, push_config, send_once, soon

PAYLOAD = {"type": "Delivered", "callId": 21, "deviceId": "3095", "callingDevice": "Tom & <Jerry>", "timestamp": 1700000000}


def sender_for(pki: dict[str, Any], production: LocalAPNs, development: LocalAPNs | None = None, *,
               voip: dict[str, Any] | None = None, push: dict[str, Any] | None = None) -> ApnsSender:
    voip_cfg = {"apn": {"phone.p12": "secret"}, **(voip or {})}
    apns_cfg = {
        "production": production.endpoint,
        "development": (development or production).endpoint,
        "caFile": "ca.pem",
        **(push or {}).pop("apns", {}),
    }
    push_cfg = {"retryBackoff": "10ms", "apns": apns_cfg, **(push or {})}
    cfg = push_config(pki["dir"], voip=voip_cfg, push=push_cfg)
    return ApnsSender(cfg.voip, cfg.push, cfg.base_dir)


def token(value: str, *, sandbox: bool = False, topic: str = BUNDLE) -> DeviceToken:
    return DeviceToken(kind="apn", topic=topic, token=value, login="alice", sandbox=sandbox)


async def test_voip_push_has_apple_headers_and_the_compact_event_json(pki, apns):
    sender = sender_for(pki, apns)
    result = await send_once(sender, token("ok-0001"), PAYLOAD, "voip")
    assert result.ok and not result.final and result.http_status == 200
    [req] = apns.requests
    assert req.path == "/3/device/ok-0001"
    assert req.headers["apns-push-type"] == "voip"
    assert req.headers["apns-topic"] == f"{BUNDLE}.voip"
    assert req.headers["apns-priority"] == "10"
    assert int(time.time()) + 20 <= int(req.headers["apns-expiration"]) <= int(time.time()) + 31
    assert uuid.UUID(req.headers["apns-id"]).version == 4
    assert req.headers["user-agent"] == "mxproxy" and req.headers["content-type"] == "application/json"
    assert req.headers[":method"] == "POST" and req.headers[":scheme"] == "https"
    assert "authorization" not in req.headers
    assert req.body == (
        b'{"type":"Delivered","callId":21,"deviceId":"3095",'
        b'"callingDevice":"Tom \\u0026 \\u003cJerry\\u003e","timestamp":1700000000}'
    )
    assert req.json() == PAYLOAD
    assert req.client_uid == BUNDLE  # the PKCS#12 certificate was presented


async def test_alert_push_uses_the_bare_bundle_topic_and_a_long_expiration(pki, apns):
    payload = {"aps": {"alert": {"title": "New voicemail"}}, "type": "MailIncoming"}
    for registered in (BUNDLE, f"{BUNDLE}.voip"):  # one app: either form of its topic (docs/push.md)
        result = await send_once(sender_for(pki, apns), token("ok-0002", topic=registered), payload, "alert")
        assert result.ok, (registered, result.summary())
    for req in apns.requests:
        assert req.headers["apns-push-type"] == "alert"
        assert req.headers["apns-topic"] == BUNDLE
        assert int(req.headers["apns-expiration"]) >= int(time.time()) + 86000
    assert len(apns.requests) == 2


def test_topic_rule_appends_voip_only_for_voip_pushes():
    assert apns_topic("com.a.b", "voip") == "com.a.b.voip"
    assert apns_topic("com.a.b.voip", "voip") == "com.a.b.voip"
    assert apns_topic("com.a.b", "alert") == "com.a.b"
    assert apns_topic("com.a.b.voip", "alert") == "com.a.b"


async def test_sandbox_tokens_go_to_the_development_gateway(pki, apns):
    development = await LocalAPNs(str(pki["server_cert"]), str(pki["server_key"])).start()
    sender = sender_for(pki, apns, development)
    try:
        assert (await sender.send(token("ok-dev", sandbox=True), PAYLOAD, "voip", deadline=soon())).ok
        assert (await sender.send(token("ok-prod"), PAYLOAD, "voip", deadline=soon())).ok
    finally:
        await sender.aclose()
        await development.stop()
    assert [r.token for r in development.requests] == ["ok-dev"]
    assert [r.token for r in apns.requests] == ["ok-prod"]


@pytest.mark.parametrize(
    ("development", "production", "expected"),
    [
        (True, False, {(BUNDLE, True)}),
        (False, True, {(BUNDLE, False)}),
        (True, True, {(BUNDLE, True), (BUNDLE, False)}),
    ],
)
def test_certificate_topics_come_from_uid_and_apple_extensions(pki, tmp_path, development, production, expected):
    path = make_push_p12(pki["ca"], tmp_path / "c.p12", BUNDLE, development=development, production=production)
    cert = load_p12(path, "secret")
    assert cert.bundle_id == BUNDLE
    assert cert.topics == expected


def test_multi_topic_certificate_is_rejected_and_registers_nothing(pki, tmp_path, caplog):
    make_push_p12(pki["ca"], tmp_path / "multi.p12", BUNDLE, multi_topic=True)
    with pytest.raises(CredentialError, match="multi-topic"):
        load_p12(tmp_path / "multi.p12", "secret")
    cfg = push_config(tmp_path, voip={"apn": {"multi.p12": "secret"}})
    sender = ApnsSender(cfg.voip, cfg.push, cfg.base_dir)
    assert sender.topics == frozenset()
    assert any("multi-topic" in p for p in sender.problems)


def test_unreadable_certificates_fail_with_a_message_naming_the_file(pki, tmp_path):
    make_push_p12(pki["ca"], tmp_path / "nouid.p12", BUNDLE, uid=False)
    with pytest.raises(CredentialError, match="no UID"):
        load_p12(tmp_path / "nouid.p12", "secret")
    with pytest.raises(CredentialError, match="wrong password"):
        load_p12(pki["p12"], "not-the-password")
    with pytest.raises(CredentialError, match="cannot read"):
        load_p12(tmp_path / "absent.p12", "x")


def test_certificate_expiry_is_read_and_a_near_expiry_is_warned(pki, tmp_path, caplog):
    path = make_push_p12(pki["ca"], tmp_path / "soon.p12", BUNDLE, days=10)
    with caplog.at_level(logging.WARNING, logger="mxproxy.push.certificates"):
        cert = load_p12(path, "secret")
    assert 8 <= cert.expires_in().days <= 10
    assert cert.not_valid_after.year >= 2024
    assert "expires in" in caplog.text and "soon.p12" in caplog.text
    assert "secret" not in caplog.text


async def test_payload_over_the_limit_is_never_sent(pki, apns):
    sender = sender_for(pki, apns)
    big = {"type": "Delivered", "pad": "x" * 4500}
    try:
        voip = await sender.send(token("ok-big"), big, "voip", deadline=soon())
        alert = await sender.send(token("ok-big"), big, "alert", deadline=soon())
        huge = await sender.send(token("ok-big"), {"pad": "x" * 5200}, "voip", deadline=soon())
    finally:
        await sender.aclose()
    assert voip.ok  # 4.5 KB fits the 5 KB VoIP limit
    assert alert.status == results.TOO_LARGE and alert.reason == "PayloadTooLarge" and not alert.final
    assert huge.status == results.TOO_LARGE
    assert len(apns.requests) == 1


@pytest.mark.parametrize(
    ("value", "status", "reason", "final", "http_status"),
    [
        ("bad-1", results.REJECTED, "BadDeviceToken", True, 400),
        ("gone-1", results.REJECTED, "Unregistered", True, 410),
        ("topic-1", results.REJECTED, "DeviceTokenNotForTopic", True, 400),
        ("missing-1", results.REJECTED, "MissingDeviceToken", True, 400),
        ("badtopic-1", results.REJECTED, "BadTopic", False, 400),
        ("busy-1", results.UNAVAILABLE, "TooManyRequests", False, 429),
        ("fail-1", results.UNAVAILABLE, "InternalServerError", False, 500),
        ("bare503-1", results.UNAVAILABLE, "", False, 503),
    ],
)
async def test_each_apns_verdict_is_classified(pki, apns, value, status, reason, final, http_status):
    sender = sender_for(pki, apns, push={"maxAttempts": 2})
    result = await send_once(sender, token(value), PAYLOAD, "voip")
    assert (result.status, result.reason, result.final, result.http_status) == (status, reason, final, http_status)
    retried = status == results.UNAVAILABLE
    assert result.attempts == len(apns.requests) == (2 if retried else 1)


@pytest.mark.parametrize("value", ["flaky500-1", "flaky429-1"])
async def test_server_errors_and_throttling_are_retried_until_success(pki, apns, value):
    sender = sender_for(pki, apns)
    result = await send_once(sender, token(value), PAYLOAD, "voip")
    assert result.ok and result.attempts == 2
    assert [r.token for r in apns.requests] == [value, value]


async def test_a_silent_gateway_gives_a_timeout_result_within_the_deadline(pki, apns):
    sender = sender_for(pki, apns)
    try:
        result = await sender.send(token("hang-1"), PAYLOAD, "voip", deadline=soon(0.5))
        assert result.status == results.TIMEOUT and not result.final
        after = await sender.send(token("ok-after"), PAYLOAD, "voip", deadline=soon())
    finally:
        await sender.aclose()
    assert after.ok  # the silent connection was dropped; a fresh one works


async def test_connection_refused_is_a_transport_failure_not_a_verdict(pki, apns):
    port = apns.port
    await apns.stop()
    sender = sender_for(pki, apns, push={"maxAttempts": 2})
    result = await send_once(sender, token("ok-1"), PAYLOAD, "voip")
    assert port and result.status == results.TRANSPORT and not result.final and result.attempts == 2


async def test_second_send_reuses_the_warm_connection(pki, apns):
    sender = sender_for(pki, apns)
    try:
        first = await sender.send(token("ok-1"), PAYLOAD, "voip", deadline=soon())
        second = await sender.send(token("ok-2"), PAYLOAD, "voip", deadline=soon())
    finally:
        await sender.aclose()
    assert (first.warm, second.warm) == (False, True)
    assert apns.connections == 1


async def test_idle_connections_are_pinged_then_closed_after_apn_ttl(pki, apns):
    sender = sender_for(pki, apns, voip={"apnTTL": "400ms"}, push={"apns": {"pingInterval": "50ms"}})
    try:
        assert (await sender.send(token("ok-1"), PAYLOAD, "voip", deadline=soon())).ok
        for _ in range(100):
            if apns.pings and not any(p.is_warm for p in sender._pools.values()):
                break
            await asyncio.sleep(0.05)
        assert apns.pings >= 1
        again = await sender.send(token("ok-2"), PAYLOAD, "voip", deadline=soon())
    finally:
        await sender.aclose()
    assert again.ok and again.warm is False
    assert apns.connections == 2


async def test_tokens_without_a_matching_credential_are_not_sent(pki, apns):
    sender = sender_for(pki, apns)
    result = await send_once(sender, token("ok-1", topic="com.other.app"), PAYLOAD, "voip")
    assert result.status == results.NO_CREDENTIALS and not result.final
    assert apns.requests == []


async def test_token_auth_signs_an_es256_provider_token_for_the_configured_bundles(pki, apns, tmp_path: Path):
    key = make_p8(pki["dir"] / "AuthKey_ABC123DEFG.p8")
    sender = sender_for(
        pki, apns,
        voip={"apn": {}, "apnToken": {"keyFile": "AuthKey_ABC123DEFG.p8", "keyId": "ABC123DEFG",
                                      "teamId": "TEAM123456", "topics": ["com.example.token"]}},
    )
    assert sender.topics == {("com.example.token", False), ("com.example.token", True)}
    try:
        result = await sender.send(token("ok-1", topic="com.example.token", sandbox=True), PAYLOAD, "voip",
                                   deadline=soon())
    finally:
        await sender.aclose()
    assert result.ok
    [req] = apns.requests
    assert req.client_uid is None  # no client certificate with token auth
    scheme, provider_token = req.headers["authorization"].split(" ", 1)
    assert scheme == "bearer"
    assert jwt.get_unverified_header(provider_token)["kid"] == "ABC123DEFG"
    claims = jwt.decode(provider_token, key.public_key(), algorithms=["ES256"])
    assert claims["iss"] == "TEAM123456"
    assert req.headers["apns-topic"] == "com.example.token.voip"
    assert "authorization" in req.never_indexed  # a credential never enters an HPACK table


async def test_per_push_header_values_are_never_indexed_and_every_push_has_its_own_apns_id(pki, apns):
    """The values that change per push stay out of the HPACK tables (which then stay a handful of
    constant entries, issue 14); the constant headers are indexed as usual."""
    sender = sender_for(pki, apns)
    try:
        for n in range(3):
            result = await sender.send(token(f"ok-{n:04d}"), PAYLOAD, "voip", deadline=soon())
            assert result.ok, result.summary()
    finally:
        await sender.aclose()
    assert len({req.connection for req in apns.requests}) == 1
    for req in apns.requests:
        assert req.never_indexed == {":path", "apns-id", "apns-expiration"}
    ids = [uuid.UUID(req.headers["apns-id"]) for req in apns.requests]
    assert len(set(ids)) == 3 and all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)


def test_apns_ids_are_distinct_version_4_uuids_spelled_as_str_uuid4():
    ids = [apns_id() for _ in range(600)]  # more than one batch
    assert len(set(ids)) == 600
    for value in ids:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, value)


def test_payload_encoding_matches_go_json_marshal():
    assert encode_payload({"a": "é\u2028", "b": [1, True, None]}) == '{"a":"é\\u2028","b":[1,true,null]}'.encode()

"""APNs topics of both credential kinds map to one app (mxproxy/push/topics.py, docs/push.md):
a VoIP certificate's topic is ``<bundle>.voip``, a .p8 key lists bare bundle ids, and tokens
registered under either form keep working when the app switches from one kind to the other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mxproxy.push.topics import PushTopics, apns_bundle
from tests.admin.conftest import AdminHarness, build_admin
from mxproxy.localpush.apns import LocalAPNs
from mxproxy.localpush.pki import make_p8, make_push_p12
from tests.push.conftest import BUNDLE, apns, pki, push_config  # noqa: F401 - fixtures

VOIP_TOPIC = f"{BUNDLE}.voip"
OLD_TOKEN = "c0ffee" * 10 + "0000"  # registered while the app used its VoIP certificate
NEW_TOKENS = {"beef" * 16: BUNDLE, "face" * 16: VOIP_TOPIC}  # registered after the switch


@pytest.mark.parametrize(("topic", "bundle"), [(VOIP_TOPIC, BUNDLE), (BUNDLE, BUNDLE), ("voip", "voip"),
                                               (f"{BUNDLE}.voip.voip", VOIP_TOPIC)])
def test_the_bundle_of_a_topic_drops_one_voip_suffix(topic: str, bundle: str) -> None:
    assert apns_bundle(topic) == bundle


def test_registrations_are_accepted_under_either_form_of_a_configured_app() -> None:
    topics = PushTopics.of(apn=[(VOIP_TOPIC, False)])
    assert topics.apn_ok(VOIP_TOPIC, False) and topics.apn_ok(BUNDLE, False)
    assert not topics.apn_ok(BUNDLE, True) and not topics.apn_ok("com.other.app.voip", False)


def _config(tmp_path: Path, apns: LocalAPNs, pki: dict[str, Any], voip: dict[str, Any]) -> Any:  # noqa: F811
    endpoints = {"production": apns.endpoint, "development": apns.endpoint, "caFile": str(pki["ca_file"])}
    return push_config(tmp_path, voip=voip, push={"retryBackoff": "10ms", "apns": endpoints})


async def _register(admin: AdminHarness, topic: str, token: str) -> None:
    bearer = await admin.sign_in()
    r = await admin.public.put(f"/tokens/apn/{topic}/{token}", headers={"Authorization": f"Bearer {bearer}"})
    assert r.status_code == 204, r.text


async def _push(admin: AdminHarness, kind: str) -> dict[str, str]:
    r = await admin.client.post("/push", json={"login": "dmitrys", "kind": kind, "payload": {"type": "Delivered"}})
    assert r.status_code == 200, r.text
    return {item["token"]: item["status"] for item in r.json()["results"]}


async def test_switching_from_a_voip_certificate_to_a_p8_key_keeps_the_registered_tokens(
    tmp_path: Path, pki: dict[str, Any], apns: LocalAPNs,  # noqa: F811
) -> None:
    certificate = make_push_p12(pki["ca"], tmp_path / "voip.p12", VOIP_TOPIC, password="pw")
    with_certificate = _config(tmp_path, apns, pki, {"apn": {str(certificate): "pw"}})
    async with build_admin(tmp_path, push_config=with_certificate) as admin:
        admin.ctx.push_topics = admin.push.topics  # what the server hands the API
        await _register(admin, VOIP_TOPIC, OLD_TOKEN)
        assert await _push(admin, "voip") == {OLD_TOKEN: "ok"}
    [sent] = apns.requests
    assert (sent.client_uid, sent.headers["apns-topic"]) == (VOIP_TOPIC, VOIP_TOPIC)

    # the same store, the app's credential is now a .p8 key for the bare bundle id
    make_p8(tmp_path / "AuthKey_ABC123DEFG.p8")
    with_key = _config(tmp_path, apns, pki, {"apnToken": {"keyFile": "AuthKey_ABC123DEFG.p8", "keyId": "ABC123DEFG",
                                                        "teamId": "TEAM123456", "topics": [BUNDLE]}})
    async with build_admin(tmp_path, push_config=with_key) as admin:
        admin.ctx.push_topics = admin.push.topics
        apns.requests.clear()
        assert await _push(admin, "voip") == {OLD_TOKEN: "ok"}  # not stranded, not pruned
        [sent] = apns.requests
        assert sent.client_uid is None and sent.headers["authorization"].startswith("bearer ")
        assert sent.headers["apns-topic"] == VOIP_TOPIC
        for token, topic in NEW_TOKENS.items():  # both forms register under the key
            await _register(admin, topic, token)
        assert await _push(admin, "alert") == dict.fromkeys([OLD_TOKEN, *NEW_TOKENS], "ok")
        assert {r.headers["apns-topic"] for r in apns.requests[1:]} == {BUNDLE}
        listed = (await admin.client.get("/tokens")).json()["tokens"]
        assert listed == {f"apn:{VOIP_TOPIC}:{OLD_TOKEN}": "dmitrys",
                          **{f"apn:{topic}:{token}": "dmitrys" for token, topic in NEW_TOKENS.items()}}

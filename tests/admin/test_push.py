"""``POST /push`` / ``GET /push``: validation (400 before anything else), no dispatcher (503),
and end to end through the real dispatcher to the local APNs h2 server: per-device results,
the policy's sample payload for a named event, a final verdict pruning the token."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from mxproxy.store.base import DeviceToken
from tests.admin.conftest import AdminHarness, build_admin
from mxproxy.localpush.apns import LocalAPNs
from tests.push.conftest import BUNDLE, apns, pki, push_config  # noqa: F401 - fixtures

GOOD = "a1" * 32
BAD = "bad" + "0" * 61  # the local APNs server answers 400 BadDeviceToken


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'give exactly one of "login" or "token"'),
        ({"login": "dmitrys", "token": {"kind": "apn"}, "payload": {}}, 'give exactly one of "login" or "token"'),
        ({"login": "dmitrys"}, 'give exactly one of "payload" or "event"'),
        ({"login": "dmitrys", "payload": {}, "event": "Delivered"}, 'give exactly one of "payload" or "event"'),
        ({"login": "dmitrys", "payload": [1]}, 'bad value for "payload": expected a JSON object'),
        ({"login": "dmitrys", "payload": {}, "kind": "loud"}, 'bad value for "kind": expected "voip" or "alert"'),
        ({"login": "", "payload": {}}, 'bad value for "login": expected a non-empty string'),
        ({"login": 7, "payload": {}}, 'bad value for "login": expected a non-empty string'),
        ({"login": "dmitrys", "event": ""}, 'bad value for "event": expected a non-empty string'),
        ({"token": "abc", "payload": {}}, 'bad value for "token": expected an object {"kind", "topic", "token"}'),
        ({"token": {"kind": "gcm", "topic": "t", "token": "x"}, "payload": {}},
         'bad value for "token.kind": expected "apn" or "fcm"'),
        ({"token": {"kind": "apn", "token": "x"}, "payload": {}},
         'bad value for "token.topic": expected a non-empty string'),
        ({"token": {"kind": "apn", "topic": "t", "token": "x", "sandbox": "yes"}, "payload": {}},
         'bad value for "token.sandbox": expected true or false'),
        ({"login": "dmitrys", "payload": {}, "extra": 1}, 'unknown field "extra"'),
    ],
)
async def test_bad_push_requests_are_400_naming_the_problem(admin: AdminHarness, body: dict, message: str) -> None:
    r = await admin.client.post("/push", json=body)
    assert (r.status_code, r.json()) == (400, {"error": message})


async def test_malformed_or_non_object_json_is_400(admin: AdminHarness) -> None:
    r = await admin.client.post("/push", content="{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON body")
    r = await admin.client.post("/push", json=[1, 2])
    assert (r.status_code, r.json()) == (400, {"error": "JSON body must be an object"})


async def test_without_a_dispatcher_push_is_503(admin: AdminHarness) -> None:
    r = await admin.client.post("/push", json={"login": "dmitrys", "payload": {"x": 1}})
    assert (r.status_code, r.json()) == (503, {"error": "push dispatcher not configured"})
    r = await admin.client.get("/push")
    assert r.status_code == 503


@pytest.fixture
async def pushing(tmp_path: Path, pki: dict[str, Any], apns: LocalAPNs) -> AsyncIterator[AdminHarness]:  # noqa: F811
    config = push_config(
        tmp_path,
        voip={"apn": {str(pki["p12"]): "secret"}},
        push={"retryBackoff": "10ms",
              "apns": {"production": apns.endpoint, "development": apns.endpoint, "caFile": str(pki["ca_file"])}},
    )
    async with build_admin(tmp_path, push_config=config) as harness:
        yield harness


async def add_tokens(admin: AdminHarness, *values: str, login: str = "dmitrys") -> None:
    for value in values:
        await admin.ctx.store.put_token(DeviceToken(kind="apn", topic=BUNDLE, token=value, login=login))


async def test_push_to_a_user_reaches_every_device_and_reports_each_result(
    pushing: AdminHarness, apns: LocalAPNs  # noqa: F811
) -> None:
    await pushing.sign_in()
    await add_tokens(pushing, GOOD, BAD)
    r = await pushing.client.post("/push", json={"login": "dmitrys", "kind": "alert",
                                                 "payload": {"aps": {"alert": "admin test"}}})
    assert r.status_code == 200, r.text
    results = {item["token"]: item for item in r.json()["results"]}
    assert set(results) == {GOOD, BAD}
    good, bad = results[GOOD], results[BAD]
    assert set(good) == {"kind", "topic", "sandbox", "token", "status", "reason", "final", "pruned", "attempts",
                         "latencyMs"}
    assert (good["kind"], good["topic"], good["status"], good["final"], good["pruned"]) == (
        "apn", BUNDLE, "ok", False, False)
    assert good["attempts"] == 1 and good["latencyMs"] >= 0
    assert (bad["status"], bad["reason"], bad["final"], bad["pruned"]) == ("rejected", "BadDeviceToken", True, True)
    sent = [req for req in apns.requests if req.token == GOOD]
    assert sent and sent[-1].json() == {"aps": {"alert": "admin test"}}
    assert sent[-1].headers.get("apns-push-type") == "alert"
    # the dead token is gone, the good one stays
    assert (await pushing.client.get("/tokens")).json() == {"tokens": {f"apn:{BUNDLE}:{GOOD}": "dmitrys"}}


async def test_push_a_named_event_sends_the_policys_sample_payload(
    pushing: AdminHarness, apns: LocalAPNs  # noqa: F811
) -> None:
    await pushing.sign_in()
    await add_tokens(pushing, GOOD)
    expected = pushing.push.test_payload("Delivered", "dmitrys")
    r = await pushing.client.post("/push", json={"login": "dmitrys", "event": "Delivered"})
    assert r.status_code == 200, r.text
    [result] = r.json()["results"]
    assert result["status"] == "ok"
    sent = [req for req in apns.requests if req.token == GOOD][-1]
    assert sent.json() == expected
    assert sent.headers.get("apns-push-type") == "voip"  # kind defaults to voip
    r = await pushing.client.post("/push", json={"login": "dmitrys", "event": "NoSuchEvent"})
    assert r.status_code == 400 and r.json()["error"].startswith('bad value for "event"')


@pytest.mark.parametrize("login", ["dmitrys", "dmitrys@xyzrd.com"])  # MX login, or the README's sign-in name
async def test_a_json_body_sent_as_curl_d_sends_it_as_a_form_is_read_as_json(
    pushing: AdminHarness, apns: LocalAPNs, login: str  # noqa: F811
) -> None:
    await pushing.sign_in()
    await add_tokens(pushing, GOOD)
    r = await pushing.client.post("/push", content=f'{{"login": "{login}", "event": "Delivered"}}'.encode(),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert [res["status"] for res in r.json()["results"]] == ["ok"]


async def test_a_malformed_json_body_sent_as_curl_d_is_400(pushing: AdminHarness) -> None:
    for bad in (b'{"login": ', b'{"login": ' + b"[" * 5000, b'{"login": ' + b"9" * 5000 + b"}"):
        r = await pushing.client.post("/push", content=bad, headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON body: "), r.text


async def test_push_to_one_registered_token(pushing: AdminHarness, apns: LocalAPNs) -> None:  # noqa: F811
    await pushing.sign_in()
    await add_tokens(pushing, GOOD, "b2" * 32)
    before = len(apns.requests)
    r = await pushing.client.post("/push", json={"token": {"kind": "apn", "topic": BUNDLE, "token": GOOD},
                                                 "payload": {"aps": {}}})
    assert r.status_code == 200, r.text
    assert [item["token"] for item in r.json()["results"]] == [GOOD]
    assert [req.token for req in apns.requests[before:]] == [GOOD]


async def test_unknown_user_or_token_is_404(pushing: AdminHarness) -> None:
    r = await pushing.client.post("/push", json={"login": "nobody", "payload": {}})
    assert (r.status_code, r.json()) == (404, {"error": "unknown user"})
    r = await pushing.client.post("/push", json={"token": {"kind": "apn", "topic": BUNDLE, "token": GOOD},
                                                 "payload": {}})
    assert (r.status_code, r.json()) == (404, {"error": "token not registered"})
    await pushing.sign_in()
    await add_tokens(pushing, GOOD)
    r = await pushing.client.post("/push", json={"token": {"kind": "apn", "topic": BUNDLE + "~", "token": GOOD},
                                                 "payload": {}})
    assert r.status_code == 404  # registered for production, asked for sandbox


async def test_a_user_without_devices_gets_an_empty_result_list(pushing: AdminHarness) -> None:
    await pushing.sign_in()
    r = await pushing.client.post("/push", json={"login": "dmitrys", "payload": {}})
    assert (r.status_code, r.json()) == (200, {"results": []})


async def test_push_status_and_readiness_come_from_the_dispatcher(pushing: AdminHarness) -> None:
    r = await pushing.client.get("/push")
    assert r.status_code == 200
    body = r.json()
    assert {"queued", "inFlight", "pruneGuard", "apnsCertificates", "sent"} <= set(body)
    assert [c["topic"] for c in body["apnsCertificates"]] and "secret" not in r.text
    r = await pushing.client.get("/readyz")
    assert (r.status_code, r.json()["push"]) == (200, [])


async def test_readyz_is_503_with_the_dispatchers_problem_once_the_prune_guard_trips(
    pushing: AdminHarness,
) -> None:
    from mxproxy.store.base import UserRecord

    for i in range(6):  # many users' tokens rejected at once: a wrong certificate, not uninstalls
        login = f"user{i}"
        await pushing.ctx.store.put_user(UserRecord(login=login, host="127.0.0.1:7778", mx_login=login,
                                                    password="pw"))
        await add_tokens(pushing, f"bad{i:061d}", login=login)
        r = await pushing.client.post("/push", json={"login": login, "payload": {}})
        assert r.status_code == 200
    r = await pushing.client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready" and body["store"] == "ok"
    assert body["push"] and "suspended" in body["push"][0]
    # while the guard holds, a final verdict no longer prunes: the admin answer says so
    r = await pushing.client.post("/push", json={"login": "user5", "payload": {}})
    [result] = r.json()["results"]
    assert (result["final"], result["pruned"]) == (True, False)


async def test_credentials_that_fail_to_load_show_in_push_status_and_readiness(
    tmp_path: Path, pki: dict[str, Any]  # noqa: F811
) -> None:
    """A wrong .p12 password, a missing .p8 and a broken service-account JSON each name their key
    in ``GET /push`` and make ``/readyz`` 503 (not only a start-up log line); no password leaks."""
    (tmp_path / "broken-sa.json").write_text('{"type": "service_account"}')
    config = push_config(
        tmp_path,
        voip={"apn": {str(pki["p12"]): "wrong-password-5f3a"},
              "apnToken": {"keyFile": "missing.p8", "keyId": "ABC123DEFG", "teamId": "TEAM123456",
                           "topics": ["com.example.other"]},
              "fcm": {"com.example.phone": "broken-sa.json"}},
    )
    async with build_admin(tmp_path, push_config=config) as admin:
        r = await admin.client.get("/push")
        assert r.status_code == 200
        problems = r.json()["credentialProblems"]
        assert len(problems) == 3, problems
        assert any(p.startswith(f'voip.apn."{pki["p12"]}"') and "wrong password" in p for p in problems)
        assert any(p.startswith("voip.apnToken.keyFile") and "missing.p8" in p for p in problems)
        assert any(p.startswith('voip.fcm."com.example.phone"') for p in problems)
        assert "wrong-password-5f3a" not in r.text
        r = await admin.client.get("/readyz")
        assert r.status_code == 503
        assert sorted(r.json()["push"]) == sorted(f"push: credential not loaded: {p}" for p in problems)


async def test_a_legacy_fcm_key_is_listed_in_push_status_and_readyz_which_stays_ready(
    tmp_path: Path, pki: dict[str, Any], apns: LocalAPNs  # noqa: F811
) -> None:
    config = push_config(tmp_path, voip={"apn": {str(pki["p12"]): "secret"}, "fcm": {"com.old": "AAAAlegacy:APA91b"}})
    async with build_admin(tmp_path, push_config=config) as admin:
        status = (await admin.client.get("/push")).json()
        assert status["fcmLegacyKeys"] == ["com.old"]
        ready = await admin.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["warnings"] == ["push: FCM app com.old has a legacy server key: nothing is sent to FCM for it"]
        assert "AAAAlegacy" not in ready.text + str(status)

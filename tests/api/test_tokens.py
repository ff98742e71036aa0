"""``PUT|DELETE /tokens/{apn|fcm}/{topic}/{token}``: validation and storage."""

from __future__ import annotations

import pytest

from tests.api.conftest import APN_TOPIC, FCM_APP, ApiHarness

APN_TOKEN = "7C179108B7BF759DED2D9CBED7969DE6623D34E200E46387E7D713917E0F3EB8"
FCM_TOKEN = "dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"


async def test_readme_apn_registration_is_stored_for_the_user(api: ApiHarness, token: str) -> None:
    login = (await api.ctx.tokens.verify(token)).sub
    r = await api.client.put(f"/tokens/apn/{APN_TOPIC}/{APN_TOKEN}", headers=api.bearer(token))
    assert r.status_code == 204
    assert r.content == b""
    stored = await api.ctx.store.get_token("apn", APN_TOPIC, APN_TOKEN)
    assert stored is not None and stored.login == login and stored.sandbox is False


@pytest.mark.parametrize("query,sandbox", [("?sandbox", True), ("?sandbox=1", True), ("?sandbox=true", True),
                                           ("?sandbox=false", False), ("?sandbox=0", False), ("", False)])
async def test_sandbox_flag_values(api: ApiHarness, token: str, query: str, sandbox: bool) -> None:
    r = await api.client.put(f"/tokens/apn/{APN_TOPIC}/{APN_TOKEN}{query}", headers=api.bearer(token))
    assert r.status_code == 204
    stored = await api.ctx.store.get_token("apn", APN_TOPIC, APN_TOKEN)
    assert stored is not None and stored.sandbox is sandbox


async def test_fcm_registration_and_removal(api: ApiHarness, token: str) -> None:
    url = f"/tokens/fcm/{FCM_APP}/{FCM_TOKEN}"
    assert (await api.client.put(url, headers=api.bearer(token))).status_code == 204
    assert await api.ctx.store.get_token("fcm", FCM_APP, FCM_TOKEN) is not None
    assert (await api.client.delete(url, headers=api.bearer(token))).status_code == 204
    assert await api.ctx.store.get_token("fcm", FCM_APP, FCM_TOKEN) is None


async def test_delete_of_unknown_token_is_404(api: ApiHarness, token: str) -> None:
    r = await api.client.delete(f"/tokens/apn/{APN_TOPIC}/{APN_TOKEN}", headers=api.bearer(token))
    assert r.status_code == 404
    assert r.json() == {"error": "not found"}


@pytest.mark.parametrize("path,status,error", [
    (f"/tokens/apn/com.unknown.app/{APN_TOKEN}", 404, "unsupported APNS topic ID or sandbox flag"),
    (f"/tokens/fcm/unknown-app/{FCM_TOKEN}", 404, "unsupported FCM application ID"),
    (f"/tokens/wns/{APN_TOPIC}/{APN_TOKEN}", 404, 'unsupported push type "wns"'),
    (f"/tokens/apn/{APN_TOPIC}/ABCDEF", 400, "bad push token"),
    (f"/tokens/apn/{APN_TOPIC}/{'Z' * 64}", 400, "bad push token"),
    (f"/tokens/fcm/{FCM_APP}/short", 400, "bad push token"),
])
async def test_token_validation(api: ApiHarness, token: str, path: str, status: int, error: str) -> None:
    r = await api.client.put(path, headers=api.bearer(token))
    assert r.status_code == status
    assert r.json() == {"error": error}


async def test_token_moves_to_the_latest_user_and_old_owner_cannot_delete(api: ApiHarness, token: str) -> None:
    other = await api.sign_in("peterh@xyzrd.com", "peter-pw")
    other_login = (await api.ctx.tokens.verify(other)).sub
    url = f"/tokens/apn/{APN_TOPIC}/{APN_TOKEN}"
    assert (await api.client.put(url, headers=api.bearer(token))).status_code == 204
    assert (await api.client.put(url, headers=api.bearer(other))).status_code == 204
    stored = await api.ctx.store.get_token("apn", APN_TOPIC, APN_TOKEN)
    assert stored is not None and stored.login == other_login
    assert (await api.client.delete(url, headers=api.bearer(token))).status_code == 404
    assert (await api.client.delete(url, headers=api.bearer(other))).status_code == 204


async def test_tokens_need_a_bearer_token(api: ApiHarness) -> None:
    r = await api.client.put(f"/tokens/apn/{APN_TOPIC}/{APN_TOKEN}")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="MXProxy"'


async def test_sign_out_removes_the_users_tokens(api: ApiHarness, token: str) -> None:
    assert (await api.client.put(f"/tokens/apn/{APN_TOPIC}/{APN_TOKEN}", headers=api.bearer(token))).status_code == 204
    assert (await api.client.delete("/auth", headers=api.bearer(token))).status_code == 200
    assert await api.ctx.store.get_token("apn", APN_TOPIC, APN_TOKEN) is None

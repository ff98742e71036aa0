"""The original's admin routes (README "Административный веб", spec §7.9) against a real
session manager on the MX simulator: shapes as the README prints them, secrets masked, and
``POST /users`` really signing the user out (MX session closed, user and tokens gone)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import httpx
import pytest

from tests.admin.conftest import AdminHarness
from tests.api.conftest import (
    APN_TOPIC,
    CLIENT_ID,
    CLIENT_SECRET,
    DEMO_EXT,
    FCM_APP,
    README_PASSWORD,
    demo_user,
)

# The README's examples, verbatim.
README_USERS = json.loads("""
{
"users": {
"dmitrys@xyzrd.com": {
"host": "10.0.0.1:7778",
"login": "dmitrys",
"password": "xxxxx"
}
}
}
""")
README_USER_LOGOUT = json.loads("""
{
"userLogout": "dmitrys@xyzrd.com"
}
""")

APN_TOKEN = "a1" * 32
FCM_TOKEN = "fcm-registration-token-" + "x" * 40


def shape(value: Any) -> Any:
    """Keys and JSON types, values dropped: what an app or script parsing the answer relies on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


async def register(admin: AdminHarness, token: str, path: str) -> None:
    r = await admin.public.put(path, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204, r.text


def live_mx_sessions(admin: AdminHarness, login: str) -> list[Any]:
    return [s for s in admin.api.sim.sessions() if s.login == login and s.active]


async def test_users_lists_stored_users_like_the_readme_with_the_password_masked(admin: AdminHarness) -> None:
    await admin.sign_in()
    r = await admin.client.get("/users")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.text.startswith('{\n    "users"') and r.text.endswith("}\n")  # the original's printing
    body = r.json()
    assert shape(body["users"]["dmitrys"]) == shape(README_USERS["users"]["dmitrys@xyzrd.com"])
    me = demo_user(admin.api.sim.fixture, DEMO_EXT)
    assert body == {"users": {"dmitrys": {"host": f"127.0.0.1:{admin.api.sim.port}", "login": me.login,
                                          "password": "xxxxx"}}}


async def test_users_is_an_empty_object_when_nobody_signed_in(admin: AdminHarness) -> None:
    r = await admin.client.get("/users")
    assert (r.status_code, r.json()) == (200, {"users": {}})


async def test_connections_lists_live_mx_logins_sorted(admin: AdminHarness) -> None:
    assert (await admin.client.get("/connections")).json() == {"connections": []}
    await admin.sign_in()
    await admin.sign_in("peterh@xyzrd.com", "peter-pw")
    r = await admin.client.get("/connections")
    assert r.json() == {"connections": sorted(["dmitrys", "peterh"])}


async def test_apps_lists_client_ids_and_never_the_secrets(admin: AdminHarness) -> None:
    r = await admin.client.get("/apps")
    assert r.json() == {"apps": {CLIENT_ID: "xxxxx"}}
    assert CLIENT_SECRET not in r.text


async def test_tokens_maps_the_originals_keys_to_logins(admin: AdminHarness) -> None:
    token = await admin.sign_in()
    await register(admin, token, f"/tokens/apn/{APN_TOPIC}/{APN_TOKEN}")
    await register(admin, token, f"/tokens/apn/{APN_TOPIC}/{'b2' * 32}?sandbox")
    await register(admin, token, f"/tokens/fcm/{FCM_APP}/{FCM_TOKEN}")
    r = await admin.client.get("/tokens")
    assert r.json() == {
        "tokens": {
            f"apn:{APN_TOPIC}:{APN_TOKEN}": "dmitrys",
            f"apn:{APN_TOPIC}~:{'b2' * 32}": "dmitrys",
            f"fcm:{FCM_APP}:{FCM_TOKEN}": "dmitrys",
        }
    }


async def test_post_users_form_signs_the_user_out_closing_the_mx_session_and_deleting_tokens(
    admin: AdminHarness,
) -> None:
    token = await admin.sign_in()
    await register(admin, token, f"/tokens/apn/{APN_TOPIC}/{APN_TOKEN}")
    await admin.sign_in("peterh@xyzrd.com", "peter-pw")
    assert live_mx_sessions(admin, "dmitrys")

    # exactly what the README's curl sends
    r = await admin.client.post("/users", content="login=dmitrys",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    assert shape(r.json()) == shape(README_USER_LOGOUT)
    assert r.json() == {"userLogout": "dmitrys"}

    for _ in range(100):  # the simulator sees the <logout/> and the close asynchronously
        if not live_mx_sessions(admin, "dmitrys"):
            break
        await asyncio.sleep(0.02)
    assert live_mx_sessions(admin, "dmitrys") == []
    assert (await admin.client.get("/users")).json()["users"].keys() == {"peterh"}
    assert (await admin.client.get("/tokens")).json() == {"tokens": {}}
    assert (await admin.client.get("/connections")).json() == {"connections": ["peterh"]}
    # the access token of the signed-out user no longer works on the public API
    r = await admin.public.get("/auth", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


@pytest.mark.parametrize("name", ["dmitrys@xyzrd.com", "Dmitrys@XYZRD.com", "dmitrys"])
async def test_post_users_takes_the_sign_in_name_or_the_mx_login(admin: AdminHarness, name: str) -> None:
    """The README's own example signs out ``dmitrys@xyzrd.com``: the name typed at sign-in."""
    await admin.sign_in()
    r = await admin.client.post("/users", content=f"login={name}",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json()) == (200, {"userLogout": name})
    assert (await admin.client.get("/users")).json() == {"users": {}}


async def test_post_users_accepts_a_json_body(admin: AdminHarness) -> None:
    await admin.sign_in()
    r = await admin.client.post("/users", json={"login": "dmitrys"})
    assert (r.status_code, r.json()) == (200, {"userLogout": "dmitrys"})
    assert (await admin.client.get("/users")).json() == {"users": {}}


async def test_post_users_unknown_login_is_404_and_missing_login_400(admin: AdminHarness) -> None:
    r = await admin.client.post("/users", data={"login": "nobody"})
    assert (r.status_code, r.json()) == (404, {"error": "not found"})
    r = await admin.client.post("/users", data={"other": "x"})
    assert (r.status_code, r.json()) == (400, {"error": 'missing "login"'})
    r = await admin.client.post("/users", content="{broken", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON body")


async def test_sessions_describes_every_mx_session_without_secrets(admin: AdminHarness) -> None:
    await admin.sign_in()
    r = await admin.client.get("/sessions")
    [session] = r.json()["sessions"]
    assert session["login"] == "dmitrys" and session["state"] == "live" and session["ext"] == DEMO_EXT
    me = demo_user(admin.api.sim.fixture, DEMO_EXT)
    assert me.password not in r.text and README_PASSWORD not in r.text


async def test_unknown_paths_and_methods_answer_like_the_public_api(admin: AdminHarness) -> None:
    r = await admin.client.get("/nope")
    assert (r.status_code, r.json()) == (404, {"error": "not found"})
    r = await admin.client.delete("/users")
    assert (r.status_code, r.json()) == (405, {"error": "method not allowed"})
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    r = await admin.client.post("/apps")
    assert r.status_code == 405


async def test_no_secret_appears_in_any_admin_answer_or_log_line(
    admin: AdminHarness, caplog: pytest.LogCaptureFixture
) -> None:
    token = await admin.sign_in()
    await register(admin, token, f"/tokens/apn/{APN_TOPIC}/{APN_TOKEN}")
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    me = demo_user(admin.api.sim.fixture, DEMO_EXT)
    secrets = [CLIENT_SECRET, README_PASSWORD, me.password, "api-test-key", "peter-pw", token]
    bodies = []
    for path in ("/apps", "/connections", "/tokens", "/users", "/sessions", "/readyz", "/healthz", "/metrics",
                 "/push", "/nope"):
        bodies.append((await admin.client.get(path)).text)
    bodies.append((await admin.client.post("/users", data={"login": "dmitrys"})).text)
    assert "admin: user dmitrys signed out" in caplog.text
    for text in [*bodies, caplog.text]:
        for secret in secrets:
            assert secret not in text


async def test_admin_answers_over_a_real_socket(admin: AdminHarness) -> None:
    from tests.api.conftest import serve

    await admin.sign_in()
    async with serve(admin.app) as url, httpx.AsyncClient(base_url=url) as client:
        r = await client.get("/users", headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200 and "dmitrys" in r.json()["users"]
        assert r.headers["server"].startswith("MXProxy/2.3")


async def test_admin_sign_out_revokes_the_users_tokens_for_good(admin: AdminHarness) -> None:
    token = await admin.sign_in()
    r = await admin.client.post("/users", content="login=dmitrys",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    fresh = await admin.sign_in()  # the user signs in again
    old = await admin.public.get("/auth", headers={"Authorization": f"Bearer {token}"})
    assert (old.status_code, old.json()) == (401, {"error": "invalid token: token revoked"})
    assert (await admin.public.get("/auth", headers={"Authorization": f"Bearer {fresh}"})).status_code == 200

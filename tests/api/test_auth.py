"""``/auth``: the README's sign-in literally, who-am-I, sign-out, and every refusal."""

from __future__ import annotations

import httpx
import jwt
import pytest

from mxproxy.simulator import demo_fixture
from tests.api.conftest import (
    CLIENT_ID,
    DEMO_EXT,
    FORM_TYPE,
    README_BASIC,
    README_FORM,
    ApiHarness,
    basic,
    demo_user,
)

BEARER_CHALLENGE = 'Bearer realm="MXProxy"'
BASIC_CHALLENGE = 'Basic realm="MXProxy client application"'


async def test_readme_password_grant_returns_a_bearer_token(api: ApiHarness) -> None:
    r = await api.client.post("/auth", content=README_FORM,
                              headers={"Authorization": README_BASIC, "Content-Type": FORM_TYPE})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    body = r.json()
    assert list(body) == ["token_type", "access_token", "expires_in"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].count(".") == 2


async def test_multipart_form_is_accepted_too(api: ApiHarness) -> None:
    r = await api.client.post("/auth", headers={"Authorization": README_BASIC},
                              files={"username": (None, "dmitrys@xyzrd.com"), "password": (None, "78561"),
                                     "grant_type": (None, "password")})
    assert r.status_code == 200, r.text


async def test_get_auth_describes_the_mx_user(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/auth", headers=api.bearer(token))
    assert r.status_code == 200
    body = r.json()
    assert list(body) == ["mx", "ext", "jid", "softPhonePwd"]
    assert body["ext"] == DEMO_EXT
    assert body["jid"] == str(demo_user(demo_fixture(), DEMO_EXT).jid)  # a string, all 17 digits exact


async def test_missing_authorization_is_401_with_basic_challenge(api: ApiHarness) -> None:
    r = await api.client.post("/auth", content=README_FORM, headers={"Content-Type": FORM_TYPE})
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized"}
    assert r.headers["www-authenticate"] == BASIC_CHALLENGE


async def test_wrong_client_secret_is_403(api: ApiHarness) -> None:
    r = await api.client.post("/auth", content=README_FORM,
                              headers={"Authorization": basic(CLIENT_ID, "wrong"), "Content-Type": FORM_TYPE})
    assert r.status_code == 403
    assert r.json() == {"error": "bad client-id or app secret"}


async def test_undecodable_basic_is_403_forbidden(api: ApiHarness) -> None:
    r = await api.client.post("/auth", content=README_FORM,
                              headers={"Authorization": "Basic !!!", "Content-Type": FORM_TYPE})
    assert r.status_code == 403
    assert r.json() == {"error": "forbidden"}


@pytest.mark.parametrize("form", ["username=dmitrys%40xyzrd.com&password=78561&grant_type=client_credentials",
                                  "username=dmitrys%40xyzrd.com&password=78561"])
async def test_grant_type_other_than_password_is_403(api: ApiHarness, form: str) -> None:
    r = await api.client.post("/auth", content=form, headers={"Authorization": README_BASIC,
                                                              "Content-Type": FORM_TYPE})
    assert r.status_code == 403
    assert r.json() == {"error": "bad grant_type"}


async def test_json_body_is_not_a_form_so_grant_type_is_missing(api: ApiHarness) -> None:
    r = await api.client.post("/auth", json={"username": "dmitrys@xyzrd.com", "password": "78561",
                                             "grant_type": "password"}, headers={"Authorization": README_BASIC})
    assert r.status_code == 403
    assert r.json() == {"error": "bad grant_type"}


@pytest.mark.parametrize("username", ["dmitrys%40xyzrd.com", "nobody%40xyzrd.com", ""])
async def test_wrong_password_and_unknown_user_get_one_and_the_same_answer(api: ApiHarness, username: str) -> None:
    r = await api.client.post("/auth", content=f"username={username}&password=nope&grant_type=password",
                              headers={"Authorization": README_BASIC, "Content-Type": FORM_TYPE})
    assert (r.status_code, r.json()) == (403, {"error": "forbidden"})


async def test_bearer_on_post_auth_without_azure_goes_to_provisioning(api: ApiHarness) -> None:
    r = await api.client.post("/auth", headers={"Authorization": "Bearer some.azure.token"})
    assert r.status_code == 403  # the static table cannot judge an unvalidated token


async def test_api_route_without_token_is_401_with_bearer_challenge(api: ApiHarness) -> None:
    r = await api.client.get("/contacts")
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized"}
    assert r.headers["www-authenticate"] == BEARER_CHALLENGE


async def test_invalid_token_is_401_invalid_token(api: ApiHarness) -> None:
    r = await api.client.get("/contacts", headers={"Authorization": "Bearer abc.def.ghi"})
    assert r.status_code == 401
    assert r.json()["error"].startswith("invalid token")
    assert r.headers["www-authenticate"] == BEARER_CHALLENGE


async def test_validly_signed_token_with_exp_beyond_the_float_range_is_401(api: ApiHarness, token: str) -> None:
    key = await api.ctx.tokens.keyring.signing_key()
    forged = jwt.encode({"exp": 10**400, "iat": 0, "jti": "x", "sub": "mx-login"}, key.private_key,
                        algorithm="ES256", headers={"kid": key.kid, "typ": "JWT"})
    r = await api.client.get("/auth", headers=api.bearer(forged))
    assert r.status_code == 401
    assert r.json() == {"error": "invalid token: bad token claims"}


@pytest.mark.parametrize("path", ["/auth", "/auth/logout"])
async def test_delete_auth_signs_out_and_the_token_stops_working(api: ApiHarness, token: str, path: str) -> None:
    login = (await api.ctx.tokens.verify(token)).sub
    r = await api.client.delete(path, headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert r.json() == {"userLogout": login}
    assert await api.ctx.store.get_user(login) is None
    after = await api.client.get("/contacts", headers=api.bearer(token))
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == BEARER_CHALLENGE
    again = await api.client.delete(path, headers=api.bearer(token))  # the token was revoked with it
    assert (again.status_code, again.json()) == (403, {"error": "invalid token: token revoked"})


async def test_a_token_from_before_a_sign_out_stays_dead_after_signing_in_again(api: ApiHarness, token: str) -> None:
    assert (await api.client.delete("/auth", headers=api.bearer(token))).status_code == 200
    fresh = await api.sign_in()
    assert (await api.client.get("/auth", headers=api.bearer(fresh))).status_code == 200
    old = await api.client.get("/auth", headers=api.bearer(token))
    assert (old.status_code, old.json()) == (401, {"error": "invalid token: token revoked"})
    assert (await api.client.get("/auth", headers=api.bearer(fresh))).status_code == 200


async def test_delete_auth_without_bearer_is_403_without_challenge(api: ApiHarness) -> None:
    r = await api.client.delete("/auth")
    assert r.status_code == 403
    assert r.json() == {"error": "bearer authorization token required"}
    assert "www-authenticate" not in r.headers


async def test_delete_auth_with_invalid_token_is_403(api: ApiHarness) -> None:
    r = await api.client.delete("/auth", headers={"Authorization": "Bearer nonsense"})
    assert r.status_code == 403
    assert r.json()["error"].startswith("invalid token")
    assert "www-authenticate" not in r.headers


async def test_second_user_signs_in_independently(api: ApiHarness, token: str) -> None:
    other = await api.sign_in("peterh@xyzrd.com", "peter-pw")
    r = await api.client.get("/auth", headers=api.bearer(other))
    assert r.json()["ext"] == "3044"
    assert (await api.client.get("/auth", headers=api.bearer(token))).json()["ext"] == DEMO_EXT


async def test_sign_in_over_real_http(api: ApiHarness, live_client: httpx.AsyncClient) -> None:
    r = await live_client.post("/auth", content=README_FORM,
                               headers={"Authorization": README_BASIC, "Content-Type": FORM_TYPE})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"


async def test_get_auth_is_rendered_per_mx_session_and_a_new_session_answers_afresh(
    api: ApiHarness, token: str
) -> None:
    """The answer is kept with the session view; a new MX session (here: after the MX dropped
    the old one and the user signed in again, with the extension renumbered meanwhile) is
    described by its own login answer, not by the old bytes."""
    import asyncio

    first = await api.client.get("/auth", headers=api.bearer(token))
    assert (await api.client.get("/auth", headers=api.bearer(token))).content == first.content
    assert first.json()["ext"] == DEMO_EXT
    login = (await api.ctx.tokens.verify(token)).sub
    await api.sim.update_directory_entry(DEMO_EXT, "3999")
    await api.sim.drop_session(login)
    for _ in range(200):
        if api.ctx.sessions.state(login) != "live":
            break
        await asyncio.sleep(0.02)
    fresh = await api.sign_in()
    again = await api.client.get("/auth", headers=api.bearer(fresh))
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "ext": "3999"}

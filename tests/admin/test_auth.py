"""``[server] adminToken``: bearer (or Basic password) required on every admin route but
``/healthz``; constant-time comparison; JSON 401 with a challenge; no auth without a token."""

from __future__ import annotations

import base64

import pytest

from admin.auth import presented_secret, token_matches
from tests.admin.conftest import ADMIN_TOKEN, AdminHarness

ROUTES = ["/apps", "/connections", "/tokens", "/users", "/sessions", "/push", "/readyz", "/metrics", "/nope"]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", ROUTES)
async def test_without_credentials_every_route_but_healthz_is_401_json(with_token: AdminHarness, path: str) -> None:
    r = await with_token.client.get(path)
    assert (r.status_code, r.json()) == (401, {"error": "unauthorized"})
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_post_users_needs_the_token_too_and_nobody_is_signed_out(with_token: AdminHarness) -> None:
    await with_token.sign_in()
    r = await with_token.client.post("/users", data={"login": "dmitrys"})
    assert r.status_code == 401
    r = await with_token.client.get("/users", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert "dmitrys" in r.json()["users"]


async def test_healthz_stays_open_for_liveness_probes(with_token: AdminHarness) -> None:
    r = await with_token.client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        {"Authorization": f"bearer   {ADMIN_TOKEN}"},
        basic("admin", ADMIN_TOKEN),
        basic("", ADMIN_TOKEN),
    ],
)
async def test_the_token_as_bearer_or_basic_password_opens_every_route(
    with_token: AdminHarness, headers: dict[str, str]
) -> None:
    r = await with_token.client.get("/apps", headers=headers)
    assert r.status_code == 200
    r = await with_token.client.get("/metrics", headers=headers)
    assert r.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        {"Authorization": "Bearer "},
        {"Authorization": ADMIN_TOKEN},
        {"Authorization": f"Token {ADMIN_TOKEN}"},
        basic(ADMIN_TOKEN, "wrong"),
        {"Authorization": "Basic !!!notbase64"},
        {"X-Admin-Token": ADMIN_TOKEN},
    ],
)
async def test_wrong_or_malformed_credentials_are_401(with_token: AdminHarness, headers: dict[str, str]) -> None:
    r = await with_token.client.get("/apps", headers=headers)
    assert (r.status_code, r.json()) == (401, {"error": "unauthorized"})


async def test_without_a_configured_token_no_auth_is_asked(admin: AdminHarness) -> None:
    assert (await admin.client.get("/apps")).status_code == 200
    assert (await admin.client.get("/apps", headers={"Authorization": "Bearer whatever"})).status_code == 200


async def test_the_admin_token_never_appears_in_answers(with_token: AdminHarness) -> None:
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for path in ROUTES:
        for headers in ({}, auth):
            assert ADMIN_TOKEN not in (await with_token.client.get(path, headers=headers)).text


async def test_refused_requests_are_counted_without_a_route(with_token: AdminHarness) -> None:
    await with_token.client.get("/users")
    value = with_token.metrics.registry.get_sample_value(
        "mxproxy_http_requests_total", {"api": "admin", "method": "GET", "route": "unmatched", "status": "401"})
    assert value == 1.0


def test_presented_secret_reads_bearer_and_basic_passwords_only() -> None:
    assert presented_secret("Bearer abc") == "abc"
    assert presented_secret("Basic " + base64.b64encode(b"u:p:q").decode()) == "p:q"
    assert presented_secret("Basic " + base64.b64encode(b"nocolon").decode()) is None
    assert presented_secret("Basic " + base64.b64encode(b"\xff:x").decode()) is None
    assert presented_secret("Digest abc") is None
    assert presented_secret("") is None


def test_token_matches_needs_the_exact_token() -> None:
    assert token_matches("s3cret", "s3cret")
    assert not token_matches("s3cre", "s3cret")
    assert not token_matches(None, "s3cret")
    assert not token_matches("", "s3cret")

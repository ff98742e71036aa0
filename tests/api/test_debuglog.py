"""``GET /debug/log``: client-app Basic auth, the configured file, secrets redacted."""

from __future__ import annotations

import pytest

from mxproxy.api.debuglog import redact
from tests.api.conftest import CLIENT_ID, README_BASIC, ApiHarness, basic

LOG = """\
2024-01-01 INFO mxproxy: started
2024-01-01 DEBUG csta: send <loginRequest type="User"><userName>dmitrys</userName><pwd>c2VjcmV0aGFzaA==</pwd></loginRequest>
2024-01-01 DEBUG http: POST /auth body username=dmitrys%40xyzrd.com&password=78561&grant_type=password
2024-01-01 DEBUG http: Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkbWl0cnlzIn0.c2lnbmF0dXJl
2024-01-01 DEBUG http: Authorization: Basic Y2xpZW50NzY2NDpNbXgwT2xXRURJRGhQR2dHcExRRnhCd3BDU1BwOUlJWQ==
2024-01-01 DEBUG prov: {"account_name": "dmitrys", "account_pwd": "hunter2"}
"""

SECRETS = ["c2VjcmV0aGFzaA==", "78561", "eyJhbGciOiJFUzI1NiJ9", "c2lnbmF0dXJl",
           "Y2xpZW50NzY2NDpNbXgwT2xXRURJRGhQR2dHcExRRnhCd3BDU1BwOUlJWQ==", "hunter2"]


async def test_log_is_served_with_secrets_redacted(api: ApiHarness) -> None:
    api.log_path.write_text(LOG)
    r = await api.client.get("/debug/log", headers={"Authorization": README_BASIC})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "mxproxy: started" in text
    assert "<pwd>[REDACTED]</pwd>" in text
    assert "username=dmitrys%40xyzrd.com" in text
    for secret in SECRETS:
        assert secret not in text
    assert len(text.splitlines()) == len(LOG.splitlines())


async def test_missing_credentials_are_401_with_basic_challenge(api: ApiHarness) -> None:
    api.log_path.write_text(LOG)
    r = await api.client.get("/debug/log")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Basic realm="MXProxy client application"'


async def test_wrong_client_is_403(api: ApiHarness) -> None:
    api.log_path.write_text(LOG)
    r = await api.client.get("/debug/log", headers={"Authorization": basic(CLIENT_ID, "nope")})
    assert r.status_code == 403


async def test_missing_file_is_404(api: ApiHarness) -> None:
    r = await api.client.get("/debug/log", headers={"Authorization": README_BASIC})
    assert r.status_code == 404
    assert r.json() == {"error": "not found"}


@pytest.mark.parametrize("line,secret", [
    ('loginRequest softPhonePwd="EqNe45DYvZH2va1gesL7AA1ldtP04j4a"', "EqNe45DYvZH2va1gesL7AA1ldtP04j4a"),
    ("client_secret=abc123&x=1", "abc123"),
    ("<password>pw</password>", ">pw<"),
])
def test_redact_catches_more_secret_shapes(line: str, secret: str) -> None:
    assert secret not in redact(line)

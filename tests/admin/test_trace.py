"""``POST /trace``: one user's CSTA traffic recorded to ``[mx] traceDir`` for N minutes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import AsyncIterator

import pytest

from tests.admin.conftest import AdminHarness, build_admin


@pytest.fixture
async def tracing_admin(tmp_path: Path) -> AsyncIterator[AdminHarness]:
    async with build_admin(tmp_path, mx={"traceDir": "traces"}) as harness:
        yield harness


def frames(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_tracing_a_signed_in_user_records_the_live_session_redacted(tracing_admin: AdminHarness,
                                                                         tmp_path: Path) -> None:
    admin = tracing_admin
    token = await admin.sign_in()
    r = await admin.client.post("/trace", json={"login": "dmitrys@xyzrd.com", "minutes": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["login"], body["live"], body["directory"]) == ("dmitrys", True, str(tmp_path / "traces"))
    assert (await admin.public.get("/voicemails/82", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    [trace] = list((tmp_path / "traces").glob("dmitrys-*.jsonl"))
    assert trace.stat().st_mode & 0o777 == 0o600
    lines = frames(trace)
    assert {"t", "dir", "id", "xml"} == set(lines[0])
    sent = [f for f in lines if f["dir"] == "out" and f["xml"].startswith("<MailReceiveIncoming>")]
    chunks = [f for f in lines if f["dir"] == "in" and "<mediaContent>" in f["xml"]]
    assert sent and chunks and {f["id"] for f in chunks} <= {f["id"] for f in sent}
    assert all(set(f["xml"].split("<mediaContent>")[1].split("</mediaContent>")[0]) <= {"A", "="} for f in chunks)


async def test_a_login_within_the_time_is_traced_from_its_first_frame(tracing_admin: AdminHarness,
                                                                     tmp_path: Path) -> None:
    admin = tracing_admin
    r = await admin.client.post("/trace", json={"login": "dmitrys", "minutes": 1, "pseudonymise": True})
    assert r.json()["live"] is False
    await admin.sign_in()
    [trace] = list((tmp_path / "traces").glob("dmitrys-*.jsonl"))
    first, reply = frames(trace)[:2]
    assert first["dir"] == "out" and "<pwd>[redacted]</pwd>" in first["xml"] and "78561" not in trace.read_text()
    assert reply["xml"].startswith("<loginResponce") and 'softPhonePwd="[redacted]"' in reply["xml"]
    assert "<userName>dmitrys</userName>" not in first["xml"]  # pseudonymised
    stop = await admin.client.post("/trace", json={"login": "dmitrys", "minutes": 0})
    assert stop.json()["until"] == 0


@pytest.mark.parametrize("body, fragment", [
    ({"minutes": 5}, '"login"'), ({"login": "dmitrys", "minutes": -1}, '"minutes"'),
    ({"login": "dmitrys", "minutes": 99999}, '"minutes"'), ({"login": "dmitrys", "pseudonymise": "yes"}, '"pseudonymise"'),
    ({"login": "dmitrys", "extra": 1}, '"extra"'),
])
async def test_bad_trace_requests_are_400(tracing_admin: AdminHarness, body: dict, fragment: str) -> None:
    r = await tracing_admin.client.post("/trace", json=body)
    assert r.status_code == 400 and fragment in r.json()["error"]


async def test_without_a_trace_dir_tracing_is_501(admin: AdminHarness) -> None:
    r = await admin.client.post("/trace", json={"login": "dmitrys", "minutes": 5})
    assert r.status_code == 501 and "traceDir" in r.json()["error"]

"""``/conferences``: server info, list, create (the README's body), update, join, delete."""

from __future__ import annotations

import pytest

from tests.api.conftest import ApiHarness

#: every route test here runs against each MX simulator profile; MX-free ones only on "spec"
pytestmark = pytest.mark.profiles

README_CONFERENCE = """{
    "Id": "",
    "ownerId": 43892779647572507,
    "name": "Test Conf",
    "accessId": 47281964,
    "type": "Once",
    "startDate": 1516021200,
    "duration": 30,
    "waitForOwner": false,
    "delOnOwnerLeave": false,
    "ws": "None",
    "wsType": "Undefined"
}"""
CONFERENCE_KEYS = ["Id", "ownerId", "name", "accessId", "type", "startDate", "duration", "waitForOwner",
                   "delOnOwnerLeave", "ws", "wsType"]


async def test_server_info_shape(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/conferences/info", headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert list(r.json()["conferences"]) == ["ext", "did", "subject", "body", "meeting"]


async def test_create_update_list_delete(api: ApiHarness, token: str) -> None:
    headers = {**api.bearer(token), "Content-Type": "application/json; charset=utf-8"}
    created = await api.client.post("/conferences", content=README_CONFERENCE, headers=headers)
    assert created.status_code == 200, created.text
    conf = created.json()["conference"]
    assert [k for k in conf if k != "description"] == CONFERENCE_KEYS
    assert conf["ownerId"] == 43892779647572507  # exact, a JSON number as the original
    assert conf["name"] == "Test Conf" and conf["Id"]
    conf_id = conf["Id"]

    listed = (await api.client.get("/conferences", headers=api.bearer(token))).json()["conferences"]
    assert conf_id in {c["Id"] for c in listed}

    updated = await api.client.put(f"/conferences/{conf_id}",
                                   content=README_CONFERENCE.replace("Test Conf", "Renamed"), headers=headers)
    assert updated.status_code == 200, updated.text
    assert updated.json()["conference"]["Id"] == conf_id
    assert updated.json()["conference"]["name"] == "Renamed"

    deleted = await api.client.delete(f"/conferences/{conf_id}", headers=api.bearer(token))
    assert deleted.status_code == 204, deleted.text
    listed = (await api.client.get("/conferences", headers=api.bearer(token))).json()["conferences"]
    assert conf_id not in {c["Id"] for c in listed}


@pytest.mark.profiles("spec")  # not protocol-sensitive
async def test_owner_defaults_to_the_user(api: ApiHarness, token: str) -> None:
    jid = int((await api.client.get("/auth", headers=api.bearer(token))).json()["jid"])
    r = await api.client.post("/conferences", json={"name": "Mine", "accessId": 123, "type": "Once"},
                              headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["conference"]["ownerId"] == jid


async def test_delete_unknown_conference_is_404(api: ApiHarness, token: str) -> None:
    r = await api.client.delete("/conferences/99999", headers=api.bearer(token))
    assert r.status_code == 404


async def test_join_takes_an_access_id(api: ApiHarness, token: str) -> None:
    r = await api.client.post("/conferences/77", json={"accessId": 47281964}, headers=api.bearer(token))
    assert r.status_code in (204, 400), r.text  # the MX may refuse an unknown call; never 500
    bad = await api.client.post("/conferences/77", json={"accessId": "x"}, headers=api.bearer(token))
    assert bad.status_code == 400


# --- limits: conferences per user, an MX answer larger than one CSTA frame ----------------------


def _with_conference_cap(api: ApiHarness, cap: int) -> None:
    from dataclasses import replace

    api.ctx.config = replace(api.ctx.config, server=replace(api.ctx.config.server, max_conferences=cap))


async def test_creating_beyond_the_per_user_cap_is_a_clear_409(api: ApiHarness, token: str) -> None:
    _with_conference_cap(api, 3)  # the demo user already owns "Weekly sync"
    body = {"name": "Extra", "accessId": 123, "type": "Once"}
    for _ in range(2):
        assert (await api.client.post("/conferences", json=body, headers=api.bearer(token))).status_code == 200
    refused = await api.client.post("/conferences", json=body, headers=api.bearer(token))
    assert refused.status_code == 409
    assert refused.json() == {"error": "conference limit reached: at most 3 conferences per user; delete one first"}
    # naming another owner does not get round it (that owner is counted too)
    jid = int((await api.client.get("/auth", headers=api.bearer(token))).json()["jid"])
    assert (await api.client.post("/conferences", json={**body, "ownerId": jid + 1},
                                  headers=api.bearer(token))).status_code == 409
    assert (await api.client.delete("/conferences/1", headers=api.bearer(token))).status_code == 204
    assert (await api.client.post("/conferences", json=body, headers=api.bearer(token))).status_code == 200


async def test_concurrent_creates_cannot_pass_the_cap_together(api: ApiHarness, token: str) -> None:
    import asyncio

    _with_conference_cap(api, 4)
    answers = await asyncio.gather(*(api.client.post("/conferences", json={"name": f"c{i}", "type": "Once"},
                                                     headers=api.bearer(token)) for i in range(8)))
    assert sorted(r.status_code for r in answers) == [200] * 3 + [409] * 5
    listed = (await api.client.get("/conferences", headers=api.bearer(token))).json()["conferences"]
    assert len(listed) == 4


def _fill_mx_with_conferences(api: ApiHarness, count: int) -> None:
    from mxproxy.simulator import Conference as SimConference
    from mxproxy.simulator import Quirks

    api.sim.quirks = Quirks(oversized_answer="wrap")  # how a writer with a 16-bit length sends it
    api.sim.fixture.conferences.extend(
        SimConference(conf_id=str(100 + i), owner_id=43884851147406100 + i % 50, name=f"Conference {i}",
                      access_id=20_000_000 + i, description="x" * 120) for i in range(count))


async def test_a_conference_list_larger_than_one_frame_is_answered(api: ApiHarness, token: str) -> None:
    _fill_mx_with_conferences(api, 300)
    r = await api.client.get("/conferences", headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert len(r.json()["conferences"]) == 301


async def test_an_mx_answer_over_the_limit_is_a_clear_502_not_a_timeout(api: ApiHarness, token: str) -> None:
    _fill_mx_with_conferences(api, 4000)
    r = await api.client.get("/conferences", headers=api.bearer(token))
    assert r.status_code == 502
    assert "MX answer is larger than 1048576 bytes" in r.json()["error"]
    assert "too many conferences" in r.json()["error"]
    # the session is still in step: the next command of the same user is answered
    assert (await api.client.get("/conferences/info", headers=api.bearer(token))).status_code == 200

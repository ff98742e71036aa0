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

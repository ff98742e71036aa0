"""``/calls``: call log, call mode, call control and call info, against the simulator."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import pytest

from tests.api.conftest import DEMO_EXT, ApiHarness, build_api
from tests.api.readme_examples import README_CALL_LOG

#: every route test here runs against each MX simulator profile; MX-free ones only on "spec"
pytestmark = pytest.mark.profiles


async def _wait_call_info(api: ApiHarness, token: str, call_id: int) -> dict:
    for _ in range(200):
        r = await api.client.get(f"/calls/{call_id}", headers=api.bearer(token))
        if r.status_code == 200:
            return r.json()
        await asyncio.sleep(0.02)
    raise AssertionError(f"call {call_id} never reached the call-info cache")


# --- call log -------------------------------------------------------------------------------------


def _login_of(api: ApiHarness) -> str:
    """The MX login of the README's signed-in user (dmitrys)."""
    return next(u.login for u in api.sim.fixture.users if u.ext == DEMO_EXT)


def _mx_queries(api: ApiHarness) -> int:
    """``iq`` commands (the call-log query is one) the simulator got from the user, all sessions."""
    login = _login_of(api)
    return sum(info.commands.count("iq") for info in api.sim.sessions() if info.login == login)


def _record_ids(r: object) -> list[int]:
    return [item["record_id"] for item in r.json()["callLog"]]  # type: ignore[attr-defined]


async def test_call_log_has_the_readme_keys(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/calls", headers=api.bearer(token))
    assert r.status_code == 200
    log = r.json()["callLog"]
    by_id = {item["record_id"]: item for item in log}
    assert [item["record_id"] for item in log] == sorted(by_id)
    for example in README_CALL_LOG:
        ours = by_id[example["record_id"]]
        # README quirks: "missed" omitted when false (we always send it), "extension" is really "ext" (§9.27)
        expected = {"ext" if k == "extension" else k for k in example} | {"missed"}
        assert set(ours) == expected, example["record_id"]
        assert ours["missed"] is example.get("missed", False)


@pytest.mark.parametrize("entries", [0, 21, 42, 43])
async def test_call_log_of_any_size_is_complete(api: ApiHarness, token: str, entries: int) -> None:
    """Chunk boundaries (21 per chunk): an empty log, exactly one and two full chunks, one more."""
    mx_login = next(u.login for u in api.sim.fixture.users if u.ext == DEMO_EXT)
    api.sim.fixture.set_call_log(mx_login, entries, first_record_id=500)
    r = await api.client.get("/calls", headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert _record_ids(r) == list(range(500, 500 + entries))


@pytest.mark.profiles("spec")
@pytest.mark.parametrize("timestamp", ["1504522727", "2017-09-04T10:58:47Z", "2017-09-04t10:58:47.123456789z",
                                       "2017-09-04T13:58:47+03:00", "001504522727"])
async def test_call_log_timestamp_filters(api: ApiHarness, token: str, timestamp: str) -> None:
    r = await api.client.get("/calls", params={"timestamp": timestamp}, headers=api.bearer(token))
    assert r.status_code == 200
    full = (await api.client.get("/calls", headers=api.bearer(token))).json()["callLog"]
    assert len(r.json()["callLog"]) < len(full)


@pytest.mark.profiles("spec")
@pytest.mark.parametrize("timestamp", ["yesterday", "2017-13-45", "1.5",
                                       # what int() / fromisoformat() took beyond "Unix seconds or RFC 3339"
                                       "1_504_522_727", "+1504522727", " 1504522727", "\u0661\u0662",
                                       "2017-09-04 10:58:47Z", "2017-09-04T10:58:47", "2017-09-04T10:58Z",
                                       "2017-02-30T10:58:47Z", "20170904T105847Z"])
async def test_bad_timestamp_is_400(api: ApiHarness, token: str, timestamp: str) -> None:
    r = await api.client.get("/calls", params={"timestamp": timestamp}, headers=api.bearer(token))
    assert r.status_code == 400
    assert r.json() == {"error": "bad timestamp format"}


async def test_far_future_timestamp_is_an_empty_log_not_an_error(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/calls", params={"timestamp": "9" * 40}, headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert r.json() == {"callLog": []}


@pytest.mark.profiles("spec")
async def test_leap_second_timestamp_is_accepted(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/calls", params={"timestamp": "2016-12-31T23:59:60Z"}, headers=api.bearer(token))
    assert r.status_code == 200, r.text


# --- call mode ------------------------------------------------------------------------------------


async def test_readme_call_mode(api: ApiHarness, token: str) -> None:
    r = await api.client.patch("/calls", content='{"remote":true,"device":"79031744445"}',
                               headers={**api.bearer(token), "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert r.json() == {"callMode": {"remote": True, "device": "79031744445", "ringDelay": 1, "vmDelay": 30}}


@pytest.mark.profiles("spec")
async def test_call_mode_with_empty_body_means_local(api: ApiHarness, token: str) -> None:
    r = await api.client.patch("/calls", headers=api.bearer(token))
    assert r.status_code == 200
    assert r.json() == {"callMode": {"remote": False, "device": "", "ringDelay": 1, "vmDelay": 30}}


@pytest.mark.profiles("spec")
async def test_call_mode_from_a_form(api: ApiHarness, token: str) -> None:
    r = await api.client.patch("/calls", data={"remote": "", "device": "phone", "ringDelay": "5"},
                               headers=api.bearer(token))
    assert r.status_code == 200
    assert r.json()["callMode"] == {"remote": True, "device": "phone", "ringDelay": 5, "vmDelay": 30}


@pytest.mark.profiles("spec")
async def test_call_mode_json_numbers_with_a_zero_fraction_are_integers(api: ApiHarness, token: str) -> None:
    r = await api.client.patch("/calls", json={"ringDelay": 5.0, "vmDelay": 20}, headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["callMode"]["ringDelay"] == 5


@pytest.mark.profiles("spec")
@pytest.mark.parametrize("form,expected", [
    ({"remote": "TRUE"}, True), ({"remote": "Off"}, False), ({"remote": "0"}, False), ({"remote": ""}, True),
    ({"ringDelay": ""}, False), ({"ringDelay": "007"}, False),
])
async def test_call_mode_form_values_as_documented(api: ApiHarness, token: str, form: dict, expected: bool) -> None:
    r = await api.client.patch("/calls", data=form, headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["callMode"]["remote"] is expected


@pytest.mark.profiles("spec")
@pytest.mark.parametrize("form", [{"remote": " true"}, {"remote": "2"}, {"ringDelay": " 5"},
                                  {"ringDelay": "1_0"}, {"ringDelay": "+5"}, {"vmDelay": "\u0665"},
                                  {"ringDelay": "65536"}])
async def test_call_mode_form_values_outside_the_document_are_400(api: ApiHarness, token: str,
                                                                  form: dict) -> None:
    r = await api.client.patch("/calls", data=form, headers=api.bearer(token))
    assert r.status_code == 400, r.text
    assert next(iter(form)) in r.json()["error"]


@pytest.mark.profiles("spec")
@pytest.mark.parametrize("body,fragment", [
    ('{"remote":tru', "malformed JSON"),
    ('{"ringDelay":5.5}', '"ringDelay"'),
    ('{"remote":"yes"}', '"remote"'),
    ('{"ringDelay":"x"}', '"ringDelay"'),
    ('[1,2]', "object"),
])
async def test_bad_call_mode_bodies_are_400(api: ApiHarness, token: str, body: str, fragment: str) -> None:
    r = await api.client.patch("/calls", content=body,
                               headers={**api.bearer(token), "Content-Type": "application/json"})
    assert r.status_code == 400
    assert fragment in r.json()["error"]


# --- make call / info / control -------------------------------------------------------------------


async def test_readme_make_call(api: ApiHarness, token: str) -> None:
    r = await api.client.post("/calls", json={"from": "79031744445", "to": "79031744437"},
                              headers=api.bearer(token))
    assert r.status_code == 200, r.text
    made = r.json()["makeCall"]
    assert list(made) == ["callId", "deviceId", "calledDevice"]
    assert isinstance(made["callId"], int)
    assert made["calledDevice"] == "79031744437"


@pytest.mark.profiles("spec")
async def test_make_call_without_to_is_400(api: ApiHarness, token: str) -> None:
    r = await api.client.post("/calls", json={"from": "3095"}, headers=api.bearer(token))
    assert r.status_code == 400


async def test_incoming_call_info_hold_unhold_and_hangup(api: ApiHarness, token: str) -> None:
    call_id = await api.sim.incoming_call(to_ext=DEMO_EXT, from_number="3044", from_name="Peter Hyde")
    info = (await _wait_call_info(api, token, call_id))["callInfo"]
    assert info["type"] == "Delivered" and info["callId"] == call_id

    await api.sim.answer(call_id)
    held = await api.client.put(f"/calls/{call_id}/hold", headers=api.bearer(token))
    assert held.status_code == 200, held.text
    assert held.json()["held"]["callId"] == call_id
    retrieved = await api.client.put(f"/calls/{call_id}/unhold", headers=api.bearer(token))
    assert retrieved.status_code == 200, retrieved.text
    assert retrieved.json()["retrieved"]["callId"] == call_id

    cleared = await api.client.delete(f"/calls/{call_id}", headers=api.bearer(token))
    assert cleared.status_code == 200, cleared.text
    body = cleared.json()["connectionCleared"]
    assert body["callId"] == call_id and body["type"] == "ConnectionCleared"


async def test_sip_answer_and_transfer_echo_their_parameters(api: ApiHarness, token: str) -> None:
    call_id = await api.sim.incoming_call(to_ext=DEMO_EXT, from_number="3044", from_name="Peter Hyde")
    await _wait_call_info(api, token, call_id)
    r = await api.client.put(f"/calls/{call_id}", json={"device": "sipPhone", "timeout": 30},
                             headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert r.json() == {"sipAnswer": {"callId": call_id, "device": "sipPhone", "timeout": 30, "assign": False}}
    t = await api.client.post(f"/calls/{call_id}", json={"device": "sipPhone", "to": "12345"},
                              headers=api.bearer(token))
    assert t.status_code == 200, t.text
    assert t.json() == {"transfer": {"callId": call_id, "device": "sipPhone", "to": "12345"}}


@pytest.mark.profiles("spec")
async def test_unknown_call_info_is_404(api: ApiHarness, token: str) -> None:
    r = await api.client.get("/calls/987654321", headers=api.bearer(token))
    assert r.status_code == 404
    assert r.json() == {"error": "not found"}


@pytest.mark.profiles("spec")
@pytest.mark.parametrize("raw", ["abc", "99999999999999999999", "1.5", "1_0", "+1", "%20%31", "%D9%A1"])
async def test_non_int64_call_id_is_404(api: ApiHarness, token: str, raw: str) -> None:
    r = await api.client.get(f"/calls/{raw}", headers=api.bearer(token))
    assert r.status_code == 404
    assert "bad call id" in r.json()["error"]


async def test_csta_error_on_unknown_call_is_400(api: ApiHarness, token: str) -> None:
    r = await api.client.put("/calls/424242/hold", headers=api.bearer(token))
    assert r.status_code == 400, r.text
    assert r.json()["error"]


async def test_assign_device_is_204(api: ApiHarness, token: str) -> None:
    r = await api.client.patch("/calls/sipPhone", headers=api.bearer(token))
    assert r.status_code == 204, r.text
    assert r.content == b""


async def test_record_start_stop_and_conference_from_call(api: ApiHarness, token: str) -> None:
    call_id = await api.sim.incoming_call(to_ext=DEMO_EXT, from_number="3044", from_name="Peter Hyde")
    await _wait_call_info(api, token, call_id)
    await api.sim.answer(call_id)
    body = {"deviceID": DEMO_EXT}
    assert (await api.client.post(f"/calls/{call_id}/record", json=body, headers=api.bearer(token))).status_code == 204
    stop = await api.client.post(f"/calls/{call_id}/record/stop", json=body, headers=api.bearer(token))
    assert stop.status_code == 204, stop.text
    conf = await api.client.post(f"/calls/{call_id}/conference", json={"ownerCallId": call_id},
                                 headers=api.bearer(token))
    assert conf.status_code in (204, 400), conf.text  # 400 = the MX refused, never a 500


# --- timeouts and reconnects ------------------------------------------------------------------------


@pytest.fixture
async def quick_timeout_api(tmp_path: Path, sim_profile: str) -> AsyncIterator[ApiHarness]:
    async with build_api(tmp_path, response_timeout="300ms", profile=sim_profile) as harness:
        yield harness


@pytest.mark.parametrize("method, path, command", [("GET", "/services", "GetServiceList"), ("GET", "/contacts", "iq"),
                                                   ("DELETE", "/calls/{call}", "ClearConnection"),
                                                   ("PUT", "/calls/{call}/hold", "HoldCall")])
async def test_mx_timeout_is_504(quick_timeout_api: ApiHarness, method: str, path: str, command: str) -> None:
    api = quick_timeout_api
    token = await api.sign_in()
    call_id = await api.sim.incoming_call(to_ext=DEMO_EXT, from_number="3044", from_name="Peter Hyde")
    await _wait_call_info(api, token, call_id)
    api.sim.set_delay(3.0, command=command)
    r = await api.client.request(method, path.format(call=call_id), headers=api.bearer(token))
    assert r.status_code == 504
    assert r.json() == {"error": "mx response timeout"}


@pytest.mark.profiles("spec")  # not protocol-sensitive
async def test_dropped_mx_session_is_503_with_retry_after(api: ApiHarness, token: str) -> None:
    login = (await api.ctx.tokens.verify(token)).sub
    await api.sim.drop_session(login)  # the MX login is the JWT subject
    for _ in range(200):
        if api.ctx.sessions.state(login) != "live":
            break
        await asyncio.sleep(0.02)
    r = await api.client.get("/services", headers=api.bearer(token))
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) >= 1


# --- call-log cache ---------------------------------------------------------------------------------


@pytest.mark.profiles("spec")  # not protocol-sensitive
async def test_second_call_log_request_is_served_without_asking_the_mx(api: ApiHarness, token: str) -> None:
    first = await api.client.get("/calls", headers=api.bearer(token))
    queries = _mx_queries(api)
    second = await api.client.get("/calls", headers=api.bearer(token))
    assert second.status_code == 200 and second.json() == first.json()
    assert _mx_queries(api) == queries
    # another ``timestamp`` is another query, cached on its own
    await api.client.get("/calls", params={"timestamp": "1504522727"}, headers=api.bearer(token))
    assert _mx_queries(api) == queries + 1
    assert api.ctx.sessions.get(_login_of(api)).call_log_cache.fetches == 2


@pytest.mark.profiles("spec")  # not protocol-sensitive
async def test_concurrent_call_log_requests_share_one_mx_query(api: ApiHarness, token: str) -> None:
    api.sim.set_delay(0.3, "iq")  # the MX is slow: every request arrives while the query runs
    queries = _mx_queries(api)
    answers = await asyncio.gather(*(api.client.get("/calls", headers=api.bearer(token)) for _ in range(6)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.text for r in answers}) == 1
    assert _mx_queries(api) == queries + 1


async def test_a_finished_call_refreshes_the_call_log(api: ApiHarness, token: str) -> None:
    login = _login_of(api)
    before = _record_ids(await api.client.get("/calls", headers=api.bearer(token)))
    call_id = await api.sim.incoming_call(to_ext=DEMO_EXT, from_number="+15125550100", from_name="Outside")
    await _wait_call_info(api, token, call_id)
    assert _record_ids(await api.client.get("/calls", headers=api.bearer(token))) == before  # still cached
    await api.sim.hangup(call_id)  # the MX (simulator) writes the missed call's record as the call ends
    session = api.ctx.sessions.get(login)
    for _ in range(200):  # until the owner consumed ConnectionCleared
        if session.calls.get(call_id) is None:
            break
        await asyncio.sleep(0.02)
    log = (await api.client.get("/calls", headers=api.bearer(token))).json()["callLog"]
    assert [item["record_id"] for item in log][:-1] == before and log[-1]["record_id"] > max(before)
    new = log[-1]
    assert (new["direction"], new["missed"], new["callingPartyNo"], new["originalCalledPartyNo"]) == (
        "incoming", True, "+15125550100", DEMO_EXT)


async def test_hanging_up_through_the_api_refreshes_the_call_log_at_once(api: ApiHarness, token: str) -> None:
    login = _login_of(api)
    await api.client.get("/calls", headers=api.bearer(token))
    call_id = await api.sim.incoming_call(to_ext=DEMO_EXT, from_number="+15125550100", from_name="Outside")
    await _wait_call_info(api, token, call_id)
    assert api.ctx.sessions.get(login).call_log_cache.cached(None)
    r = await api.client.delete(f"/calls/{call_id}", headers=api.bearer(token))
    assert r.status_code == 200
    # no waiting for the event: the DELETE itself dropped the cached log
    assert not api.ctx.sessions.get(login).call_log_cache.cached(None)

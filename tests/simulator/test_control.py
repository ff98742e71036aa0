"""The control HTTP API, through httpx against the live control server."""

from __future__ import annotations

import asyncio

import httpx

from tests.rawcsta import RawCSTA


async def _monitored(raw_connect, sim) -> RawCSTA:  # type: ignore[no-untyped-def]
    conn = await raw_connect(sim)
    assert (await conn.login("dmitrys", "78561")).name == "loginResponce"
    await conn.send(2, "<MonitorStart><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>")
    await conn.read_until("MonitorStartResponse")
    return conn


async def test_call_answer_hangup_through_the_control_api(start_simulator, raw_connect):
    sim = await start_simulator(control=True)
    conn = await _monitored(raw_connect, sim)
    async with httpx.AsyncClient(base_url=sim.control_url) as http:
        r = await http.post("/calls", json={"to": "3095", "from": "3044", "name": "Peter Hyde"})
        assert r.status_code == 200, r.text
        call_id = r.json()["callId"]
        assert (await conn.read_until("DeliveredEvent")).text("connection/callID") == str(call_id)
        assert (await http.get("/calls")).json()["calls"][0]["callId"] == call_id
        assert (await http.post(f"/calls/{call_id}/answer")).status_code == 204
        assert (await conn.read()).name == "EstablishedEvent"
        assert (await http.post(f"/calls/{call_id}/hangup", json={"by": "3095"})).status_code == 204
        cleared = await conn.read()
        assert cleared.text("releasingDevice/deviceIdentifier") == "3095"
        missing = await http.post(f"/calls/{call_id}/hangup")
        assert missing.status_code == 404 and "error" in missing.json()


async def test_voicemail_and_presence_routes_fire_events(start_simulator, raw_connect):
    sim = await start_simulator(control=True)
    conn = await _monitored(raw_connect, sim)
    async with httpx.AsyncClient(base_url=sim.control_url) as http:
        r = await http.post("/voicemails", json={"ext": "3095", "from": "3044", "name": "Peter Hyde", "duration": 7})
        assert r.status_code == 200, r.text
        event = await conn.read_until("MailIncomingReadyEvent")
        assert event.text("mailId") == str(r.json()["mailId"])
        r = await http.post("/presence", json={"ext": "3044", "status": "BeRightBack", "note": "back soon"})
        assert r.status_code == 204, r.text
        presence = await conn.read_until("presence")
        while presence.root.get("from") != "43884851428118509":
            presence = await conn.read_until("presence")
        assert presence.root.get("status") == "BeRightBack"


async def test_sessions_route_lists_commands_received(start_simulator, raw_connect):
    sim = await start_simulator(control=True)
    await _monitored(raw_connect, sim)
    async with httpx.AsyncClient(base_url=sim.control_url) as http:
        sessions = (await http.get("/sessions")).json()["sessions"]
    assert len(sessions) == 1
    s = sessions[0]
    assert s["login"] == "dmitrys" and s["ext"] == "3095" and s["active"] is True
    assert s["commands"] == ["loginRequest", "MonitorStart"] and list(s["monitors"].values()) == ["3095"]
    assert "pwd" not in str(s) and "78561" not in str(s)


async def test_drop_logout_and_garbage_routes_end_the_users_connection(start_simulator, raw_connect):
    sim = await start_simulator(control=True)
    async with httpx.AsyncClient(base_url=sim.control_url) as http:
        dropped = await _monitored(raw_connect, sim)
        assert (await http.post("/users/dmitrys/drop")).json() == {"sessions": 1}
        assert await dropped.is_closed_by_peer()

        kicked = await _monitored(raw_connect, sim)
        r = await http.post("/users/dmitrys/logout", json={"mode": "admin"})
        assert r.json() == {"sessions": 1}
        frame = await kicked.read_until("Logout")
        assert frame.root.get("mode") == "admin"
        assert await kicked.is_closed_by_peer()

        garbled = await _monitored(raw_connect, sim)
        assert (await http.post("/users/dmitrys/garbage", json={"kind": "header"})).status_code == 200
        header = await garbled.reader.readexactly(8)
        assert not header[4:8].isdigit()

        assert (await http.post("/users/nobody/drop")).status_code == 404
        assert (await http.post("/users/dmitrys/garbage", json={"kind": "nonsense"})).status_code in (400, 404)


async def test_delay_route_holds_replies_and_can_be_cleared(start_simulator, raw_connect):
    sim = await start_simulator(control=True)
    conn = await _monitored(raw_connect, sim)
    async with httpx.AsyncClient(base_url=sim.control_url) as http:
        r = await http.post("/delay", json={"seconds": 30, "command": "GetServiceList"})
        assert r.json() == {"delays": {"GetServiceList": 30.0}}
        await conn.send(3, "<GetServiceList/>")
        await conn.expect_silence(0.2)
        # other commands are still answered while one is held back
        await conn.send(4, "<GetConfServerInfo/>")
        assert (await conn.read()).invoke_id == 4
        assert (await http.delete("/delay")).json() == {"delays": {}}
        await conn.send(5, "<GetServiceList/>")
        assert (await conn.read()).invoke_id == 5


async def test_small_delay_delays_but_answers(start_simulator, raw_connect):
    sim = await start_simulator()
    conn = await _monitored(raw_connect, sim)
    sim.set_delay(0.1)
    await conn.send(3, "<GetServiceList/>")
    await conn.expect_silence(0.02)
    assert (await conn.read()).invoke_id == 3
    sim.set_delay(None)
    sim.set_drop("GetServiceList")
    await conn.send(4, "<GetServiceList/>")
    await conn.expect_silence(0.2)
    sim.set_drop("GetServiceList", False)
    await conn.send(5, "<GetServiceList/>")
    assert (await conn.read()).invoke_id == 5


async def test_bad_input_gets_a_json_error(start_simulator):
    sim = await start_simulator(control=True)
    async with httpx.AsyncClient(base_url=sim.control_url) as http:
        cases = [
            await http.post("/calls", content=b"{not json"),
            await http.post("/calls", json=["a"]),
            await http.post("/calls", json={"to": "3095"}),
            await http.post("/calls", json={"to": "0000", "from": "1"}),
            await http.post("/calls/abc/answer"),
            await http.post("/voicemails", json={"ext": "3095", "from": "1", "duration": "long"}),
            await http.post("/voicemails", json={"ext": "3095", "from": "1", "mediaType": "Video"}),
            await http.post("/delay", json={"seconds": -1}),
            await http.get("/nowhere"),
        ]
    for r in cases:
        assert r.status_code in (400, 404), (r.request.url, r.status_code)
        assert isinstance(r.json()["error"], str) and r.json()["error"]


async def test_unknown_fields_are_refused_naming_the_field(start_simulator):
    """``fromName`` (the demo banner's old mistake) used to be ignored, the call ringing unnamed."""
    sim = await start_simulator(control=True)
    async with httpx.AsyncClient(base_url=sim.control_url) as http:
        cases = [
            ("/calls", {"to": "3095", "from": "3044", "fromName": "Peter Hyde"}, "fromName"),
            ("/voicemails", {"ext": "3095", "from": "3044", "length": 7}, "length"),
            ("/presence", {"ext": "3044", "status": "Away", "mood": "x"}, "mood"),
            ("/delay", {"seconds": 1, "cmd": "MakeCall"}, "cmd"),
            ("/drop", {"command": "ClearConnection", "dropped": False}, "dropped"),
            ("/users/dmitrys/logout", {"mod": "forced"}, "mod"),
            ("/directory", {"ext": "3300", "nickname": "x"}, "nickname"),
        ]
        for path, body, field in cases:
            r = await http.post(path, json=body)
            assert r.status_code == 400, (path, r.text)
            assert r.json()["error"].startswith(f"unknown field {field!r}"), r.json()
        assert sim.calls() == [] and sim.delays() == {}  # nothing half-done


async def test_control_server_stops_with_the_simulator(start_simulator):
    sim = await start_simulator(control=True)
    url = sim.control_url
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/health")).json()["status"] == "ok"
    await sim.stop()
    async with httpx.AsyncClient(base_url=url, timeout=1) as http:
        try:
            await http.get("/health")
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("control API still answering after stop")
    await asyncio.sleep(0)


async def test_directory_routes_add_update_delete_and_notify_ab_watchers(start_simulator, raw_connect):
    sim = await start_simulator(control=True)
    conn = await raw_connect(sim)
    assert (await conn.login("dmitrys", "78561")).name == "loginResponce"
    await conn.send(2, "<MonitorStartAb></MonitorStartAb>")
    await conn.read_until("MonitorStartAbResponse")
    async with httpx.AsyncClient(base_url=sim.control_url) as http:
        r = await http.post("/directory", json={"ext": "3200", "firstName": "Dora", "lastName": "New",
                                                "email": "dora@example.org", "jid": "43884850000000001"})
        assert r.status_code == 200, r.text
        assert r.json() == {"jid": "43884850000000001", "ext": "3200", "firstName": "Dora", "lastName": "New"}
        added = await conn.read_until("AbAddUserEvent")
        assert added.text("abentry/businessPhone") == "3200" and added.text("abentry/email") == "dora@example.org"
        r = await http.patch("/directory/3200", json={"ext": "3201", "lastName": "Newer"})
        assert r.status_code == 200 and r.json()["ext"] == "3201", r.text
        updated = await conn.read_until("AbUpdateUserEvent")
        assert (updated.text("abentry/businessPhone"), updated.text("abentry/lastName")) == ("3201", "Newer")
        assert (await http.delete("/directory/3201")).status_code == 204
        assert (await conn.read_until("AbDeleteUserEvent")).text("userId") == "43884850000000001"
        assert sim.person_by_ext("3201") is None


async def test_directory_routes_refuse_bad_input(start_simulator):
    sim = await start_simulator(control=True)
    async with httpx.AsyncClient(base_url=sim.control_url) as http:
        cases = [
            (http.post("/directory", json={"firstName": "x"}), 400),  # no ext
            (http.post("/directory", json={"ext": "3300", "nickname": "x"}), 400),
            (http.post("/directory", json={"ext": "3300", "jid": "abc"}), 400),
            (http.post("/directory", json={"ext": "3300", "firstName": ["x"]}), 400),
            (http.post("/directory", json={"ext": "3044"}), 409),  # Peter Hyde's extension
            (http.post("/directory", json={"ext": "3300", "jid": "43884851428118509"}), 409),
            (http.post("/directory", content=b"[1]"), 400),
            (http.patch("/directory/9999", json={"lastName": "x"}), 404),
            (http.patch("/directory/3044", json={"ext": "3095"}), 409),
            (http.delete("/directory/9999"), 404),
        ]
        for request, status in cases:
            r = await request
            assert r.status_code == status, r.text
            assert "error" in r.json()

"""``ProxyServer.events``: always there; listening to the MX sessions only when enabled, so an
unchanged config pays nothing per MX event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from mxproxy.config import ConfigError, load_config, parse_config
from mxproxy.server import ProxyServer
from tests.admin.test_serve import APP_PASSWORD, CLIENT, write_config
from tests.waiting import eventually


async def serve(tmp_path: Path, start_simulator: Any, extra: str) -> tuple[ProxyServer, Any]:
    server, sim, _ = await serve_signed_in(tmp_path, start_simulator, extra)
    return server, sim


async def serve_signed_in(tmp_path: Path, start_simulator: Any, extra: str) -> tuple[ProxyServer, Any, str]:
    """A started server with dmitrys signed in; the bearer token."""
    sim = await start_simulator(control=True)
    me = next(u for u in sim.fixture.users if u.login == "dmitrys")
    path = write_config(tmp_path, sim.port, me.password)
    path.write_text(path.read_text() + extra)
    server = ProxyServer(load_config(path))
    await server.start()
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{server.public_url}/auth", auth=CLIENT, data={
            "username": "dmitrys@xyzrd.com", "password": APP_PASSWORD, "grant_type": "password"})
        assert r.status_code == 200, r.text
    return server, sim, r.json()["access_token"]


@pytest.mark.parametrize("extra, attached", [
    ("", False),
    ("[events]\nenabled = false\nhistorySize = 50\n", False),
    ("[events]\nenabled = true\n", True),
])
async def test_the_bus_listens_to_mx_events_only_when_enabled(tmp_path: Path, start_simulator: Any, extra: str,
                                                              attached: bool) -> None:
    server, sim = await serve(tmp_path, start_simulator, extra)
    try:
        bus, manager = server.events, server.sessions
        assert bus.attached is attached
        assert (bus._on_mx_event in manager._listeners) is attached
        me = next(u for u in sim.fixture.users if u.login == "dmitrys")
        seen: list[Any] = []
        if attached:
            bus.subscribe(None, lambda e: seen.append(e) if e.type.startswith("call.") else None)
        async with httpx.AsyncClient(base_url=sim.control_url) as control:
            r = await control.post("/calls", json={"to": me.ext, "from": "5550100"})
            assert r.status_code == 200, r.text
        await eventually(lambda: manager.stats.events >= 2, "the ring reached the session")  # presence, ring
        assert (bus.last_id("dmitrys") is not None) is attached
        if attached:
            await eventually(lambda: seen, "the ring became an event")
            assert [e.type for e in seen] == ["call.ringing"]
            assert bus.history("dmitrys", seen[0].id - 1) == seen
        else:
            assert bus.published == 0 and not seen
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{server.admin_url}/metrics")).text
        published = next(line for line in metrics.splitlines() if line.startswith("mxproxy_events_published_total"))
        assert float(published.split()[-1]) == bus.published
    finally:
        await server.stop()
    assert not bus.attached


async def test_a_feature_that_requires_events_makes_the_bus_listen(tmp_path: Path, start_simulator: Any) -> None:
    server, _ = await serve(tmp_path, start_simulator, "")
    try:
        assert not server.events.attached
        server.events.require("sse")
        assert server.events.attached and server.events._on_mx_event in server.sessions._listeners
    finally:
        await server.stop()


@pytest.mark.parametrize("table, message", [
    ({"historySize": -1}, "events.historySize: must be at least 0"),
    ({"historySize": 10_001}, "events.historySize: at most 10000"),
    ({"historyAge": "0s"}, "events.historyAge: must be a positive duration"),
    ({"historyAge": 60}, "events.historyAge: expected a duration string"),
    ({"enabled": "yes"}, "events.enabled: expected true or false"),
    ({"histroySize": 5}, "events.histroySize: unknown key (did you mean historySize?)"),
])
def test_events_config_mistakes_name_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"apps": {"a": "b"}, "events": table})
    assert str(err.value).startswith(message)


def test_events_config_defaults_and_values() -> None:
    default = parse_config({"apps": {"a": "b"}}).events
    assert (default.enabled, default.history_size, default.history_age) == (False, 200, 600.0)
    given = parse_config({"apps": {"a": "b"}, "events": {"enabled": True, "historySize": 0, "historyAge": "1h"}}).events
    assert (given.enabled, given.history_size, given.history_age) == (True, 0, 3600.0)


async def test_marking_a_voicemail_read_through_the_api_is_voicemail_read(tmp_path: Path,
                                                                        start_simulator: Any) -> None:
    server, sim, token = await serve_signed_in(tmp_path, start_simulator, "[events]\nenabled = true\n")
    try:
        seen: list[Any] = []
        server.events.subscribe("dmitrys", seen.append)
        me = next(u for u in sim.fixture.users if u.login == "dmitrys")
        async with httpx.AsyncClient(base_url=sim.control_url) as control:
            r = await control.post("/voicemails", json={"ext": me.ext, "from": "5550100", "duration": 3})
            mail_id = r.json()["mailId"]
        await eventually(lambda: [e.type for e in seen] == ["voicemail.new"], "voicemail.new")
        async with httpx.AsyncClient(base_url=server.public_url,
                                     headers={"Authorization": f"Bearer {token}"}) as api:
            for body in ({"read": False}, {"read": True}, {"read": True}, {"note": "call back"}):
                r = await api.patch(f"/voicemails/{mail_id}", json=body)
                assert r.status_code == 200, r.text
        await eventually(lambda: len(seen) >= 2, "voicemail.read")
        assert [(e.type, e.data) for e in seen] == [
            ("voicemail.new", seen[0].data), ("voicemail.read", {"mailId": str(mail_id), "mediaType": "VoiceMail"})]
    finally:
        await server.stop()

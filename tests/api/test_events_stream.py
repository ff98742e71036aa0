"""``GET /events`` end to end: the real app under uvicorn on loopback, the real event bus on the
real session manager, the MX simulator ringing, answering and hanging up; read with httpx
streaming (tests/api/sse_client.py)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from admin.app import create_admin_app
from tests.api.conftest import DEMO_EXT, ApiHarness, build_api, serve
from tests.api.sse_client import EventReader, open_stream
from tests.waiting import eventually

ME = "dmitrys"  # the README user's MX login: the bus's user key
PETER = ("peterh@xyzrd.com", "peter-pw")
CALLER = ("+15125550100", "Jane Caller")
SSE = {"enabled": True, "heartbeat": "300ms", "retry": "1500ms"}


@contextlib.asynccontextmanager
async def live_api(tmp_path: Path, sse: dict[str, Any] | None = None,
                   extra: dict[str, Any] | None = None) -> AsyncIterator[tuple[ApiHarness, httpx.AsyncClient]]:
    """The API with ``[sse]`` (SSE merged with ``sse``), served on 127.0.0.1; yields the harness and
    an httpx client for the served URL."""
    async with build_api(tmp_path, extra={"sse": {**SSE, **(sse or {})}, **(extra or {})}) as api:
        async with serve(api.app) as url, httpx.AsyncClient(base_url=url) as client:
            yield api, client


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[ApiHarness, httpx.AsyncClient]]:
    async with live_api(tmp_path) as pair:
        yield pair


async def ring(api: ApiHarness) -> int:
    return await api.sim.incoming_call(DEMO_EXT, *CALLER)


async def call_cycle(api: ApiHarness) -> int:
    """A call rung, answered (by the user), hung up (by the caller)."""
    call_id = await ring(api)
    await api.sim.answer(call_id)
    await api.sim.hangup(call_id)
    return call_id


async def opened(reader: EventReader) -> str:
    """Read the opening (``retry:``, the start id); returns that id."""
    first = await reader.next()
    assert first.retry is not None
    start = first if first.id is not None else await reader.next()
    assert start.id is not None and start.event is None and start.data is None
    return start.id


async def test_a_rung_answered_and_hung_up_call_streams_ringing_answered_ended_in_order_once_each(
        live: tuple[ApiHarness, httpx.AsyncClient]) -> None:
    api, client = live
    token = await api.sign_in()
    async with open_stream(client, "/events", token, params={"types": "call.*"}) as reader:
        retry = await reader.next()
        assert retry.retry == "1500"  # [sse] retry, for EventSource's reconnection delay
        start = await reader.next()
        assert start.id is not None and start.event is None  # where a reconnect resumes from
        call_id = await call_cycle(api)
        frames = await reader.until("call.ended")
        frames += await reader.until_heartbeat()  # nothing more was on its way
        assert [f.event for f in frames] == ["call.ringing", "call.answered", "call.ended"]
        ids = [int(f.id or 0) for f in frames]
        assert ids == sorted(set(ids)) and ids[0] > int(start.id)
        for frame in frames:
            body = frame.json
            assert (body["id"], body["type"], body["user"]) == (int(frame.id or 0), frame.event, ME)
            assert body["data"]["callId"] == call_id
        assert len({f.json["data"]["callUUID"] for f in frames}) == 1
        assert reader.response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("resume", ["Last-Event-ID", "since", "Last-Event-ID over since"])
async def test_a_reconnect_replays_exactly_the_missed_events(live: tuple[ApiHarness, httpx.AsyncClient],
                                                             resume: str) -> None:
    api, client = live
    token = await api.sign_in()
    async with open_stream(client, "/events", token, params={"types": "call.*"}) as reader:
        await opened(reader)
        call_id = await ring(api)
        ringing = await reader.next_event()
        assert ringing.event == "call.ringing"
    # missed while disconnected: the answer and the hang-up
    await api.sim.answer(call_id)
    await api.sim.hangup(call_id)
    bus = api.ctx.events
    await eventually(lambda: [e.type for e in bus.history(ME, int(ringing.id or 0)) or []
                              if e.type.startswith("call.")][-1:] == ["call.ended"], "the hang-up on the bus")
    params = {"types": "call.*"}
    headers = {}
    if resume == "since":
        params["since"] = ringing.id or ""
    else:
        headers["Last-Event-ID"] = ringing.id or ""
        if resume == "Last-Event-ID over since":
            params["since"] = "0"
    async with open_stream(client, "/events", token, params=params, headers=headers) as reader:
        await reader.next()  # retry
        frames = await reader.until_heartbeat()
    missed = [e for e in bus.history(ME, int(ringing.id or 0)) or [] if e.type.startswith("call.")]
    assert [f.event for f in frames] == ["call.answered", "call.ended"]
    assert [int(f.id or 0) for f in frames] == [e.id for e in missed]
    assert [f.data for f in frames] == [e.json_bytes().decode() for e in missed]


async def test_an_id_older_than_the_history_says_gap_instead_of_skipping_silently(
        live: tuple[ApiHarness, httpx.AsyncClient]) -> None:
    api, client = live
    token = await api.sign_in()
    await ring(api)
    await eventually(lambda: api.ctx.events.last_id(ME) is not None, "an event")
    async with open_stream(client, "/events", token, headers={"Last-Event-ID": "1"}) as reader:
        await reader.next()  # retry
        gap = await reader.next()
        assert (gap.event, gap.json) == ("gap", {"after": 1})
        start = await reader.next()  # then live from the newest id: nothing was replayed
        assert start.event is None and int(start.id or 0) == api.ctx.events.last_id(ME)


@pytest.mark.parametrize("user", ["with events", "without any event yet"])
async def test_resuming_from_the_id_a_stream_started_at_replays_what_came_after_without_a_gap(
        live: tuple[ApiHarness, httpx.AsyncClient], user: str) -> None:
    api, client = live
    token = await api.sign_in()
    bus = api.ctx.events
    if user == "with events":
        await ring(api)
        await eventually(lambda: bus.last_id(ME) is not None, "an event")
    else:
        await asyncio.sleep(0.2)  # whatever the sign-in brought (presence) is in
        bus.end_user(ME, "moved")  # as after a move here: the bus knows no event of the user
        assert bus.last_id(ME) is None
    async with open_stream(client, "/events", token, params={"types": "voicemail.*"}) as reader:
        start = await opened(reader)
    await api.sim.leave_voicemail(DEMO_EXT, *CALLER)
    await eventually(lambda: any(e.type == "voicemail.new" for e in bus.history(ME, int(start)) or []),
                     "the voicemail on the bus")
    async with open_stream(client, "/events", token, params={"types": "voicemail.*"},
                           headers={"Last-Event-ID": start}) as reader:
        await reader.next()  # retry
        frames = await reader.until_heartbeat()
    assert [f.event for f in frames] == ["voicemail.new"]


async def test_the_types_filter_passes_only_the_types_asked_for(live: tuple[ApiHarness, httpx.AsyncClient]) -> None:
    api, client = live
    token = await api.sign_in()
    async with open_stream(client, "/events", token, params={"types": "voicemail.new, call.ended"}) as reader:
        await opened(reader)
        await call_cycle(api)
        await api.sim.leave_voicemail(DEMO_EXT, *CALLER)
        frames = await reader.until("voicemail.new")
        frames += await reader.until_heartbeat()
    assert [f.event for f in frames] == ["call.ended", "voicemail.new"]


@pytest.mark.parametrize("params, headers, message", [
    ({"types": "call.ringing,call.bogus"}, {}, "unknown event type 'call.bogus'"),
    ({"types": "calls.*"}, {}, "unknown event type 'calls.*'"),
    ({"since": "abc"}, {}, "bad since"),
    ({"since": "-1"}, {}, "bad since"),
    ({"since": "99999999999999999999"}, {}, "bad since"),
    ({}, {"Last-Event-ID": "12x"}, "bad Last-Event-ID"),
])
async def test_bad_parameters_answer_400_json_before_any_stream(live: tuple[ApiHarness, httpx.AsyncClient],
                                                                params: dict[str, str], headers: dict[str, str],
                                                                message: str) -> None:
    api, client = live
    token = await api.sign_in()
    r = await client.get("/events", params=params, headers={**api.bearer(token), **headers})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")
    assert message in r.json()["error"]
    assert api.ctx.streams is not None and api.ctx.streams.open == 0
    assert (await client.get("/auth", headers=api.bearer(token))).status_code == 200


@pytest.mark.parametrize("authorization, status", [(None, 401), ("Bearer not-a-token", 401)])
async def test_without_a_valid_token_the_answer_is_401_json(live: tuple[ApiHarness, httpx.AsyncClient],
                                                            authorization: str | None, status: int) -> None:
    _, client = live
    r = await client.get("/events", headers={"Authorization": authorization} if authorization else {})
    assert r.status_code == status and "error" in r.json()
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_heartbeat_comments_keep_an_idle_stream_alive(live: tuple[ApiHarness, httpx.AsyncClient]) -> None:
    api, client = live
    token = await api.sign_in()
    async with open_stream(client, "/events", token) as reader:
        await opened(reader)
        for _ in range(2):
            assert await reader.until_heartbeat() == []
        assert b": heartbeat\n\n" in reader.raw


async def test_a_reader_that_falls_behind_is_ended_with_overflow_and_resumes_without_loss(
        tmp_path: Path) -> None:
    async with live_api(tmp_path, sse={"queueSize": 3}) as (api, client):
        token = await api.sign_in()
        bus = api.ctx.events
        async with open_stream(client, "/events", token, params={"types": "voicemail.read"}) as slow:
            await opened(slow)
            for i in range(2):  # within the queue
                bus.voicemail_read(ME, f"mail-{i}")
            before = await slow.until_heartbeat()
            # a burst the writer cannot take before its queue is full: the bus hands the events
            # over and goes on (it never waits for a reader); the stream ends, resumable
            for i in range(2, 8):
                bus.voicemail_read(ME, f"mail-{i}")
            assert bus.last_id(ME) is not None and bus.published >= 8
            end = await slow.next_event()
            assert end.event == "end" and end.json == {"reason": "overflow", "lastId": int(before[-1].id or 0)}
            assert await slow.at_end()
        assert (await client.get("/auth", headers=api.bearer(token))).status_code == 200
        async with open_stream(client, "/events", token, params={"types": "voicemail.read"},
                               headers={"Last-Event-ID": str(end.json["lastId"])}) as again:
            await again.next()
            frames = await again.until_heartbeat()
        assert [f.json["data"]["mailId"] for f in frames] == [f"mail-{i}" for i in range(2, 8)]


@pytest.mark.parametrize("limit", ["maxPerUser", "maxStreams"])
async def test_streams_beyond_the_limits_answer_429_with_retry_after(tmp_path: Path, limit: str) -> None:
    sse = {"maxPerUser": 2, "maxStreams": 3}
    async with live_api(tmp_path, sse=sse) as (api, client):
        me = await api.sign_in()
        peter = await api.sign_in(*PETER)
        async with open_stream(client, "/events", me) as a, open_stream(client, "/events", me if limit ==
                                                                            "maxPerUser" else peter) as b:
            await opened(a)
            await opened(b)
            if limit == "maxStreams":
                async with open_stream(client, "/events", peter) as c:
                    await opened(c)
                    r = await client.get("/events", headers=api.bearer(me))
            else:
                r = await client.get("/events", headers=api.bearer(me))
                other = await client.get("/events", headers=api.bearer(peter), params={"types": "bogus"})
                assert other.status_code == 400  # peter is not limited by my streams
            assert r.status_code == 429 and r.headers["retry-after"].isdigit()
            assert ("per user" if limit == "maxPerUser" else "on this server") in r.json()["error"]
        # closed streams make room again
        await eventually(lambda: api.ctx.streams is not None and api.ctx.streams.open == 0, "streams closed")
        async with open_stream(client, "/events", me) as again:
            await opened(again)


async def test_a_stream_opened_while_the_mx_session_is_coming_back_waits_and_then_streams(tmp_path: Path) -> None:
    """An EventSource never retries a non-200 answer: while this instance brings the user's MX
    session back (here: after a forced logout) the stream opens and the events follow."""
    async with build_api(tmp_path, mx={"forcedLogoutDelay": "1s"}, extra={"sse": SSE}) as api:
        async with serve(api.app) as url, httpx.AsyncClient(base_url=url) as client:
            token = await api.sign_in()
            await api.sim.force_logout(ME)

            async def forced_out() -> bool:
                return api.ctx.sessions.state(ME) == "forced_logout"

            await eventually(forced_out, "the forced logout seen")
            async with open_stream(client, "/events", token, params={"types": "call.ringing"}) as reader:
                await opened(reader)

                async def back() -> bool:
                    return api.ctx.sessions.state(ME) == "live"

                await eventually(back, "the MX session back after forcedLogoutDelay")
                await ring(api)
                [frame] = await reader.until("call.ringing")
                assert frame.json["user"] == ME


@pytest.mark.parametrize("how", ["DELETE /auth", "DELETE /auth/logout", "admin POST /users"])
async def test_signing_out_ends_the_stream_with_end_signed_out(live: tuple[ApiHarness, httpx.AsyncClient],
                                                              how: str) -> None:
    api, client = live
    token = await api.sign_in()
    async with open_stream(client, "/events", token, params={"types": "call.*"}) as reader:
        start = await opened(reader)
        if how == "admin POST /users":
            transport = httpx.ASGITransport(app=create_admin_app(api.ctx, push=None))
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8043") as admin:
                r = await admin.post("/users", json={"login": ME})
        else:
            r = await client.delete(how.split()[1], headers=api.bearer(token))
        assert r.status_code == 200, r.text
        end = await reader.next_event()
        assert (end.event, end.json) == ("end", {"reason": "signed-out", "lastId": int(start)})
        assert await reader.at_end()
    r = await client.get("/events", headers=api.bearer(token))
    assert r.status_code == 401


async def test_the_stream_ends_when_the_token_expires(tmp_path: Path) -> None:
    async with live_api(tmp_path, extra={"jwt": {"tokenTTL": "2s"}}) as (api, client):
        token = await api.sign_in()
        async with open_stream(client, "/events", token) as reader:
            start = await opened(reader)
            end = await reader.next_event()
            assert (end.event, end.json) == ("end", {"reason": "token-expired", "lastId": int(start)})
            assert await reader.at_end()


async def test_a_revocation_seen_only_in_the_store_ends_the_stream_at_the_next_check(tmp_path: Path) -> None:
    """Another instance's sign-out reaches this one through the store's token generation."""
    async with live_api(tmp_path, extra={"jwt": {"revocationCheck": "0s"}}) as (api, client):
        token = await api.sign_in()
        async with open_stream(client, "/events", token) as reader:
            await opened(reader)
            await api.ctx.store.revoke_tokens(ME)
            end = await reader.next_event()
            assert (end.event, end.json["reason"]) == ("end", "signed-out")


async def test_head_answers_the_stream_headers_without_a_stream(live: tuple[ApiHarness, httpx.AsyncClient]) -> None:
    api, client = live
    token = await api.sign_in()
    r = await client.head("/events", headers=api.bearer(token))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream") and r.content == b""
    assert api.ctx.streams is not None and api.ctx.streams.open == 0


async def test_with_sse_off_events_is_an_unknown_path_and_the_document_does_not_list_it(api: ApiHarness) -> None:
    token = await api.sign_in()
    r = await api.client.get("/events", headers=api.bearer(token))
    assert (r.status_code, r.json()) == (404, {"error": "not found"})
    assert "/events" not in (await api.client.get("/openapi.json")).json()["paths"]
    assert api.ctx.streams is None and not api.ctx.events.attached


async def test_with_sse_on_the_document_lists_events(live: tuple[ApiHarness, httpx.AsyncClient]) -> None:
    api, client = live
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/events"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    assert {p["name"] for p in op["parameters"]} == {"types", "since", "Last-Event-ID"}
    assert {"400", "401", "429"} <= set(op["responses"])
    assert api.ctx.events.attached  # the bus listens (and keeps history) even with no stream open


async def test_shutdown_of_the_server_ends_open_streams_and_metrics_count_them(tmp_path: Path, start_simulator: Any) -> None:
    from mxproxy.config import load_config
    from mxproxy.server import ProxyServer
    from tests.admin.test_serve import APP_PASSWORD, CLIENT, write_config

    sim = await start_simulator()
    me = next(u for u in sim.fixture.users if u.login == ME)
    path = write_config(tmp_path, sim.port, me.password)
    path.write_text(path.read_text() + '\n[sse]\nenabled = true\nheartbeat = "300ms"\n')
    server = ProxyServer(load_config(path))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.public_url) as client:
            r = await client.post("/auth", auth=CLIENT, data={"username": "dmitrys@xyzrd.com",
                                                             "password": APP_PASSWORD, "grant_type": "password"})
            token = r.json()["access_token"]
            async with open_stream(client, "/events", token) as reader:
                await opened(reader)
                metrics = server.metrics.exposition().decode()
                assert "mxproxy_sse_streams 1.0" in metrics and "mxproxy_sse_streams_opened_total 1.0" in metrics
                stopping = asyncio.create_task(server.stop())
                end = await reader.next_event()
                assert (end.event, end.json["reason"]) == ("end", "shutdown")
                assert await reader.at_end()
                again = await client.get("/events", headers={"Authorization": f"Bearer {token}"})
                assert again.status_code == 503 and again.headers["retry-after"].isdigit()  # a quick reconnect
                await stopping
    finally:
        await server.stop()


async def test_a_reader_that_stops_reading_is_cut_after_the_write_timeout(tmp_path: Path) -> None:
    """Its queue never overflows (queueSize is large), but the writer blocks on a full socket:
    after writeTimeout the connection is closed and the stream's resources are freed."""
    import socket

    async with live_api(tmp_path, sse={"queueSize": 1_000_000, "writeTimeout": "1s", "heartbeat": "1h"}) as (api,
                                                                                                           client):
        token = await api.sign_in()
        streams = api.ctx.streams
        assert streams is not None
        host, port = str(client.base_url.host), int(client.base_url.port or 0)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (host, port))
        await loop.sock_sendall(sock, f"GET /events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\r\n"
                                .encode())
        head = await asyncio.wait_for(loop.sock_recv(sock, 200), 10)
        assert head.startswith(b"HTTP/1.1 200"), head
        await eventually(lambda: streams.served == 1, "the stream is open")
        bus = api.ctx.events
        n = 0
        while streams.served and n < 400_000:  # ~70 MB at most; the socket and transport hold far less
            for _ in range(500):
                bus.voicemail_read(ME, f"mail-{n}")
                n += 1
            await asyncio.sleep(0.005)
        await eventually(lambda: streams.served == 0, "the stream was cut", limit=30)
        assert streams.ended["write-timeout"] == 1
        assert (await client.get("/auth", headers=api.bearer(token))).status_code == 200
        sock.close()

"""``GET /events`` in a cluster, real processes: a stream opened on any instance is the owner's,
relayed by the forwarding; it ends through the relay when the owner ends it, and when the owner
dies mid-stream the relay ends it itself so the client resumes on the user's next owner."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.sse_client import EventReader, open_stream
from tests.cluster.harness import ClusterRig, Instance, wait_for
from tests.cluster.test_cluster import TAKEOVER, owner_of, ring

SSE = '[sse]\nenabled = true\n'
#: what the harness's [mx] timeouts make the forwarding's answer time (mxproxy/server.py): a
#: request whose owner stays silent longer is cut
REQUEST_READ_TIMEOUT = 3.0 + 2 * 3.0 + 5.0


async def two_instances(cluster: Any, sse: str = "", heartbeat: float = 1.0) -> tuple[ClusterRig, str, Instance,
                                                                                     Instance]:
    """Instances a and b, one user signed in; returns (rig, login, its owner, the other).
    ``sse``: more ``[sse]`` keys."""
    rig: ClusterRig = await cluster(users=2)
    rig.extra_config = SSE + f'heartbeat = "{heartbeat}s"\n' + sse
    await rig.start_all("a", "b")
    login = rig.users[0].login
    await rig.sign_in(login, rig.instances["a"])
    await wait_for(lambda: rig.one_session_each([login]), "the user's MX session")
    owner_name = await owner_of(rig, login)
    assert owner_name is not None
    owner = rig.instances[owner_name]
    other = next(i for i in rig.running() if i.name != owner_name)
    return rig, login, owner, other


async def call_events(reader: EventReader) -> list[str]:
    frames = await reader.until("call.ended")
    return [f.event or "" for f in frames if (f.event or "").startswith("call.")]


async def test_a_stream_opened_on_a_non_owner_follows_the_owner_and_ends_with_it(cluster: Any) -> None:
    rig, login, owner, other = await two_instances(cluster)
    user = rig.users[0]
    token = rig.tokens[login]
    async with httpx.AsyncClient(base_url=other.url, trust_env=False) as client:
        async with open_stream(client, "/events", token, params={"types": "call.*"}) as reader:
            first = await reader.next()
            assert first.retry is not None
            call_id = await ring(rig, login)
            await rig.sim.answer(call_id)
            await rig.sim.hangup(call_id)
            assert await call_events(reader) == ["call.ringing", "call.answered", "call.ended"]
            assert await reader.until_heartbeat() == []  # heartbeats pass the relay as they come
            # sign-out through the non-owner: the owner ends the stream, the relay ends with it
            r = await client.delete("/auth", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            end = await reader.next_event()
            assert (end.event, end.json["reason"]) == ("end", "signed-out")
            assert await reader.at_end()
    assert user.login not in rig.mx_sessions()


async def test_when_the_owner_dies_mid_stream_the_relay_ends_it_and_the_next_owner_resumes(cluster: Any) -> None:
    rig, login, owner, other = await two_instances(cluster)
    token = rig.tokens[login]
    async with httpx.AsyncClient(base_url=other.url, trust_env=False) as client:
        async with open_stream(client, "/events", token, params={"types": "call.*"}) as reader:
            await reader.next()
            call_id = await ring(rig, login)
            ringing = await reader.next_event()
            assert ringing.event == "call.ringing"
            await rig.kill(owner.name)
            end = await reader.next_event()  # not an error, not a hang: an end to reconnect on
            assert (end.event, end.json) == ("end", {"reason": "moved", "lastId": None})
            assert await reader.at_end()

        async def taken_over() -> bool:
            return (await owner_of(rig, login)) == other.name

        await wait_for(taken_over, "the survivor runs the user", TAKEOVER + 5)
        await rig.sim.hangup(call_id)
        # the new owner's history starts when it took the user: it says so, then streams live
        async with open_stream(client, "/events", token, params={"types": "call.*"},
                               headers={"Last-Event-ID": ringing.id or ""}) as reader:
            await reader.next()
            gap = await reader.next()
            assert (gap.event, gap.json) == ("gap", {"after": int(ringing.id or 0)})
            second = await ring(rig, login)
            await rig.sim.answer(second)
            await rig.sim.hangup(second)
            frames = await reader.until("call.ended")
            assert [f.event for f in frames] == ["call.ringing", "call.answered", "call.ended"]
            assert all(int(f.id or 0) > int(ringing.id or 0) for f in frames)  # ids go on increasing


async def test_an_instance_relaying_a_stream_ends_it_when_it_stops(cluster: Any) -> None:
    """SIGTERM of the relaying instance: its relay writes ``end`` (the owner's stream goes on
    being the user's); the process exits without waiting out the open stream."""
    rig, login, owner, other = await two_instances(cluster)
    token = rig.tokens[login]
    async with httpx.AsyncClient(base_url=other.url, trust_env=False) as client:
        async with open_stream(client, "/events", token, params={"types": "call.*"}) as reader:
            await reader.next()
            await reader.until_heartbeat()
            assert other.proc is not None
            other.proc.send_signal(15)
            end = await reader.next_event()
            assert (end.event, end.json) == ("end", {"reason": "moved", "lastId": None})  # the relay's own
            assert await reader.at_end()
    assert await rig.stop(other.name) == 0
    # the owner still serves the user's events
    async with httpx.AsyncClient(base_url=owner.url, trust_env=False) as client:
        async with open_stream(client, "/events", token, params={"types": "call.*"}) as reader:
            await reader.next()
            await ring(rig, login)
            assert (await reader.next_event()).event == "call.ringing"


async def test_relayed_streams_count_against_the_relaying_instances_stream_limit(cluster: Any) -> None:
    """``maxStreams`` bounds what an instance holds, relayed streams included (each holds a client
    connection here and one to the owner): beyond it the relaying instance refuses by itself."""
    rig, login, owner, other = await two_instances(cluster, "maxStreams = 1\nmaxPerUser = 1\n")
    token = rig.tokens[login]

    async def forwarded() -> float:
        text = (await rig.client.get(f"{other.admin}/metrics")).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("mxproxy_cluster_forwarded_requests_total"))

    async with httpx.AsyncClient(base_url=other.url, trust_env=False) as client:
        async with open_stream(client, "/events", token) as reader:
            await reader.next()
            assert "mxproxy_sse_relayed_streams 1.0" in (await rig.client.get(f"{other.admin}/metrics")).text
            before = await forwarded()
            r = await client.get("/events", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 429 and "on this server" in r.json()["error"] and r.headers["retry-after"]
            assert await forwarded() == before  # refused here, not by the owner
        # the relay released its slot with the stream
        async def released() -> bool:
            return "mxproxy_sse_relayed_streams 0.0" in (await rig.client.get(f"{other.admin}/metrics")).text

        await wait_for(released, "the relay's slot is free again")
        async with open_stream(client, "/events", token) as reader:
            await reader.next()


async def test_a_relayed_stream_outlives_the_forwarding_timeout_of_requests(cluster: Any) -> None:
    """A stream is silent for up to two heartbeat periods; here one period is longer than a
    forwarded request may wait for its answer, and the relay still does not cut it."""
    heartbeat = REQUEST_READ_TIMEOUT + 2.0
    rig, login, owner, other = await two_instances(cluster, heartbeat=heartbeat)
    token = rig.tokens[login]
    async with httpx.AsyncClient(base_url=other.url, trust_env=False) as client:
        async with open_stream(client, "/events", token, params={"types": "call.*"}) as reader:
            await reader.next()
            start = await reader.next()
            assert start.id is not None
            # nothing at all for a heartbeat period, then the heartbeat: not an end from the relay
            assert await reader.until_heartbeat(limit=heartbeat + 10) == []
            await ring(rig, login)
            assert (await reader.next_event()).event == "call.ringing"

"""Real processes: one process per ``[cluster] instanceId``, and the crash window between a push
claim and its sends (two-phase claims: a new owner sends what a dead owner claimed)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg

from tests.cluster.harness import CLIENT, LEASE_TTL, ClusterRig, wait_for
from tests.cluster.test_cluster import TAKEOVER, owner_of, ring, sign_in_all


async def _true(value: bool) -> bool:
    return value


async def test_a_second_process_with_a_running_instance_id_refuses_to_start_with_one_line(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=2)
    first = await rig.start("a")
    await sign_in_all(rig, devices=False)
    second = await rig.start("a-again", instance_id="a", wait=False)
    assert second.proc is not None
    assert await asyncio.wait_for(second.proc.wait(), 30) == 2
    errors = [line for line in rig.stderr(second).splitlines() if "cluster.instanceId" in line]
    assert len(errors) == 1, rig.stderr(second)
    assert "'a' is already running" in errors[0] and first.url in errors[0]
    assert "Traceback" not in rig.stderr(second)
    # the first one is untouched: still the member "a", still serving its users
    body = (await rig.client.get(f"{first.admin}/cluster")).json()
    assert body["ready"] is True and [i["id"] for i in body["instances"]] == ["a"]
    assert (await rig.who_am_i(rig.users[0].login, first)).status_code == 200
    assert await rig.one_session_each()


async def test_an_instance_id_whose_process_was_killed_is_taken_over_at_once(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=2)
    await rig.start("a")
    await sign_in_all(rig, devices=False)
    await rig.kill("a")
    # same host, its pid gone: no need to wait for the heartbeat to lapse
    again = await rig.start("a-again", instance_id="a", wait=False)
    took = await wait_for(lambda: _ready(rig, again), "the restarted process holds the id", 30)
    assert took < LEASE_TTL * 4
    await wait_for(rig.one_session_each, "its users live again, once", TAKEOVER)


async def _ready(rig: ClusterRig, instance: Any) -> bool:
    if not instance.running:
        raise AssertionError(f"{instance.name} exited: {rig.stderr(instance)[-2000:]}")
    try:
        r = await rig.client.get(f"{instance.admin}/cluster")
    except Exception:  # noqa: BLE001 - not listening yet
        return False
    return r.status_code == 200 and r.json().get("ready") is True


async def test_an_instance_id_whose_heartbeat_lapsed_is_taken_over_and_the_paused_holder_stops(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=2)
    first = await rig.start("a")
    await sign_in_all(rig, devices=False)
    await wait_for(rig.one_session_each, "one MX session per user")
    rig.signal("a", signal.SIGSTOP)  # alive (its pid exists), silent: only the lapse frees the id
    await asyncio.sleep(LEASE_TTL + 0.5)  # its heartbeat is older than the lease TTL now
    second = await rig.start("a-again", instance_id="a")
    logins = [u.login for u in rig.users]
    await wait_for(lambda: _has_all(rig, second, logins), "the new process runs every user", TAKEOVER)
    rig.signal("a", signal.SIGCONT)
    assert first.proc is not None
    await asyncio.wait_for(first.proc.wait(), 30)  # it saw the id taken and stopped
    assert "now held by another process" in rig.stderr(first)
    await wait_for(rig.one_session_each, "one MX session per user (the woken one logged out)", TAKEOVER)
    assert set(await rig.connections(second)) == set(logins)


async def _has_all(rig: ClusterRig, instance: Any, logins: list[str]) -> bool:
    return set(logins) <= await rig.connections(instance)


class HangingProvider:
    """An FCM endpoint that accepts a request and never answers (the owner is mid-send)."""

    def __init__(self) -> None:
        self.requests = 0
        self.server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/projects"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        if await reader.readuntil(b"\r\n\r\n"):
            self.requests += 1
        await reader.read()  # until the client goes away

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self.server is not None:
            self.server.close()


async def test_a_push_claimed_by_an_owner_killed_before_sending_is_sent_once_by_the_next_owner(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=6)
    hanging = HangingProvider()
    url = await hanging.start()
    try:
        await rig.start_all("b")
        await rig.start("a", fcm_send_url=url)  # a's pushes never get an answer
        devices = await sign_in_all(rig)
        await wait_for(rig.settled, "every user live once")
        owners = await rig.owners()
        login = next((u.login for u in rig.users if owners.get(u.login) == "a"), None)
        assert login is not None, owners  # rendezvous put none of 6 users on a: 1 in 64
        await ring(rig, login)
        conn = await asyncpg.connect(rig.dsn)
        try:
            async def claimed_unsent() -> bool:
                row = await conn.fetchrow("SELECT instance, sent_at FROM mxproxy.push_claims WHERE login = $1", login)
                return row is not None and row["instance"] == "a" and row["sent_at"] is None and hanging.requests > 0

            await wait_for(claimed_unsent, "a claimed the ring's push and is sending it (to a provider that hangs)")
            await rig.kill("a")  # between claim and send: nothing reached a provider that answers
            assert rig.pushes(devices[login]) == 0
            await wait_for(lambda: _true(rig.pushes(devices[login]) == 1), "the next owner sent the claimed push",
                           TAKEOVER + 5)

            async def sent_by_b() -> bool:
                row = await conn.fetchrow("SELECT instance, sent_at FROM mxproxy.push_claims WHERE login = $1", login)
                return row is not None and row["instance"] == "b" and row["sent_at"] is not None

            await wait_for(sent_by_b, "the claim is b's and marked sent")
        finally:
            await conn.close()
        await wait_for(lambda: rig.one_session_each([login]), "b runs the user's MX session", TAKEOVER)
        await asyncio.sleep(1.0)  # b's own monitor sees the same ring: the claim keeps it to one push
        assert rig.pushes(devices[login]) == 1
        assert await owner_of(rig, login) == "b"
    finally:
        await hanging.stop()


def _free_instance_numbers(count: int) -> list[str]:
    """Instance names NN whose ports 80NN and 81NN (the template's) are free on this machine."""
    import socket

    found: list[str] = []
    for n in range(10, 100):
        try:
            for port in (8000 + n, 8100 + n):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        found.append(f"{n:02d}")
        if len(found) == count:
            return found
    raise AssertionError("no free 80NN/81NN port pairs")


async def test_two_instances_of_the_systemd_template_form_one_cluster(cluster: Any) -> None:
    # the template's environment, one shared config (no ports, no log file), DB and key from the
    # EnvironmentFile: what `systemctl start mxproxy@NN` runs
    import os
    import sys
    from pathlib import Path

    from tests.test_contrib import _instance_environment

    rig: ClusterRig = await cluster(users=4)
    shared = rig.tmp / "shared.toml"
    shared.write_text("\n".join(
        line for line in rig._write_config("shared", 1, 2).read_text().splitlines()
        if not line.startswith(("port =", "admin =", "db =", "storeKey =", "instanceId =", "logName ="))
    ).replace("[apps]", 'logName = ""\n[apps]', 1))
    numbers = _free_instance_numbers(2)
    procs = []
    try:
        for number in numbers:
            env = {k: v for k, v in os.environ.items() if k not in ("PORT", "ADMIN", "ADVERTISE", "INSTANCE_ID")}
            env.update(_instance_environment(number), DB=rig.dsn, MXPROXY_STORE_KEY="template store key")
            log = (rig.tmp / f"unit-{number}.stderr").open("wb")
            procs.append(await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("mxproxy")), "serve", "--config", str(shared), env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=log))
        admins = [f"http://{_instance_environment(n)['ADMIN']}" for n in numbers]

        async def one_cluster() -> bool:
            for proc, number in zip(procs, numbers):
                if proc.returncode is not None:
                    raise AssertionError((rig.tmp / f"unit-{number}.stderr").read_text()[-2000:])
            try:
                bodies = [(await rig.client.get(f"{admin}/cluster")).json() for admin in admins]
            except Exception:  # noqa: BLE001 - not listening yet
                return False
            return all(b.get("ready") and len(b["instances"]) == 2 for b in bodies)

        await wait_for(one_cluster, "both template instances are ready members of one cluster", 40)
        body = (await rig.client.get(f"{admins[0]}/cluster")).json()
        assert {(i["id"], i["url"]) for i in body["instances"]} == {
            (_instance_environment(n)["INSTANCE_ID"], f"http://{_instance_environment(n)['PORT']}") for n in numbers}
        # a user signed in through either port is served through both
        public = [f"http://{_instance_environment(n)['PORT']}" for n in numbers]
        login = rig.users[0].login
        r = await rig.client.post(f"{public[0]}/auth", auth=CLIENT, data={
            "username": login, "password": f"app-{login}", "grant_type": "password"})
        assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert [(await rig.client.get(f"{url}/auth", headers=auth)).status_code for url in public] == [200, 200]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()


def test_a_holder_is_known_dead_only_for_a_gone_pid_in_this_pid_space() -> None:
    import os
    import subprocess

    from mxproxy.sessions.ownership import holder_is_dead, process_holder

    host, pid, token, space = process_holder().split(":")
    gone = subprocess.Popen(["true"])
    gone.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        assert holder_is_dead(f"{host}:{gone.pid}:{token}:{space}")
        assert not holder_is_dead(f"{host}:{alive.pid}:{token}:{space}")
        assert not holder_is_dead(f"{host}:{os.getpid()}:{token}:{space}")  # a container's pid 1 again
        assert not holder_is_dead(f"{host}:{gone.pid}:{token}:other-namespace")  # another container
        assert not holder_is_dead(f"other-host:{gone.pid}:{token}:{space}")
        assert not holder_is_dead("")  # a row written before the holder column
    finally:
        alive.kill()
        alive.wait()

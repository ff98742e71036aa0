"""End to end: a real ``mxproxy serve`` process, the MX simulator and a receiver on loopback.
A call rung, answered and hung up reaches the receiver as call.ringing, call.answered,
call.ended, in order, once each, signed; deliveries pending when the process is killed with
SIGKILL are delivered after it restarts."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx

from tests.ports import unused_port
from tests.test_server import READY, ServeProcess
from tests.waiting import eventually
from tests.webhooks.receiver import Receiver

CLIENT = ("hookapp", "hook-app-secret-0042")
APP_PASSWORD = "app-pw-5521"
WEBHOOKS = """
[webhooks]
enabled = true
allowNetworks = ["127.0.0.0/8"]
retryMin = "100ms"
retryMax = "300ms"
timeout = "2s"
claimTTL = "5s"
pollInterval = "200ms"
"""


def write_config(tmp_path: Path, mx_port: int, mx_password: str) -> Path:
    path = tmp_path / "mxproxy.toml"
    path.write_text(f"""
logName = "mxproxy.log"
[apps]
{CLIENT[0]} = "{CLIENT[1]}"
[server]
port = "127.0.0.1:0"
admin = "127.0.0.1:0"
db = "{tmp_path / 'store.db'}"
[mx]
connectTimeout = "3s"
responseTimeout = "3s"
reconnectMin = "100ms"
reconnectMax = "1s"
[static]
host = "127.0.0.1:{mx_port}"
[static.users."dmitrys@xyzrd.com"]
password = "{APP_PASSWORD}"
mxLogin = "dmitrys"
mxPassword = "{mx_password}"
{WEBHOOKS}
""")
    return path


async def urls(proc: ServeProcess) -> tuple[str, str]:
    public = await proc.ready_url()
    line = next(line for line in proc.stderr.splitlines() if READY in line)
    admin = re.search(r"admin API (http://\S+?)[,;]", line)
    assert admin, line
    return public, admin.group(1)


async def sign_in(client: httpx.AsyncClient, public: str) -> None:
    r = await client.post(f"{public}/auth", auth=CLIENT, data={
        "username": "dmitrys@xyzrd.com", "password": APP_PASSWORD, "grant_type": "password"})
    assert r.status_code == 200, r.text


async def test_a_call_reaches_the_receiver_as_ringing_answered_ended_once_each_signed(
        tmp_path: Path, start_simulator: Any) -> None:
    sim = await start_simulator()
    me = next(u for u in sim.fixture.users if u.login == "dmitrys")
    receiver = Receiver()
    await receiver.start()
    proc = ServeProcess(write_config(tmp_path, sim.port, me.password))
    await proc.start()
    try:
        public, admin = await urls(proc)
        async with httpx.AsyncClient(timeout=10) as client:
            await sign_in(client, public)
            r = await client.post(f"{admin}/webhooks", json={"url": receiver.url, "events": ["call.*"]})
            assert r.status_code == 201, r.text
            secret = r.json()["secret"]
            call = await sim.incoming_call(me.ext, "5550100", "Peter Hyde")
            await receiver.wait_for(1)
            await sim.answer(call, by=me.ext)
            await receiver.wait_for(2)
            await sim.hangup(call)
            await receiver.wait_for(3)
            await asyncio.sleep(0.5)  # a duplicate would have arrived by now
            bodies = [r.verified(secret) for r in receiver.received]
            assert [b["type"] for b in bodies] == ["call.ringing", "call.answered", "call.ended"]
            assert len({b["data"]["callUUID"] for b in bodies}) == 1 and {b["user"] for b in bodies} == {"dmitrys"}
            metrics = (await client.get(f"{admin}/metrics")).text
            assert 'mxproxy_webhook_deliveries_total{result="delivered"} 3.0' in metrics
    finally:
        await proc.kill()
        await receiver.stop()


async def test_deliveries_pending_at_a_sigkill_are_delivered_after_the_restart(
        tmp_path: Path, start_simulator: Any) -> None:
    sim = await start_simulator()
    me = next(u for u in sim.fixture.users if u.login == "dmitrys")
    port = unused_port()  # the receiver is down (every attempt fails to connect) until the restart
    receiver = Receiver(port=port)
    config = write_config(tmp_path, sim.port, me.password)
    proc = ServeProcess(config)
    await proc.start()
    try:
        public, admin = await urls(proc)
        async with httpx.AsyncClient(timeout=10) as client:
            await sign_in(client, public)
            r = await client.post(f"{admin}/webhooks", json={"url": f"http://127.0.0.1:{port}/hook",
                                                             "events": ["call.ringing", "call.ended"]})
            hook = r.json()["id"]
            call = await sim.incoming_call(me.ext, "5550100", "Peter Hyde")
            await sim.hangup(call)

            async def retried() -> bool:
                rows = (await client.get(f"{admin}/webhooks/{hook}/deliveries")).json()["deliveries"]
                return len(rows) == 2 and any(d["attempts"] >= 1 for d in rows)

            await eventually(retried, "both deliveries stored and tried")
            await proc.kill()  # SIGKILL
            receiver = Receiver(port=port)
            await receiver.start()
            proc = ServeProcess(config)
            await proc.start()
            public, admin = await urls(proc)
            await receiver.wait_for(2, timeout=30)
            await asyncio.sleep(0.5)
            assert receiver.types() == ["call.ringing", "call.ended"]
            rows = (await client.get(f"{admin}/webhooks/{hook}/deliveries")).json()["deliveries"]
            assert [d["state"] for d in rows] == ["delivered", "delivered"]
    finally:
        await proc.kill()
        await receiver.stop()

"""Real ``mxproxy serve`` processes on loopback sharing one PostgreSQL database (created per
test, dropped after), the MX simulator and a local FCM in the test process.

``ClusterRig.start(name)`` writes the instance's config and starts the process; the rig counts MX
sessions on the simulator side and pushes on the FCM side, which is what the cluster tests judge.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import asyncpg
import httpx

from mxproxy.localpush.fcm import LocalFCM
from tests.ports import unused_port

CLIENT = ("clusterapp", "cluster-app-secret-1")
APP = "com.example.phone"
STORE_KEY = "cluster test store key"
LEASE_TTL = 2.0
MXPROXY = str(Path(sys.executable).with_name("mxproxy"))


def free_port() -> int:
    """A port the instance binds when it starts (tests/ports.py: never one that another process
    can take meanwhile)."""
    return unused_port()


async def wait_for(predicate: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0,
                   interval: float = 0.1) -> float:
    """Poll an outside process's state until true; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        if await predicate():
            return loop.time() - started
        if loop.time() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for: {what}")
        await asyncio.sleep(interval)


@dataclass
class Instance:
    name: str
    port: int
    admin_port: int
    config: Path
    proc: asyncio.subprocess.Process | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


@dataclass
class ClusterRig:
    tmp: Path
    dsn: str
    database: str
    sim: Any
    fcm: LocalFCM
    users: list[Any]
    instances: dict[str, Instance] = field(default_factory=dict)
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=15.0, trust_env=False))
    tokens: dict[str, str] = field(default_factory=dict)  # login -> access token
    extra_config: str = ""  # more TOML tables for every instance's config (e.g. "[sse]\nenabled = true")

    # -- processes ------------------------------------------------------------------------------
    def _write_config(self, name: str, port: int, admin_port: int, *, instance_id: str | None = None,
                      fcm_send_url: str | None = None) -> Path:
        users = "\n".join(
            f'[static.users."{u.login}"]\npassword = "app-{u.login}"\nmxLogin = "{u.login}"\nmxPassword = "{u.password}"'
            for u in self.users
        )
        path = self.tmp / f"{name}.toml"
        path.write_text(f"""
logName = "{name}.log"
[apps]
{CLIENT[0]} = "{CLIENT[1]}"
[server]
port = "127.0.0.1:{port}"
admin = "127.0.0.1:{admin_port}"
db = "{self.dsn}"
storeKey = "{STORE_KEY}"
[cluster]
leaseTTL = "{LEASE_TTL}s"
instanceId = "{instance_id or name}"
[mx]
connectTimeout = "3s"
responseTimeout = "3s"
reconnectMin = "200ms"
reconnectMax = "1s"
[voip.fcm]
"{APP}" = "{self.tmp / 'service-account.json'}"
[push]
retryBackoff = "10ms"
[push.fcm]
sendURL = "{fcm_send_url or self.fcm.send_url}"
{self.extra_config}
[static]
host = "127.0.0.1:{self.sim.port}"
{users}
""")
        return path

    async def start(self, name: str, *, wait: bool = True, instance_id: str | None = None,
                    fcm_send_url: str | None = None) -> Instance:
        """``instance_id``: the ``[cluster] instanceId`` (default: ``name``); ``fcm_send_url``:
        this instance's FCM endpoint (default: the rig's local FCM)."""
        port, admin_port = free_port(), free_port()
        config = self._write_config(name, port, admin_port, instance_id=instance_id, fcm_send_url=fcm_send_url)
        instance = Instance(name, port, admin_port, config)
        instance.log = self.tmp / f"{name}.stderr"
        env = {k: v for k, v in os.environ.items() if k not in ("PORT", "ADMIN", "DB", "ADVERTISE", "INSTANCE_ID")}
        with instance.log.open("ab") as err:
            instance.proc = await asyncio.create_subprocess_exec(
                MXPROXY, "serve", "--config", str(instance.config), cwd=self.tmp, env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err,
            )
        self.instances[name] = instance
        if wait:
            await self.wait_ready(instance)
        return instance

    async def start_all(self, *names: str) -> list[Instance]:
        """Start several instances at once (as an operator's deploy would), then wait for all."""
        started = [await self.start(name, wait=False) for name in names]
        await asyncio.gather(*(self.wait_ready(instance) for instance in started))
        return started

    async def wait_ready(self, instance: Instance, timeout: float = 40.0) -> None:
        async def ready() -> bool:
            if not instance.running:
                raise AssertionError(f"{instance.name} exited: {self.stderr(instance)[-2000:]}")
            try:
                r = await self.client.get(f"{instance.admin}/cluster")
            except httpx.HTTPError:
                return False
            return r.status_code == 200 and r.json().get("ready") is True

        await wait_for(ready, f"{instance.name} is a ready member", timeout)

    def stderr(self, instance: Instance) -> str:
        return instance.log.read_text(errors="replace") if instance.log and instance.log.exists() else ""

    def signal(self, name: str, sig: signal.Signals) -> None:
        proc = self.instances[name].proc
        assert proc is not None
        proc.send_signal(sig)

    async def stop(self, name: str, *, timeout: float = 30.0) -> int:
        """SIGTERM (graceful: hands its users over) and wait for the exit code."""
        instance = self.instances[name]
        assert instance.proc is not None
        if instance.proc.returncode is None:
            instance.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(instance.proc.wait(), timeout)

    async def kill(self, name: str) -> None:
        instance = self.instances[name]
        assert instance.proc is not None
        instance.proc.kill()
        await instance.proc.wait()

    async def close(self) -> None:
        for instance in self.instances.values():
            if instance.proc is not None and instance.proc.returncode is None:
                try:
                    instance.proc.send_signal(signal.SIGCONT)
                    instance.proc.kill()
                except ProcessLookupError:
                    pass
                await instance.proc.wait()
        await self.client.aclose()

    def running(self) -> list[Instance]:
        return [i for i in self.instances.values() if i.running]

    # -- what the tests look at -----------------------------------------------------------------
    def mx_sessions(self) -> dict[str, int]:
        """Logged-in, monitoring MX sessions per login, as the simulator sees them."""
        counts: dict[str, int] = {}
        for info in self.sim.sessions():
            if info.active and info.logged_in and info.monitors:
                counts[info.login] = counts.get(info.login, 0) + 1
        return counts

    async def one_session_each(self, logins: list[str] | None = None) -> bool:
        counts = self.mx_sessions()
        return all(counts.get(login) == 1 for login in (logins or [u.login for u in self.users]))

    def pushes(self, token: str) -> int:
        return sum(1 for s in self.fcm.sends if s.message.get("token") == token)

    async def connections(self, instance: Instance) -> set[str]:
        r = await self.client.get(f"{instance.admin}/connections")
        r.raise_for_status()
        return set(r.json()["connections"])

    async def live_on(self) -> dict[str, list[str]]:
        """login -> instances that list it live (two only for a moment during a handover)."""
        found: dict[str, list[str]] = {}
        for instance in self.running():
            for login in await self.connections(instance):
                found.setdefault(login, []).append(instance.name)
        return found

    async def owners(self) -> dict[str, str]:
        """login -> the one instance running its live MX session (fails while one is on two)."""
        found = await self.live_on()
        doubled = {login: names for login, names in found.items() if len(names) > 1}
        assert not doubled, f"live on two instances: {doubled}"
        return {login: names[0] for login, names in found.items()}

    async def settled(self, *, serving: str | None = None) -> bool:
        """Every user live on exactly one instance, with exactly one MX session (and, with
        ``serving``, that instance runs some of them), all in one snapshot."""
        found = await self.live_on()
        every = {u.login for u in self.users}
        if set(found) != every or any(len(v) != 1 for v in found.values()):
            return False
        if serving is not None and not any(v == [serving] for v in found.values()):
            return False
        return await self.one_session_each()

    async def sign_in(self, login: str, via: Instance) -> str:
        r = await self.client.post(f"{via.url}/auth", auth=CLIENT, data={
            "username": login, "password": f"app-{login}", "grant_type": "password"})
        assert r.status_code == 200, (via.name, r.status_code, r.text)
        token = r.json()["access_token"]
        self.tokens[login] = token
        return token

    async def register_device(self, login: str, via: Instance) -> str:
        device = f"device-{login}-{secrets.token_hex(8)}"
        r = await self.client.put(f"{via.url}/tokens/fcm/{APP}/{device}",
                                  headers={"Authorization": f"Bearer {self.tokens[login]}"})
        assert r.status_code in (200, 201, 204), (r.status_code, r.text)
        return device

    async def who_am_i(self, login: str, via: Instance) -> httpx.Response:
        return await self.client.get(f"{via.url}/auth", headers={"Authorization": f"Bearer {self.tokens[login]}"})


async def create_database(dsn: str) -> tuple[str, str]:
    """A fresh database next to ``dsn``'s; returns (its DSN, its name)."""
    name = f"mxproxy_cluster_{secrets.token_hex(5)}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{name}", name


async def drop_database(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def terminate_backends(dsn: str, name: str) -> int:
    """Cut every connection to database ``name`` (the server itself keeps running)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name)
        return len(rows)
    finally:
        await conn.close()


def elapsed(since: float) -> float:
    return time.monotonic() - since

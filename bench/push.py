"""VoIP push path: MX event → session → dispatcher → APNs / FCM, against local providers.

    .venv/bin/python bench/push.py            # ~1 minute: baselines, 100/500/1000 events/s, saturation, cold

This process is the proxy: the real ``SessionManager`` (Zultys connector, one MX session per
user), a SQLite store, and the push dispatcher from ``create_dispatcher`` with the real
``ApnsSender`` (aioapns, HTTP/2) and ``FcmSender`` (pyfcm, 4 worker threads). Everything it talks to
runs in another process (``bench/pushpeer.py``): the MX simulator and the local APNs/FCM servers of
``tests/push``. With two or more CPUs the proxy is pinned to CPU 0 and the peer to the others,
so "one core" is literally the proxy's process (its FCM threads included).

Users: ``--users`` N users with an iOS (APNs) and an Android (FCM) token each (group A), and N more
with only an iOS token (group B, for the APNs-only saturation run). Each event is one incoming
call (``DeliveredEvent``) ringing one user, round robin.

Figures:
* baselines in this run: bare aioapns (stock client, its own JSON encoding; only host/port/CA
  pointed at the local server) and bare ``requests`` with 4 threads to the local FCM, then our
  ``ApnsSender`` / ``FcmSender`` alone (64 sends in flight, the dispatcher's concurrency);
* steady phases at ``--rates`` events/s (group A: 2 pushes per event): pushes/s delivered per
  provider, latency from the MX frame leaving the simulator (send stamp when the simulator builds
  the frame) to the push request complete at the local provider, p50/p99, warm pushes only;
  event-loop lag (a 5 ms ticker task in this process), CPU of this process and of the peer;
* ``--ios-rates`` (default 500/s) the same for group B (APNs only);
* saturation: events at ``--sat-rate`` for ``--sat-seconds`` to group A, then to group B;
  sustained pushes/s = pushes / (last arrival - first arrival);
* cold: ``--cold`` events, each after the local providers closed every connection, so each push
  opens a new one (APNs: TCP + TLS 1.3 with the client certificate + HTTP/2 settings; FCM: TCP,
  plain HTTP locally). A push is labelled cold by the provider: first request on its connection;
* last, 100 events/s while the local FCM answers after ``--fcm-rtt`` ms (an Internet round trip):
  FCM throughput is bounded by ``[push.fcm] workers`` / round trip, and it holds back APNs too.

``--profile`` prints a cProfile of the event loop during the iOS-only saturation. Figures and the
bottlenecks they show: docs/benchmarks.md, "VoIP push path".
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import ROOT, process_cpu_seconds, raise_nofile, stop_child

from mxproxy import runtime
from mxproxy.config import Config, parse_config
from mxproxy.connectors.registry import create_connector
from mxproxy.metrics import Metrics
from mxproxy.push.apns import ApnsSender
from mxproxy.push.fcm import FCM_SCOPE, FcmSender
from mxproxy.heap import freeze_startup_heap
from mxproxy.sessions import SessionManager
from mxproxy.store.base import DeviceToken, UserRecord
from mxproxy.store.sqlite import SQLiteStore

PAYLOAD = {
    "type": "Delivered", "callId": 0, "deviceId": "10000", "globalCallId": "2809269720623105001",
    "localConnectionInfo": "alerting", "callingDevice": "+15125550100", "callingDisplayName": "Bench Caller",
    "calledDevice": "10000", "alertingDevice": "10000", "timestamp": 1700000000,
}


# ----------------------------------------------------------------------------------------------
# the peer process
# ----------------------------------------------------------------------------------------------


class PeerProcess:
    """``bench/pushpeer.py`` in a child process; ``call(op=…)`` sends one command, awaits its answer."""

    def __init__(self, directory: Path, users: int, cpus: str) -> None:
        args = [sys.executable, str(ROOT / "bench" / "pushpeer.py"), "--dir", str(directory), "--users", str(users)]
        if cpus:
            args += ["--cpus", cpus]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdin and self.proc.stdout
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"push peer did not start: {line!r}")
        self.ready: dict[str, Any] = json.loads(line[6:])
        self._io = ThreadPoolExecutor(1, thread_name_prefix="bench-peer-io")

    def _roundtrip(self, line: str) -> str:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    async def call(self, **cmd: Any) -> dict[str, Any]:
        answer = json.loads(await asyncio.get_running_loop().run_in_executor(self._io, self._roundtrip, json.dumps(cmd)))
        if "error" in answer:
            raise RuntimeError(f"peer: {answer['error']}")
        return answer

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop_child(self.proc, 10)
        self._io.shutdown(wait=False)


def own_cpu() -> float:
    """User + system CPU of this process, all threads (the FCM sender's included)."""
    t = os.times()
    return t.user + t.system


def loop_thread_cpu() -> float:
    """CPU of the main thread alone (the event loop); the rest is aiosqlite's and the FCM threads."""
    return process_cpu_seconds(f"{os.getpid()}/task/{threading.get_native_id()}")


# ----------------------------------------------------------------------------------------------
# measuring helpers
# ----------------------------------------------------------------------------------------------


class LagMonitor:
    """A ticker task: how late a 5 ms sleep wakes up = how long something held the event loop."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append(loop.time() - t - self.interval)

    def take(self) -> tuple[float, float, int]:
        """(max ms, p99 ms, stalls over 100 ms) since the last take."""
        samples, self.samples = self.samples, []
        if not samples:
            return 0.0, 0.0, 0
        return max(samples) * 1000, pct(samples, 99) * 1000, sum(1 for s in samples if s > 0.1)

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def pct(values: list[float] | list[int], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if p < 100 else float(max(values))


@dataclass
class Phase:
    name: str
    events: int = 0
    inject_rate: float = 0.0  # events/s the simulator actually sent
    apns: dict[str, Any] = field(default_factory=dict)
    fcm: dict[str, Any] = field(default_factory=dict)
    apns_rate: float = 0.0
    fcm_rate: float = 0.0
    lag_max: float = 0.0
    lag_p99: float = 0.0
    stalls: int = 0
    cpu: float = 0.0  # proxy process, fraction of one core
    loop_cpu: float = 0.0  # its event-loop thread alone
    peer_cpu: float = 0.0
    missing: int = 0
    dropped: int = 0
    cpu_seconds: float = 0.0  # proxy process CPU over the phase

    @property
    def pushes(self) -> int:
        return sum(len(stats.get(k, ())) for stats in (self.apns, self.fcm) for k in ("warm", "cold"))

    @property
    def cpu_per_push(self) -> float:
        """Proxy CPU µs per push delivered: event in, push out, result recorded."""
        return self.cpu_seconds * 1e6 / self.pushes if self.pushes else float("nan")


# ----------------------------------------------------------------------------------------------
# baselines
# ----------------------------------------------------------------------------------------------


def p12_to_pem(p12: Path, password: str, out: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    key, cert, _ = pkcs12.load_key_and_certificates(p12.read_bytes(), password.encode())
    assert key is not None and cert is not None
    out.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return out


async def closed_loop(send: Any, seconds: float, in_flight: int) -> float:
    """``in_flight`` workers calling ``send(i)`` back to back for ``seconds``; returns sends/s."""
    return (await closed_loop_cpu(send, seconds, in_flight))[0]


async def closed_loop_cpu(send: Any, seconds: float, in_flight: int) -> tuple[float, float]:
    """``closed_loop``, also returning this process's CPU µs per send (steadier than sends/s
    on a shared machine: it does not count the time other processes hold the core)."""
    cpu0 = own_cpu()
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = w
        while time.perf_counter() < stop:
            await send(i)
            done += 1
            i += in_flight

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(in_flight)))
    return done / (time.perf_counter() - start), (own_cpu() - cpu0) * 1e6 / max(done, 1)


async def bare_aioapns(directory: Path, ready: dict[str, Any], seconds: float, in_flight: int,
                       max_connections: int) -> tuple[float, float]:
    """Stock aioapns client (its protocol, pool and JSON encoding); only the gateway address and
    the CA are changed to reach the local server."""
    from aioapns import APNs, NotificationRequest, PushType
    from aioapns.connection import APNsProductionClientProtocol

    class LocalGateway(APNsProductionClientProtocol):
        APNS_SERVER = "127.0.0.1"
        APNS_PORT = ready["apns"]

    ctx = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    ctx.set_alpn_protocols(["h2"])
    pem = p12_to_pem(directory / "phone.p12", ready["p12Password"], directory / "bare-client.pem")
    client = APNs(client_cert=str(pem), topic=ready["bundle"] + ".voip", max_connections=max_connections,
                  max_connection_attempts=1, ssl_context=ctx)
    client.pool.protocol_class = LocalGateway
    pem.unlink()

    async def send(i: int) -> None:
        result = await client.send_notification(NotificationRequest(
            device_token=f"base{i}", message=PAYLOAD, push_type=PushType.VOIP, priority=10, time_to_live=30))
        assert result.is_successful, result.status

    await closed_loop(send, 0.3, in_flight)  # connect and warm up
    rate = await closed_loop_cpu(send, seconds, in_flight)
    client.pool.close()
    return rate


def fcm_request_parts(directory: Path, ready: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, str]]:
    """Send URL, headers (with a fresh access token from the local token endpoint) and the data
    of a ready FCM v1 request, for the bare-client baselines."""
    import google.auth.transport.requests
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_file(str(directory / "service-account.json"),
                                                                  scopes=[FCM_SCOPE])
    creds.refresh(google.auth.transport.requests.Request())
    url = f"{ready['fcmSendURL']}/mx-bench/messages:send"
    headers = {"Content-Type": "application/json; charset=UTF-8", "Authorization": "Bearer " + creds.token}
    return url, headers, {k: str(v) for k, v in PAYLOAD.items()}


def bare_requests_fcm(directory: Path, ready: dict[str, Any], seconds: float, threads: int) -> float:
    """Plain ``requests`` sessions, one per thread, posting a ready FCM v1 body: the floor for any
    synchronous HTTP/1.1 FCM client in this process."""
    import requests

    url, headers, data = fcm_request_parts(directory, ready)
    done = [0] * threads
    stop = time.perf_counter() + 0.3 + seconds
    measure_from = time.perf_counter() + 0.3

    def worker(n: int) -> None:
        session = requests.Session()
        i = n
        while time.perf_counter() < stop:
            body = json.dumps({"message": {"token": f"base{i}", "data": data, "android": {"priority": "high"}}})
            r = session.post(url, data=body, headers=headers, timeout=5)
            assert r.status_code == 200, r.status_code
            if time.perf_counter() >= measure_from:
                done[n] += 1
            i += threads

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done) / seconds


async def bare_httpx_fcm(directory: Path, ready: dict[str, Any], seconds: float, in_flight: int) -> float:
    """httpx.AsyncClient on the event loop (no threads), HTTP/1.1 to the local FCM: what an async
    FCM transport would cost in this process."""
    import httpx

    url, headers, data = fcm_request_parts(directory, ready)
    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(limits=limits, timeout=5) as client:
        async def send(i: int) -> None:
            body = json.dumps({"message": {"token": f"base{i}", "data": data, "android": {"priority": "high"}}})
            r = await client.post(url, content=body.encode(), headers=headers)
            assert r.status_code == 200, r.status_code

        await closed_loop(send, 0.3, in_flight)
        return await closed_loop(send, seconds, in_flight)


async def bare_aiohttp_fcm(directory: Path, ready: dict[str, Any], seconds: float, in_flight: int) -> float:
    """aiohttp (which pyfcm itself depends on) on the event loop, one session, HTTP/1.1 keep-alive:
    the candidate async FCM transport."""
    import aiohttp

    url, headers, data = fcm_request_parts(directory, ready)
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=5)) as session:
        async def send(i: int) -> None:
            body = json.dumps({"message": {"token": f"base{i}", "data": data, "android": {"priority": "high"}}})
            async with session.post(url, data=body.encode(), headers=headers) as r:
                await r.read()
                assert r.status == 200, r.status

        await closed_loop(send, 0.3, in_flight)
        return await closed_loop(send, seconds, in_flight)


async def sender_alone(sender: ApnsSender | FcmSender, kind: str, topic: str, seconds: float,
                       in_flight: int) -> tuple[float, float]:
    async def send(i: int) -> None:
        token = DeviceToken(kind=kind, topic=topic, token=f"alone{i}", login="bench")
        result = await sender.send(token, PAYLOAD, "voip", deadline=time.monotonic() + 10)
        assert result.ok, result.summary()

    await closed_loop(send, 0.3, in_flight)
    return await closed_loop_cpu(send, seconds, in_flight)


# ----------------------------------------------------------------------------------------------
# the proxy side
# ----------------------------------------------------------------------------------------------


def make_config(directory: Path, ready: dict[str, Any]) -> Config:
    apns = f"127.0.0.1:{ready['apns']}"
    return parse_config({
        "apps": {"bench": "bench-secret"},
        "logName": "",
        "server": {"db": str(directory / "mxproxy.db")},
        "voip": {"apn": {"phone.p12": ready["p12Password"]}, "fcm": {ready["fcmApp"]: "service-account.json"}},
        "push": {"apns": {"production": apns, "development": apns, "caFile": "ca.pem"},
                 "fcm": {"sendURL": ready["fcmSendURL"]}},
    }, base_dir=directory)


class Bench:
    def __init__(self, args: argparse.Namespace, directory: Path, peer: PeerProcess) -> None:
        self.args = args
        self.dir = directory
        self.peer = peer
        self.ready = peer.ready
        self.config = make_config(directory, self.ready)
        self.lag = LagMonitor()
        self.dispatcher: Any = None
        n = args.users
        self.group_a = [f"user{i}" for i in range(n)]  # iOS + Android
        self.group_b = [f"user{i}" for i in range(n, 2 * n)]  # iOS only
        self.ext = {f"user{i}": str(10000 + i) for i in range(2 * n)}

    async def setup(self) -> None:
        self.store = SQLiteStore(self.dir / "mxproxy.db")
        await self.store.open()
        host = f"127.0.0.1:{self.ready['sim']}"
        for login in self.group_a + self.group_b:
            await self.store.put_user(UserRecord(login=login, host=host, mx_login=login, password="pw"))
            await self.store.put_token(DeviceToken(kind="apn", topic=self.ready["bundle"], token=f"ios-{login}",
                                                   login=login))
        for login in self.group_a:
            await self.store.put_token(DeviceToken(kind="fcm", topic=self.ready["fcmApp"], token=f"android-{login}",
                                                   login=login))
        self.sessions = SessionManager(create_connector(self.config.mx), self.store, self.config)
        started = time.perf_counter()
        await self.sessions.start()
        while len(self.sessions.live_logins()) < len(self.ext):
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"only {len(self.sessions.live_logins())} of {len(self.ext)} MX sessions live")
            await asyncio.sleep(0.1)
        self.login_seconds = time.perf_counter() - started
        from mxproxy.push.dispatcher import create_dispatcher

        self.dispatcher = create_dispatcher(self.config, self.store, self.sessions, metrics=Metrics())
        await self.dispatcher.start()
        freeze_startup_heap()  # as ProxyServer.start does once it is serving

    async def close(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.aclose()
        await self.sessions.stop()
        await self.store.close()

    def dropped(self) -> int:
        sent = self.dispatcher.status().get("sent", {})
        return int(sent.get("dropped", 0))

    async def phase(self, name: str, users: list[str], rate: float, count: int) -> Phase:
        """Inject ``count`` events at ``rate``/s to ``users``; wait for every push to arrive."""
        per_event = 2 if users is self.group_a else 1
        before = (await self.peer.call(op="counts"))["arrivals"]
        dropped0 = self.dropped()
        self.lag.take()
        cpu0, loop0, peer0, t0 = own_cpu(), loop_thread_cpu(), self.peer.cpu_seconds(), time.perf_counter()
        injected = await self.peer.call(op="inject", exts=[self.ext[u] for u in users], rate=rate, count=count)
        expected = before + count * per_event
        progress, last_change = before, time.perf_counter()
        while (progress < expected and time.perf_counter() - last_change < 3.0
               and time.perf_counter() - t0 < self.args.phase_cap):
            await asyncio.sleep(0.05)  # each poll is a thread hand-over in this process: not too often
            now = (await self.peer.call(op="counts"))["arrivals"]
            if now != progress:
                progress, last_change = now, time.perf_counter()
        wall = time.perf_counter() - t0
        cpu, loop_cpu, peer_cpu = own_cpu() - cpu0, loop_thread_cpu() - loop0, self.peer.cpu_seconds() - peer0
        lag_max, lag_p99, stalls = self.lag.take()
        report = await self.peer.call(op="report", first=injected["first"], last=injected["last"])
        p = Phase(name, events=count, apns=report["apns"], fcm=report["fcm"], lag_max=lag_max, lag_p99=lag_p99,
                  stalls=stalls, cpu=cpu / wall, loop_cpu=loop_cpu / wall, peer_cpu=peer_cpu / wall, missing=expected - progress,
                  dropped=self.dropped() - dropped0, cpu_seconds=cpu)
        if report["lastSent"] > report["firstSent"]:
            p.inject_rate = (report["sent"] - 1) / ((report["lastSent"] - report["firstSent"]) / 1e9)
        p.apns_rate = _rate(report["apns"], report["firstSent"])
        p.fcm_rate = _rate(report["fcm"], report["firstSent"])
        return p

    async def saturate(self, name: str, users: list[str]) -> Phase:
        p = await self.phase(name, users, self.args.sat_rate, int(self.args.sat_rate * self.args.sat_seconds))
        # sustained: between the first and the last arrival (the backlog drains at full speed)
        for stats, attr in ((p.apns, "apns_rate"), (p.fcm, "fcm_rate")):
            n = len(stats["warm"]) + len(stats["cold"])
            span = (stats["lastArrival"] - stats["firstArrival"]) / 1e9
            setattr(p, attr, (n - 1) / span if n > 1 and span > 0 else 0.0)
        return p

    async def cold(self, count: int) -> Phase:
        """One event at a time, each after the providers closed every connection."""
        first = last = 0
        apns_closed = fcm_closed = 0
        for i in range(count):
            closed = await self.peer.call(op="drop")
            apns_closed += closed["apns"]
            fcm_closed += closed["fcm"]
            await asyncio.sleep(0.15)  # the proxy sees the connections close
            before = (await self.peer.call(op="counts"))["arrivals"]
            injected = await self.peer.call(op="inject", exts=[self.ext[self.group_a[i % len(self.group_a)]]],
                                            rate=0, count=1)
            first, last = first or injected["first"], injected["last"]
            deadline = time.perf_counter() + 5
            while (await self.peer.call(op="counts"))["arrivals"] < before + 2 and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
        report = await self.peer.call(op="report", first=first, last=last)
        p = Phase("cold", events=count, apns=report["apns"], fcm=report["fcm"])
        p.lag_max, p.lag_p99, p.stalls = self.lag.take()
        return p


def start_py_spy(out: str) -> subprocess.Popen[bytes]:
    """py-spy sampling this process (collapsed stacks, native frames off): a profile without
    cProfile's per-call overhead, which inflates small Python functions."""
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(os.getpid()), "--rate", "1000", "--format", "raw",
                            "--output", out, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # attached
    return spy


def stop_py_spy(spy: subprocess.Popen[bytes], out: str) -> None:
    spy.send_signal(signal.SIGINT)
    spy.wait(30)
    print(f"py-spy collapsed stacks of 'sat iOS only' in {out}")


def _rate(stats: dict[str, Any], first_sent: int) -> float:
    n = len(stats["warm"]) + len(stats["cold"])
    span = (stats["lastArrival"] - first_sent) / 1e9
    return n / span if n and span > 0 else 0.0


# ----------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------


def print_profile(stats: pstats.Stats) -> None:
    """Own time per package (mxproxy per module), then the top functions."""
    groups: dict[str, float] = {}
    total = 0.0
    for (filename, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        if "/mxproxy/" in filename:
            name = "mxproxy/" + filename.split("/mxproxy/", 1)[1]
        elif "site-packages/" in filename:
            name = filename.split("site-packages/", 1)[1].split("/", 1)[0]
        elif filename.startswith("~") or filename.startswith("<"):
            name = "builtins (C)"
        else:
            name = "stdlib " + Path(filename).stem
        groups[name] = groups.get(name, 0.0) + tottime
    for name, t in sorted(groups.items(), key=lambda kv: -kv[1])[:18]:
        print(f"  {t / total:6.1%}  {name}")
    stats.sort_stats("tottime").print_stats(15)


def ms(values: list[int], p: float) -> str:
    return f"{pct(values, p) / 1000:.1f}" if values else "-"


def print_phases(phases: list[Phase]) -> None:
    head = (f"{'phase':<16}{'events':>7}{'sent/s':>8}{'APNs/s':>8}{'FCM/s':>8}  {'APNs p50/p99 ms':>16}"
            f"  {'FCM p50/p99 ms':>15}{'cold':>5}  {'lag max/p99 ms':>15}{'stalls':>7}{'CPU':>6}{'loop':>6}{'peer':>6}{'lost':>6}"
            f"{'µs/push':>9}")
    print(head)
    print("-" * len(head))
    for p in phases:
        cold = len(p.apns["cold"]) + len(p.fcm["cold"])
        rates = "".join(f"{r:>8.0f}" if r else f"{'-':>8}" for r in (p.inject_rate, p.apns_rate, p.fcm_rate))
        print(f"{p.name:<16}{p.events:>7}{rates}"
              f"  {ms(p.apns['warm'], 50) + ' / ' + ms(p.apns['warm'], 99):>16}"
              f"  {ms(p.fcm['warm'], 50) + ' / ' + ms(p.fcm['warm'], 99):>15}{cold:>5}"
              f"  {f'{p.lag_max:.1f} / {p.lag_p99:.1f}':>15}{p.stalls:>7}{p.cpu:>6.0%}{p.loop_cpu:>6.0%}{p.peer_cpu:>6.0%}"
              f"{p.missing + p.dropped:>6}{p.cpu_per_push:>9.0f}")


async def run(args: argparse.Namespace) -> None:
    raise_nofile(4 * args.users + 1024)
    cpus = sorted(os.sched_getaffinity(0))
    peer_cpus = ""
    if args.pin and len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[0]})
        peer_cpus = ",".join(str(c) for c in cpus[1:])
        print(f"proxy pinned to CPU {cpus[0]}, simulator + local providers to CPU {peer_cpus}")
    print(f"load average before the run: {Path('/proc/loadavg').read_text().split()[0]} "
          "(other work on these CPUs skews every figure); "
          f"{runtime.describe(asyncio.get_running_loop(), runtime.http_protocol())}")
    total_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mxproxy-bench-push-") as tmp:
        directory = Path(tmp)
        peer = PeerProcess(directory, 2 * args.users, peer_cpus)
        try:
            await run_with_peer(args, directory, peer)
        finally:
            peer.stop()
    print(f"total {time.perf_counter() - total_start:.0f} s")


async def apns_baselines(directory: Path, ready: dict[str, Any], config: Config) -> tuple[tuple[float, float],
                                                                                          tuple[float, float]]:
    """(pushes/s, CPU µs per push) of bare aioapns and of ``ApnsSender`` alone, printed."""
    secs, conns, in_flight = BASELINE_SECONDS[0], config.push.apns.max_connections, config.push.concurrency
    bare = await bare_aioapns(directory, ready, secs, in_flight, conns)
    print(f"  bare aioapns, {in_flight} in flight, {conns} connections   {bare[0]:8.0f} pushes/s   (1.00)"
          f"   CPU {bare[1]:6.1f} µs/push")
    apns_sender = ApnsSender(config.voip, config.push, config.base_dir)
    try:
        ours = await sender_alone(apns_sender, "apn", ready["bundle"], secs, in_flight)
    finally:
        await apns_sender.aclose()
    print(f"  ApnsSender alone, {in_flight} in flight            {ours[0]:8.0f} pushes/s   "
          f"({ours[0] / bare[0]:.2f} of bare aioapns)   CPU {ours[1]:6.1f} µs/push ({ours[1] / bare[1]:.2f})")
    return bare, ours


BASELINE_SECONDS = [2.0]


async def run_with_peer(args: argparse.Namespace, directory: Path, peer: PeerProcess) -> None:
    ready = peer.ready
    config = make_config(directory, ready)
    secs = BASELINE_SECONDS[0] = args.baseline_seconds
    in_flight = config.push.concurrency

    print("baselines (this process -> local providers, closed loop):")
    (bare, bare_cpu), _ = await apns_baselines(directory, ready, config)
    bare_fcm = 0.0
    if not args.apns_only:
        threads = config.push.fcm.workers
        bare_fcm = await asyncio.get_running_loop().run_in_executor(
            None, bare_requests_fcm, directory, ready, secs, threads)
        print(f"  bare requests, {threads} threads                    {bare_fcm:8.0f} pushes/s   (1.00)")
        httpx_fcm = await bare_httpx_fcm(directory, ready, secs, 16)
        print(f"  bare httpx.AsyncClient, 16 in flight         {httpx_fcm:8.0f} pushes/s   "
              f"({httpx_fcm / bare_fcm:.2f} of bare requests)")
        aiohttp_fcm = await bare_aiohttp_fcm(directory, ready, secs, 16)
        print(f"  bare aiohttp, 16 in flight                   {aiohttp_fcm:8.0f} pushes/s   "
              f"({aiohttp_fcm / bare_fcm:.2f} of bare requests)")
        fcm_sender = FcmSender(config.voip, config.push, config.base_dir)
        try:
            ours_fcm, _ = await sender_alone(fcm_sender, "fcm", ready["fcmApp"], secs, in_flight)
        finally:
            await fcm_sender.aclose()
        print(f"  FcmSender alone, {in_flight} in flight             {ours_fcm:8.0f} pushes/s   "
              f"({ours_fcm / bare_fcm:.2f} of bare requests)")

    bench = Bench(args, directory, peer)
    await bench.setup()
    print(f"\n{len(bench.ext)} MX sessions live in {bench.login_seconds:.1f} s "
          f"({args.users} users with iOS + Android tokens, {args.users} with iOS only)")
    bench.lag.start()
    rounds: list[tuple[float, float, Phase]] = []  # (bare pushes/s, bare CPU µs/push, sat iOS only)
    try:
        await bench.phase("warm-up", bench.group_a, 200, min(400, 2 * args.users))
        await bench.phase("warm-up iOS", bench.group_b, 200, min(400, 2 * args.users))  # results stored once
        phases = []
        for rate in args.rates:
            phases.append(await bench.phase(f"{rate:g}/s", bench.group_a, rate, int(rate * args.seconds)))
        for rate in args.ios_rates:
            phases.append(await bench.phase(f"{rate:g}/s iOS only", bench.group_b, rate, int(rate * args.seconds)))
        sat_a = None if args.apns_only else await bench.saturate("sat iOS+Andr.", bench.group_a)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        spy = start_py_spy(args.py_spy) if args.py_spy else None
        sat_b = await bench.saturate("sat iOS only", bench.group_b)
        if spy is not None:
            stop_py_spy(spy, args.py_spy)
        if profiler:
            profiler.disable()
            print("\nprofile of the event loop thread during 'sat iOS only' (top 30 by own time):")
            print_profile(pstats.Stats(profiler))
            if args.profile_out:
                profiler.dump_stats(args.profile_out)
        rounds.append((bare, bare_cpu, sat_b))
        for n in range(2, args.repeat + 1):
            print(f"round {n}:")
            (r_bare, r_cpu), _ = await apns_baselines(directory, ready, config)
            rounds.append((r_bare, r_cpu, await bench.saturate(f"sat iOS only {n}", bench.group_b)))
        cold = await bench.cold(args.cold)
        phases += [p for p in (sat_a, sat_b) if p is not None] + [p for _, _, p in rounds[1:]] + [cold]
        if args.fcm_rtt > 0:
            await bench.peer.call(op="fcm_delay", seconds=args.fcm_rtt / 1000)
            phases.append(await bench.phase(f"100/s FCM+{args.fcm_rtt:g}ms", bench.group_a, 100, 300))
            await bench.peer.call(op="fcm_delay", seconds=0)
    finally:
        await bench.lag.stop()
        await bench.close()

    print("\nend to end (latency: MX frame leaves the simulator -> push request complete at the local provider)")
    print_phases(phases)
    at_500 = next((p for p in phases if p.name == "500/s"), None)
    print()
    if at_500:
        p99 = pct(at_500.apns["warm"], 99) / 1000
        print(f"warm p99 at 500 events/s: APNs {p99:.1f} ms, FCM {pct(at_500.fcm['warm'], 99) / 1000:.1f} ms "
              f"(target < 20 ms {'✔' if max(p99, pct(at_500.fcm['warm'], 99) / 1000) < 20 else '✘'})")
    print("sustained APNs pushes/s through the whole path, iOS only, against bare aioapns in the same round:")
    for n, (r_bare, r_cpu, sat) in enumerate(rounds, start=1):
        print(f"  round {n}: {sat.apns_rate:6.0f}/s = {sat.apns_rate / r_bare:.2f} of bare ({r_bare:.0f}/s); "
              f"CPU {sat.cpu_per_push:6.1f} µs/push = {sat.cpu_per_push / r_cpu:.2f} of bare ({r_cpu:.1f}), "
              f"overhead {sat.cpu_per_push - r_cpu:6.1f} µs/push")
    ratio = statistics.median(sat.apns_rate / r_bare for r_bare, _, sat in rounds)
    cpu_ratio = statistics.median(sat.cpu_per_push / r_cpu for _, r_cpu, sat in rounds)
    overhead = statistics.median(sat.cpu_per_push - r_cpu for _, r_cpu, sat in rounds)
    print(f"  median: {ratio:.2f} of bare aioapns (target ≥ 0.63 {'✔' if ratio >= 0.63 else '✘'}); "
          f"CPU per push {cpu_ratio:.2f} × bare's, overhead {overhead:.1f} µs/push; "
          f"{sat_b.apns_rate / 1300:.2f} of 1 300/s in round 1 (target ≥ 1 300 {'✔' if sat_b.apns_rate >= 1300 else '✘'})")
    if sat_a is not None:
        print(f"sustained with iOS + Android per event: APNs {sat_a.apns_rate:.0f}/s + FCM {sat_a.fcm_rate:.0f}/s "
              f"(FCM {sat_a.fcm_rate / bare_fcm:.2f} of bare requests)")
    worst = max(phases, key=lambda p: p.lag_max)
    print(f"event-loop stall at the sustained APNs load (sat iOS only): {sat_b.lag_max:.0f} ms "
          f"(target ≤ 100 ms {'✔' if sat_b.lag_max <= 100 else '✘'}); worst of the run {worst.lag_max:.0f} ms "
          f"({worst.name})")
    cold_apns, cold_fcm = cold.apns["cold"], cold.fcm["cold"]
    print(f"cold connections: APNs p50 {ms(cold_apns, 50)} / p99 {ms(cold_apns, 99)} ms (n={len(cold_apns)}), "
          f"FCM p50 {ms(cold_fcm, 50)} / p99 {ms(cold_fcm, 99)} ms (n={len(cold_fcm)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200, help="users per group (default 200)")
    parser.add_argument("--rates", type=lambda s: [float(x) for x in s.split(",") if x], default=[100.0, 500.0, 1000.0],
                        help="steady event rates, comma separated (default 100,500,1000; '' for none)")
    parser.add_argument("--ios-rates", type=lambda s: [float(x) for x in s.split(",") if x], default=[500.0],
                        help="steady rates for the iOS-only users (default 500; '' for none)")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds per steady rate (default 4)")
    parser.add_argument("--sat-rate", type=float, default=2500.0, help="saturation event rate (default 2500)")
    parser.add_argument("--sat-seconds", type=float, default=1.0, help="saturation injection seconds (default 1)")
    parser.add_argument("--cold", type=int, default=20, help="cold-connection events (default 20)")
    parser.add_argument("--fcm-rtt", type=float, default=50.0,
                        help="last phase: 100 events/s while the local FCM answers after this many ms "
                             "(an Internet round trip to Google; 0 skips it; default 50)")
    parser.add_argument("--phase-cap", type=float, default=40.0,
                        help="stop waiting for a phase's pushes after this many seconds (they count as lost)")
    parser.add_argument("--baseline-seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of (bare aioapns, ApnsSender alone, saturation iOS only), medians printed")
    parser.add_argument("--apns-only", action="store_true",
                        help="skip the FCM baselines and the iOS + Android saturation")
    parser.add_argument("--profile", action="store_true", help="cProfile the proxy during the iOS-only saturation")
    parser.add_argument("--py-spy", metavar="FILE",
                        help="sample the iOS-only saturation with py-spy (must be on PATH), collapsed stacks to FILE")
    parser.add_argument("--profile-out", help="with --profile: also write the pstats file here")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin processes to CPUs")
    parser.add_argument("--asyncio", action="store_true",
                        help="asyncio's own event loop instead of uvloop (what mxproxy serve falls back to)")
    args = parser.parse_args()
    asyncio.run(run(args)) if args.asyncio else runtime.run(run(args))


if __name__ == "__main__":
    main()

"""Live event stream under load: open ``GET /events`` streams while the MX rings, answers and
hangs up calls at a steady rate.

    .venv/bin/python bench/events.py            # 1,000 streams (1,000 users), 200 calls/s for 10 s
    .venv/bin/python bench/events.py --users 200 --per-user 5 --rate 200 --seconds 20

Three processes: the proxy (``ProxyServer`` from a config file as ``mxproxy serve`` builds it, with
``[sse] enabled``, SQLite store, plus a 5 ms ticker that measures event-loop stalls), the MX
simulator (it stamps each CSTA event frame when it writes it: Delivered, Established,
ConnectionCleared), and this process, which signs the users in, opens the streams over raw
loopback sockets and reads them. With two or more CPUs the proxy is pinned to the first, the
others share the rest.

Each call: rung, answered 100 ms later, hung up 100 ms after that → ``call.ringing``,
``call.answered``, ``call.ended`` on each of the user's streams (3 events per call).

Figures, with the targets of issue 13:
* event → SSE p50/p99/max: from the simulator writing the CSTA frame to the SSE frame read here
  (target p99 ≤ 20 ms), and how many of the expected frames arrived (each exactly once);
* RSS per open stream: the proxy's RSS with the streams open and idle minus before, over the
  count (target < 50 KiB);
* the longest event-loop stall of the proxy during the calls (target: none over 100 ms);
* the proxy's CPU per call and per SSE frame written.

* with ``[webhooks] enabled`` in the same run (default; ``--no-webhooks`` leaves it out), one
  subscription to ``call.*`` for every user, delivered to a receiver in this process (aiohttp on
  loopback, 204): event → webhook request p50/p99/max, from the same CSTA frame stamp to the
  request read here (target p99 ≤ 50 ms), and how many arrived (each exactly once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CLIENT = ("benchapp", "bench-app-secret")
KINDS = {"Delivered": "call.ringing", "Established": "call.answered", "ConnectionCleared": "call.ended"}
FRAME = re.compile(rb'"type":"(call\.[a-z]+)".*?"callId":(\d+)')
TARGETS = {"p99ms": 20.0, "rssKiB": 50.0, "stallMs": 100.0, "webhookP99ms": 50.0}


# --- the simulator process ----------------------------------------------------------------------


async def _peer(users: int) -> None:
    from mxproxy.simulator import Fixture, Quirks, Simulator
    from mxproxy.simulator import messages as sim_messages

    stamps: dict[str, dict[int, int]] = {kind: {} for kind in KINDS.values()}

    def stamped(name: str, kind: str) -> None:
        original = getattr(sim_messages, name)

        def build(cross_ref: int, call_id: int, *args: Any, **kwargs: Any) -> str:
            xml = original(cross_ref, call_id, *args, **kwargs)
            stamps[kind].setdefault(call_id, time.time_ns())  # written to the session right after
            return xml

        setattr(sim_messages, name, build)

    stamped("delivered", "call.ringing")
    stamped("established", "call.answered")
    stamped("connection_cleared", "call.ended")
    fixture = Fixture()
    people = fixture.add_users(users, password="pw")
    sim = Simulator(fixture, host="127.0.0.1", port=0, quirks=Quirks(presence_after_login=False))
    await sim.start()
    print(json.dumps({"port": sim.port, "users": [{"login": u.login, "ext": u.ext} for u in people]}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def lifecycle(ext: str) -> None:
        call_id = await sim.incoming_call(ext, "+15125550100", "Bench Caller")
        await asyncio.sleep(0.1)
        await sim.answer(call_id)
        await asyncio.sleep(0.1)
        await sim.hangup(call_id)

    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["op"] == "calls":
            rate, total, exts = float(cmd["rate"]), int(cmd["count"]), cmd["exts"]
            for kind in stamps.values():
                kind.clear()
            tasks = []
            start = loop.time()
            for n in range(total):
                delay = start + n / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(lifecycle(exts[n % len(exts)])))
            await asyncio.gather(*tasks)
            await asyncio.sleep(0.1)
            print(json.dumps({"seconds": loop.time() - start, "stamps": stamps}), flush=True)
    await sim.stop()


# --- the proxy process --------------------------------------------------------------------------


async def _serve(config_path: str, webhook_url: str | None = None) -> None:
    from mxproxy.config import load_config
    from mxproxy.server import ProxyServer

    server = ProxyServer(load_config(config_path))
    await server.start()
    if webhook_url:  # what POST /webhooks on the admin API does
        await server.webhooks.create(webhook_url, ["call.*"], None)
    print(json.dumps({"url": server.public_url, "pid": os.getpid()}), flush=True)
    loop = asyncio.get_running_loop()
    worst = [0.0]

    beat = [time.monotonic()]

    worst_cpu = [0.0]  # the loop thread's CPU time during the worst stall: ~0 = the OS did not run us

    async def ticker() -> None:
        while True:
            before, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(0.005)
            stall = loop.time() - before - 0.005
            if stall > worst[0]:
                worst[0], worst_cpu[0] = stall, time.thread_time() - cpu
            beat[0] = time.monotonic()

    if os.environ.get("BENCH_STALL_TRACE"):  # where a stall over 100 ms spends its time (stderr)
        import threading
        import traceback

        main = threading.get_ident()

        def watch() -> None:
            while True:
                time.sleep(0.05)
                if time.monotonic() - beat[0] > 0.1:
                    frame = sys._current_frames().get(main)
                    if frame is not None:
                        print("STALL\n" + "".join(traceback.format_stack(frame)[-12:]), file=sys.stderr, flush=True)
                    time.sleep(0.2)

        threading.Thread(target=watch, daemon=True).start()

    import gc

    collections: list[tuple[int, float]] = []  # (generation, seconds) of each collection
    started: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            collections.append((info["generation"], time.perf_counter() - started[0]))

    gc.callbacks.append(on_gc)
    tick = asyncio.create_task(ticker())
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["op"] == "stall":  # the worst stall since the last ask, and the garbage collections
            gen2 = [s for g, s in collections if g == 2]
            print(json.dumps({"stall": worst[0], "stallCpu": worst_cpu[0], "streams": server.context.streams.served,
                              "collections": len(collections), "gen2": len(gen2), "gen2Max": max(gen2, default=0.0),
                              "gcMax": max((s for _, s in collections), default=0.0)}), flush=True)
            worst[0] = worst_cpu[0] = 0.0
            collections.clear()
    tick.cancel()
    await server.stop()


# --- this process -------------------------------------------------------------------------------


class Child:
    """A child process of this script speaking one JSON line per command."""

    def __init__(self, *args: str, cpus: set[int] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if cpus:
            os.sched_setaffinity(self.proc.pid, cpus)
        self.hello: dict[str, Any] = json.loads(self._readline())

    def _readline(self) -> bytes:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.proc.args[2:]} exited")
        return line

    def _ask(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        return json.loads(self._readline())

    async def ask(self, **cmd: Any) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self._ask, cmd)

    def rss(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu(self) -> float:
        from common import process_cpu_seconds

        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        from common import stop_child

        stop_child(self.proc, 30)


WEBHOOKS = """
[webhooks]
enabled = true
allowNetworks = ["127.0.0.0/8"]
"""


def write_config(directory: Path, sim_port: int, users: list[dict[str, str]], per_user: int,
                 max_streams: int, heartbeat: str, webhooks: bool = False) -> Path:
    tables = "\n".join(f'[static.users."{u["login"]}"]\npassword = "app-{u["login"]}"\nmxPassword = "pw"\n'
                       for u in users)
    path = directory / "bench.toml"
    path.write_text(f"""
logName = "bench.log"
[apps]
{CLIENT[0]} = "{CLIENT[1]}"
[server]
port = "127.0.0.1:0"
admin = "off"
db = "{directory / 'bench.db'}"
maxConnections = {max_streams + 500}
[signin]
enabled = false
[sse]
enabled = true
maxPerUser = {per_user}
maxStreams = {max_streams}
heartbeat = "{heartbeat}"
{WEBHOOKS if webhooks else ""}
[static]
host = "127.0.0.1:{sim_port}"
{tables}
""")
    return path


class Streams:
    """The open streams: raw sockets, frames matched to (type, call id) with their arrival time."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, int, int]] = []
        self.opened = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, host: str, port: int, token: str, ready: asyncio.Event, total: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET /events?types=call.* HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n"
                     f"Authorization: Bearer {token}\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream refused: {head[:200]!r}")
        self.opened += 1
        if self.opened == total:
            ready.set()
        carry = b""
        try:
            while chunk := await reader.read(65536):
                now = time.time_ns()
                data = carry + chunk
                end = 0
                for match in FRAME.finditer(data):
                    self.arrivals.append((match.group(1).decode(), int(match.group(2)), now))
                    end = match.end()
                cut = data.rfind(b"\n\n")
                carry = data[max(end, cut + 2 if cut >= 0 else 0):]
                if len(carry) > 8192:
                    carry = carry[-8192:]
        finally:
            writer.close()


class Receiver:
    """The webhook receiver: every request's (type, call id, arrival), answered 204."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[str, int, int]] = []
        self.runner: Any = None
        self.url = ""

    async def start(self) -> None:
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            now = time.time_ns()
            event = json.loads(body)
            self.arrivals.append((event["type"], int(event["data"]["callId"]), now))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def sign_in(url: str, logins: list[str], concurrency: int = 40) -> dict[str, str]:
    import httpx

    tokens: dict[str, str] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, trust_env=False) as client:
        async def one(login: str) -> None:
            async with gate:
                r = await client.post("/auth", auth=CLIENT, data={"username": login, "password": f"app-{login}",
                                                                  "grant_type": "password"})
                r.raise_for_status()
                tokens[login] = r.json()["access_token"]

        await asyncio.gather(*(one(login) for login in logins))
    return tokens


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * len(ordered))) - 1))]


async def main(args: argparse.Namespace) -> None:
    from common import load_average, raise_nofile

    total_streams = args.users * args.per_user
    raise_nofile(total_streams * 3 + 1000)
    cpus = sorted(os.sched_getaffinity(0))
    proxy_cpus, other_cpus = ({cpus[0]}, set(cpus[1:])) if len(cpus) > 1 else (None, None)
    if other_cpus:
        os.sched_setaffinity(0, other_cpus)
    print(f"load average {load_average()}; {args.users} users x {args.per_user} streams, {args.rate:.0f} calls/s "
          f"for {args.seconds:.0f}s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        peer = Child("--peer", str(args.users), cpus=other_cpus)
        users = peer.hello["users"]
        config = write_config(Path(tmp), peer.hello["port"], users, args.per_user, total_streams + 100,
                              args.heartbeat, webhooks=args.webhooks)
        receiver = Receiver()
        if args.webhooks:
            await receiver.start()
        proxy = Child("--serve", str(config), *(["--webhook-url", receiver.url] if args.webhooks else []),
                      cpus=proxy_cpus)
        streams = Streams()
        try:
            started = time.monotonic()
            tokens = await sign_in(proxy.hello["url"], [u["login"] for u in users])
            print(f"signed in {len(tokens)} users in {time.monotonic() - started:.1f}s", flush=True)
            await asyncio.sleep(2.0)
            before = proxy.rss()
            host, port = proxy.hello["url"].removeprefix("http://").rsplit(":", 1)
            ready = asyncio.Event()
            for i, user in enumerate(users):
                for _ in range(args.per_user):
                    streams.tasks.append(asyncio.create_task(
                        streams.open(host, int(port), tokens[user["login"]], ready, total_streams)))
                if i % 50 == 49:
                    await asyncio.sleep(0.02)
            await asyncio.wait_for(ready.wait(), 120)
            await asyncio.sleep(3.0)  # idle: what the open streams hold
            after = proxy.rss()
            open_here = (await proxy.ask(op="stall"))["streams"]
            count = int(args.rate * args.seconds)
            cpu0 = proxy.cpu()
            result = await peer.ask(op="calls", rate=args.rate, count=count, exts=[u["ext"] for u in users])
            await asyncio.sleep(1.0)
            if args.webhooks:  # the last deliveries may still be on their way
                deadline = time.monotonic() + 30
                while len(receiver.arrivals) < count * 3 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
            cpu = proxy.cpu() - cpu0
            stalled = await proxy.ask(op="stall")
            stall = stalled["stall"]
        finally:
            for task in streams.tasks:
                task.cancel()
            await asyncio.gather(*streams.tasks, return_exceptions=True)
            proxy.stop()
            peer.stop()
            await receiver.stop()
    stamps: dict[str, dict[str, int]] = result["stamps"]
    latencies: dict[str, list[float]] = {kind: [] for kind in KINDS.values()}
    seen: dict[tuple[str, int], int] = {}
    for kind, call_id, at in streams.arrivals:
        sent = stamps.get(kind, {}).get(str(call_id))
        seen[(kind, call_id)] = seen.get((kind, call_id), 0) + 1
        if sent is not None:
            latencies[kind].append((at - sent) / 1e6)
    every = [v for values in latencies.values() for v in values]
    expected = count * 3 * args.per_user
    exact = sum(1 for n in seen.values() if n == args.per_user)
    rss_per = (after - before) / max(1, open_here) / 1024
    p99 = percentile(every, 0.99)
    print(f"\nload average {load_average()}; {open_here} streams open; {count} calls in {result['seconds']:.1f}s "
          f"({count / result['seconds']:.0f} calls/s), {len(streams.arrivals)} of {expected} SSE frames "
          f"({exact} of {count * 3} events on every stream of their user exactly once)")
    print(f"event → SSE: p50 {percentile(every, 0.5):.2f} ms, p99 {p99:.2f} ms, max {max(every, default=0):.1f} ms "
          f"(target p99 {TARGETS['p99ms']:.0f} ms: {p99 / TARGETS['p99ms']:.2f}x)")
    for kind, values in latencies.items():
        print(f"  {kind:14} p50 {percentile(values, 0.5):6.2f} ms  p99 {percentile(values, 0.99):6.2f} ms  "
              f"n={len(values)}")
    print(f"RSS per open stream: {rss_per:.1f} KiB (proxy {before / 2**20:.0f} → {after / 2**20:.0f} MiB; "
          f"target < {TARGETS['rssKiB']:.0f} KiB: {rss_per / TARGETS['rssKiB']:.2f}x)")
    print(f"longest event-loop stall during the calls: {stall * 1000:.1f} ms, {stalled['stallCpu'] * 1000:.1f} ms "
          f"of it on the CPU (target none over "
          f"{TARGETS['stallMs']:.0f} ms: {stall * 1000 / TARGETS['stallMs']:.2f}x); garbage collections "
          f"{stalled['collections']}, longest {stalled['gcMax'] * 1000:.1f} ms, full ones {stalled['gen2']} "
          f"(longest {stalled['gen2Max'] * 1000:.1f} ms)")
    print(f"proxy CPU: {cpu:.2f} s for {count} calls: {cpu / count * 1e3:.2f} ms per call, "
          f"{cpu / max(1, len(streams.arrivals)) * 1e6:.0f} µs per SSE frame (MX events, bus, SSE"
          f"{', webhooks' if args.webhooks else ''} all included)")
    if args.webhooks:
        hooks: dict[str, list[float]] = {kind: [] for kind in KINDS.values()}
        delivered: dict[tuple[str, int], int] = {}
        for kind, call_id, at in receiver.arrivals:
            sent = stamps.get(kind, {}).get(str(call_id))
            delivered[(kind, call_id)] = delivered.get((kind, call_id), 0) + 1
            if sent is not None:
                hooks[kind].append((at - sent) / 1e6)
        all_hooks = [v for values in hooks.values() for v in values]
        once = sum(1 for n in delivered.values() if n == 1)
        hp99 = percentile(all_hooks, 0.99)
        print(f"event → webhook request: {len(receiver.arrivals)} of {count * 3} ({once} exactly once); "
              f"p50 {percentile(all_hooks, 0.5):.2f} ms, p99 {hp99:.2f} ms, max {max(all_hooks, default=0):.1f} ms "
              f"(target p99 {TARGETS['webhookP99ms']:.0f} ms: {hp99 / TARGETS['webhookP99ms']:.2f}x)")
        for kind, values in hooks.items():
            print(f"  {kind:14} p50 {percentile(values, 0.5):6.2f} ms  p99 {percentile(values, 0.99):6.2f} ms  "
                  f"n={len(values)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--per-user", type=int, default=1, help="streams per user (at most [sse] maxPerUser)")
    parser.add_argument("--rate", type=float, default=200.0, help="calls per second (3 events each)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--heartbeat", default="15s", help="[sse] heartbeat of the proxy")
    parser.add_argument("--peer", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--webhook-url", help=argparse.SUPPRESS)
    parser.add_argument("--no-webhooks", dest="webhooks", action="store_false",
                        help="leave [webhooks] out (SSE only)")
    args = parser.parse_args()
    from mxproxy import runtime

    if args.peer is not None:
        runtime.run(_peer(args.peer))
    elif args.serve:
        if os.environ.get("BENCH_ASYNCIO_DEBUG"):  # asyncio's loop, logging each callback over 50 ms
            import logging

            logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

            async def debugged() -> None:
                asyncio.get_running_loop().slow_callback_duration = 0.05
                await _serve(args.serve, args.webhook_url)

            asyncio.run(debugged(), debug=True)
        else:
            runtime.run(_serve(args.serve, args.webhook_url))
    else:
        asyncio.run(main(args))

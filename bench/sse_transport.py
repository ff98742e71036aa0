"""Which response writes ``GET /events``: Starlette's own ``StreamingResponse`` or sse-starlette.

    .venv/bin/python bench/sse_transport.py [--streams 1000] [--rate 600] [--seconds 10]

(sse-starlette is not a dependency: ``pip install sse-starlette`` to include it.)

Each mode runs in its own server process (uvloop + our httptools protocol, as ``mxproxy serve``)
holding ``--streams`` open streams, read by this process over raw loopback sockets. The streams
are the real ``mxproxy.api.events.EventStream`` (bounded queue, one writer coroutine); only the
response that writes them differs:

* ``starlette``: ``mxproxy.api.sse.SSEResponse`` (``StreamingResponse`` + a write timeout), the
  heartbeat from the stream's own timer;
* ``sse-starlette``: ``EventSourceResponse`` fed ``ServerSentEvent`` objects (the library's way),
  its ``ping`` task as the heartbeat;
* ``sse-starlette-bytes``: the same fed our pre-encoded frames (the library's transport alone).

Figures per mode: RSS per open stream (server RSS with the streams open and idle minus before,
over the count), event → client latency p50/p99 at ``--rate`` events/s spread over the streams
(stamped in the server when queued, read here), server CPU per event delivered, the worst event
loop lag (a 5 ms ticker in the server). Ratios are against ``starlette``, same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODES = ("starlette", "sse-starlette", "sse-starlette-bytes")
STAMP = re.compile(rb'"t":(\d+)')


# --- the server process -------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchEvent:
    """What a stream needs of ``mxproxy.events.Event``: id, type, the JSON bytes."""

    id: int
    type: str
    data: bytes

    def json_bytes(self) -> bytes:
        return self.data


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _serve(mode: str, heartbeat: float) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    from mxproxy import runtime
    from mxproxy.api.connections import limited_protocol
    from mxproxy.api.events import EventStream, StreamHub
    from mxproxy.api.sse import SSEResponse
    from mxproxy.config import SSEConfig

    config = SSEConfig(enabled=True, max_streams=1_000_000, max_per_user=1_000_000, heartbeat=heartbeat)
    hub = StreamHub(config)
    streams: list[EventStream] = []

    async def never() -> None:
        return None

    async def route(request: Any) -> Any:
        stream = EventStream(hub, f"user{len(streams)}", lambda t: True, config.queue_size)
        hub.add(stream)
        streams.append(stream)
        if mode == "starlette":
            stream.start_timers(heartbeat, 1e9, 0)
            return SSEResponse(stream.frames(b"retry: 2000\n\n", never), write_timeout=30.0, on_close=stream.close)
        from sse_starlette import EventSourceResponse, ServerSentEvent

        frames = stream.frames(b"retry: 2000\n\n", never)  # no timers: sse-starlette pings
        if mode == "sse-starlette-bytes":
            return EventSourceResponse(frames, ping=heartbeat, sep="\n", background=None)

        async def objects() -> Any:  # the library's way: one ServerSentEvent per event
            pending = stream.pending
            loop = asyncio.get_running_loop()
            try:
                yield ServerSentEvent(retry=2000, sep="\n")
                while True:
                    if not pending:
                        wake = stream._wake = loop.create_future()
                        await wake
                        stream._wake = None
                    while pending:
                        event = pending.popleft()
                        yield ServerSentEvent(data=event.json_bytes().decode(), event=event.type, id=str(event.id),
                                              sep="\n")
            finally:
                stream.close()

        return EventSourceResponse(objects(), ping=heartbeat, sep="\n")

    app = Starlette(routes=[Route("/events", route)])
    uv = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off",
                        http=limited_protocol(runtime.http_protocol(), header_timeout=10, max_connections=100_000),
                        server_header=False, timeout_keep_alive=20)
    server = uvicorn.Server(uv)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)

    lags: list[float] = []

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - before - 0.005)

    tick = asyncio.create_task(ticker())
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    next_id = 0
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["op"] == "rss":
            print(json.dumps({"rss": _rss(), "open": hub.served}), flush=True)
        elif cmd["op"] == "produce":
            rate, seconds = float(cmd["rate"]), float(cmd["seconds"])
            total = int(rate * seconds)
            lags.clear()
            cpu0 = time.process_time()
            start = loop.time()
            live = [s for s in streams if not s.closed]
            for n in range(total):
                due = start + n / rate
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_id += 1
                data = b'{"id":%d,"type":"call.ringing","t":%d,"data":{"callId":%d,"remote":"+15125550100"}}' % (
                    next_id, time.time_ns(), next_id)
                live[n % len(live)].deliver(BenchEvent(next_id, "call.ringing", data))
            await asyncio.sleep(0.5)
            cpu = time.process_time() - cpu0
            print(json.dumps({"events": total, "cpu": cpu, "maxLag": max(lags, default=0.0)}), flush=True)
    tick.cancel()
    server.should_exit = True
    await task


# --- this process: the readers ------------------------------------------------------------------


class Reader:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.opened = 0

    async def read(self, port: int, ready: asyncio.Event, count: list[int], n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        count[0] += 1
        if count[0] == n:
            ready.set()
        carry = b""
        try:
            while chunk := await reader.read(65536):
                now = time.time_ns()
                data = carry + chunk
                end = 0
                for match in STAMP.finditer(data):
                    self.latencies.append((now - int(match.group(1))) / 1e6)
                    end = match.end()
                carry = data[max(end, len(data) - 32):]  # a stamp split between two reads
        finally:
            writer.close()


def _proc_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def run_mode(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", mode, "--heartbeat", str(args.heartbeat),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    hello = json.loads(await proc.stdout.readline())

    async def ask(cmd: dict[str, Any]) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await proc.stdin.drain()
        return json.loads(await proc.stdout.readline())

    readers = Reader()
    # warm up: a few streams opened and closed (imports, first allocations)
    warm_ready, warm_count = asyncio.Event(), [0]
    warm = [asyncio.create_task(readers.read(hello["port"], warm_ready, warm_count, 20)) for _ in range(20)]
    await warm_ready.wait()
    for t in warm:
        t.cancel()
    await asyncio.gather(*warm, return_exceptions=True)
    await asyncio.sleep(0.5)
    before = (await ask({"op": "rss"}))["rss"]
    ready, count = asyncio.Event(), [0]
    tasks = []
    for i in range(args.streams):
        tasks.append(asyncio.create_task(readers.read(hello["port"], ready, count, args.streams)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)
    await ready.wait()
    await asyncio.sleep(1.0)
    after = await ask({"op": "rss"})
    readers.latencies.clear()
    produced = await ask({"op": "produce", "rate": args.rate, "seconds": args.seconds})
    lat = sorted(readers.latencies)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except asyncio.TimeoutError:
        proc.kill()
    return {
        "mode": mode, "open": after["open"],
        "rssPerStreamKiB": (after["rss"] - before) / args.streams / 1024,
        "p50ms": statistics.median(lat) if lat else float("nan"),
        "p99ms": lat[int(len(lat) * 0.99) - 1] if lat else float("nan"),
        "delivered": len(lat), "events": produced["events"],
        "cpuPerEventUs": produced["cpu"] / max(1, produced["events"]) * 1e6,
        "maxLagMs": produced["maxLag"] * 1000,
    }


async def main(args: argparse.Namespace) -> None:
    from common import load_average, raise_nofile

    raise_nofile(args.streams * 2 + 200)
    modes = list(args.modes or MODES)
    try:
        import sse_starlette  # noqa: F401
    except ImportError:
        modes = [m for m in modes if not m.startswith("sse-starlette")]
        print("sse-starlette not installed: comparing nothing but starlette (pip install sse-starlette)")
    results = []
    for mode in modes:
        print(f"load average {load_average()}: {mode} ...", flush=True)
        results.append(await run_mode(mode, args))
    base = next((r for r in results if r["mode"] == "starlette"), results[0])
    print(f"\n{args.streams} streams, {args.rate:.0f} events/s for {args.seconds:.0f}s; load average {load_average()}")
    print(f"{'mode':22} {'RSS/stream':>11} {'p50':>8} {'p99':>8} {'CPU/event':>10} {'max lag':>8} {'delivered':>10}")
    for r in results:
        print(f"{r['mode']:22} {r['rssPerStreamKiB']:8.1f} KiB {r['p50ms']:6.2f}ms {r['p99ms']:6.2f}ms "
              f"{r['cpuPerEventUs']:7.1f} µs {r['maxLagMs']:6.1f}ms {r['delivered']:>6}/{r['events']}")
    for r in results:
        if r is not base:
            print(f"{r['mode']} / starlette: RSS per stream {r['rssPerStreamKiB'] / base['rssPerStreamKiB']:.2f}x, "
                  f"CPU per event {r['cpuPerEventUs'] / base['cpuPerEventUs']:.2f}x, "
                  f"p99 {r['p99ms'] / base['p99ms']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=600.0, help="events/s (200 calls/s = 600 events/s)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--heartbeat", type=float, default=15.0)
    parser.add_argument("--modes", nargs="*", choices=MODES)
    parser.add_argument("--serve", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        from mxproxy import runtime

        runtime.run(_serve(args.serve, args.heartbeat))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        asyncio.run(main(args))

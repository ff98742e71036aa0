"""Webhook path: event published on the bus → outbox row → signed POST at the receiver.

    .venv/bin/python bench/webhooks.py                    # ~40 s: baseline, 200 calls/s, burst
    .venv/bin/python bench/webhooks.py --pg postgresql://postgres@127.0.0.1:5432/test

This process is the proxy's webhook side: a ``WebhookService`` (the real outbox writer, worker,
signer and SSRF guard) on a SQLite store in a temporary folder (``--pg``: a throw-away schema of
that PostgreSQL), with one subscription to ``call.*``. Events are handed to its EventBus sink as
the bus does, stamped with the publishing moment (``time.time()``) in ``data.publishedAt``. The
receiver runs in another process (an aiohttp server on loopback answering 204), records
``arrival - publishedAt`` per request and reports when stdin closes.

Figures:
* baseline, same run: bare aiohttp POSTs of the same bodies to the same receiver at the same
  rate (no store, no signature, one session, a task per event): the floor of "event → request";
* steady: ``--calls`` calls/s (each call.ringing, call.answered, call.ended, spread evenly) for
  ``--seconds``: event → webhook request p50/p99/max, deliveries/s, CPU of this process, and the
  split: event → row stored, stored → claimed, claimed → outcome recorded (store clock), and
  event → claimed per type (a call's next event waits for the previous one's outcome);
* burst: ``--burst`` events published at once: outbox rows stored/s (writer) and delivered/s
  (claims + requests), end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, load_average, stop_child

from mxproxy.config import WebhooksConfig
from mxproxy.events.model import Event
from mxproxy.store.sqlite import SQLiteStore
from mxproxy.webhooks.service import WebhookService


# --- the receiver process --------------------------------------------------------------------
async def receiver_main() -> None:
    from aiohttp import web

    latencies: list[float] = []
    arrivals: list[float] = []
    verified = 0
    secret = sys.stdin.readline().strip()
    from standardwebhooks import Webhook

    webhook = Webhook(secret) if secret else None

    async def handle(request: web.Request) -> web.Response:
        nonlocal verified
        body = await request.read()
        now = time.time()
        event = json.loads(body)
        latencies.append(now - event["data"]["publishedAt"])
        arrivals.append(now)
        if webhook is not None and "webhook-signature" in request.headers and len(latencies) % 100 == 0:
            webhook.verify(body, dict(request.headers))  # a sample: verifying is the receiver's cost
            verified += 1
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handle)
    app.router.add_post("/reset", lambda r: _reset(latencies, arrivals))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if line.strip() == "REPORT":
            print(json.dumps({"latencies": latencies, "first": min(arrivals, default=0), "last": max(arrivals, default=0),
                              "verified": verified}), flush=True)
            latencies.clear()
            arrivals.clear()


async def _reset(latencies: list[float], arrivals: list[float]) -> Any:
    from aiohttp import web

    latencies.clear()
    arrivals.clear()
    return web.Response(status=204)


class ReceiverProcess:
    def __init__(self, secret: str) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--receiver"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(secret + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"receiver did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}/hook"

    def report(self) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write("REPORT\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stop(self) -> None:
        stop_child(self.proc, 5)


# --- the proxy side --------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def make_event(n: int, kind: str, call: int) -> Event:
    now = time.time()
    return Event(id=n, type=kind, user=f"user{call % 100}", time=now,
                 data={"callUUID": f"bench-{call}", "callId": str(call), "direction": "inbound",
                       "remoteNumber": "5550100", "remoteName": "Peter Hyde", "publishedAt": now})


async def paced(seconds: float, calls_per_second: int, publish: Any) -> int:
    """``calls_per_second`` calls, each three events, spread evenly; returns events published."""
    loop = asyncio.get_running_loop()
    interval = 1.0 / (calls_per_second * 3)
    start = loop.time()
    n = 0
    kinds = ("call.ringing", "call.answered", "call.ended")
    total = int(seconds * calls_per_second * 3)
    while n < total:
        due = start + n * interval
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        while n < total and start + n * interval <= loop.time():
            call = n // 3
            publish(make_event(n + 1, kinds[n % 3], call))
            n += 1
    return n


async def wait_received(receiver_count: Any, expected: int, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while receiver_count() < expected and loop.time() < deadline:
        await asyncio.sleep(0.05)


async def baseline(url: str, seconds: float, calls: int) -> None:
    """The same bodies at the same rate, POSTed by a bare aiohttp session (the client the worker
    uses; httpx costs 7-18x the CPU per request here), a task per event: no store, no signature."""
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        pending: set[asyncio.Task[Any]] = set()

        async def post(body: bytes) -> None:
            async with session.post(url, data=body, headers={"content-type": "application/json"}) as response:
                await response.read()

        def publish(event: Event) -> None:
            task = asyncio.create_task(post(event.json_bytes()))
            pending.add(task)
            task.add_done_callback(pending.discard)

        await paced(seconds, calls, publish)
        while pending:
            await asyncio.sleep(0.05)


async def open_store(args: argparse.Namespace, directory: Path) -> Any:
    if args.pg:
        from mxproxy.store.postgres import PostgresStore

        store = PostgresStore(args.pg, "bench key", schema=f"bench_webhooks_{secrets.token_hex(4)}", max_size=10)
    else:
        store = SQLiteStore(directory / "bench.db", "bench key")
    await store.open()
    return store


async def drop_schema(args: argparse.Namespace, store: Any) -> None:
    if args.pg:
        import asyncpg

        conn = await asyncpg.connect(args.pg)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')
        finally:
            await conn.close()


def line(name: str, latencies: list[float], count: int, seconds: float, cpu_s: float | None = None) -> str:
    ms = [v * 1000 for v in latencies]
    text = (f"{name:<28} {count:>7} req  {count / seconds if seconds else 0:>7.0f}/s  p50 {pct(ms, 50):6.1f} ms  "
            f"p99 {pct(ms, 99):6.1f} ms  max {max(ms, default=float('nan')):6.1f} ms")
    if cpu_s is not None:
        text += f"  CPU {cpu_s / seconds * 100:4.0f}%"
    return text


async def run(args: argparse.Namespace) -> None:
    print(f"bench/webhooks.py  store={'PostgreSQL' if args.pg else 'SQLite'}  load average {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(args, Path(tmp))
        config = WebhooksConfig(enabled=True, allow_networks=("127.0.0.0/8",), retry_min=0.1, retry_max=1.0,
                                poll_interval=1.0)
        from mxproxy.metrics import Metrics

        metrics = Metrics()
        service = WebhookService(config, store, metrics=metrics)
        await service.start()
        _, secret = await service.create("http://127.0.0.1:1/placeholder", ["call.*"], None)
        receiver = ReceiverProcess(secret)
        try:
            hook = (await store.list_webhooks())[0]
            await service.update(hook.id, url=receiver.url)
            # baseline: bare httpx at the same rate
            await baseline(receiver.url, args.seconds, args.calls)
            report = receiver.report()
            base = report["latencies"]
            print(line("baseline: bare aiohttp POST", base, len(base), args.seconds))
            # steady: through the outbox; claim moments noted to split the latency
            claimed_at: dict[int, float] = {}
            claim = store.claim_deliveries

            async def noting_claims(*a: Any, **k: Any) -> Any:
                rows = await claim(*a, **k)
                now = time.time()
                claimed_at.update((row.id, now) for row in rows)
                return rows

            store.claim_deliveries = noting_claims  # type: ignore[method-assign]
            before = cpu()
            published = await paced(args.seconds, args.calls, service.writer)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while loop.time() < deadline:
                depth = await store.outbox_depth()
                if depth == 0 and service.writer.queued == 0:
                    break
                await asyncio.sleep(0.1)
            used = cpu() - before
            report = receiver.report()
            steady = report["latencies"]
            print(line(f"webhooks: {args.calls} calls/s", steady, len(steady), args.seconds, used))
            retries = metrics.registry.get_sample_value("mxproxy_webhook_deliveries_total", {"result": "retry"}) or 0
            if retries:
                print(f"  {retries:.0f} attempts were retried")
            if len(steady) != published:
                print(f"  !! published {published} events, receiver got {len(steady)}")
            store.claim_deliveries = claim  # type: ignore[method-assign]
            rows = await store._all("SELECT id, event_type, event_time, created_at, delivered_at "
                                    f"FROM {store._deliveries}")
            rows = [r for r in rows if r["id"] in claimed_at and r["delivered_at"] is not None]
            for name, values in (
                ("event -> row stored", [r["created_at"] - r["event_time"] for r in rows]),
                ("row stored -> claimed", [claimed_at[r["id"]] - r["created_at"] for r in rows]),
                ("claimed -> outcome recorded", [r["delivered_at"] - claimed_at[r["id"]] for r in rows]),
                *((f"event -> {kind} claimed", [claimed_at[r["id"]] - r["event_time"] for r in rows
                                                if r["event_type"] == kind])
                  for kind in ("call.ringing", "call.answered", "call.ended")),
            ):
                print(f"  {name:<30} p50 {pct(values, 50) * 1000:6.1f} ms  p99 {pct(values, 99) * 1000:6.1f} ms")
            ratio = pct(steady, 99) / pct(base, 99) if base else float("nan")
            print(f"  event -> webhook request p99 {pct(steady, 99) * 1000:.1f} ms (target 50 ms), "
                  f"{ratio:.1f}x the bare-aiohttp baseline p99; load average {load_average()}")
            # burst: outbox throughput
            t0 = time.perf_counter()
            before = cpu()
            for n in range(args.burst):
                service.writer(make_event(10_000_000 + n, "call.ringing", 1_000_000 + n))
            while service.writer.queued:
                await asyncio.sleep(0.01)
            stored = time.perf_counter() - t0
            while await store.outbox_depth() > 0 and time.perf_counter() - t0 < 120:
                await asyncio.sleep(0.05)
            total = time.perf_counter() - t0
            used = cpu() - before
            report = receiver.report()
            print(f"burst of {args.burst}: stored in {stored:.2f}s ({args.burst / stored:,.0f} rows/s), "
                  f"delivered in {total:.2f}s ({len(report['latencies']) / total:,.0f} deliveries/s), "
                  f"CPU {used:.1f}s; load average {load_average()}")
        finally:
            receiver.stop()
            await service.aclose()
            await drop_schema(args, store)
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--receiver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=200, help="calls per second (3 events each)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--pg", default="", help="a PostgreSQL DSN: use a throw-away schema there")
    args = parser.parse_args()
    if args.receiver:
        asyncio.run(receiver_main())
        return
    sys.path.insert(0, str(ROOT))
    from mxproxy import runtime

    runtime.run(run(args))


if __name__ == "__main__":
    main()

"""Start-up resume: stored users → every one of them logged in and monitored again.

    .venv/bin/python bench/resume.py --n 1000
    .venv/bin/python bench/resume.py --n 10000
    .venv/bin/python bench/resume.py --n 1000 --n 10000     # both, and the scaling ratio
    .venv/bin/python bench/resume.py --n 1000 --asyncio     # on asyncio's own loop (the fallback)

What a restart does: the SQLite store already holds ``n`` users (inserted before the clock
starts, passwords encrypted as usual), then ``ProxyServer.start()`` opens the store, loads the
keys, and the session manager resumes every user concurrently (``[mx] resumeConcurrency``,
default 100) against the MX simulator in a separate process (bench/simserver.py). The figure is
the time from ``start()`` to the moment every user is live, per user, and the 10k/1k per-user
ratio (1.0 = linear scaling). Both processes raise ``RLIMIT_NOFILE`` themselves. The proxy runs on
the loop ``mxproxy serve`` uses (uvloop, ``mxproxy.runtime``) pinned to one CPU, the simulator on
the other.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from common import SimProcess, load_average, pin_to_first_cpu, raise_nofile, rss_bytes

from mxproxy import runtime
from mxproxy.config import parse_config
from mxproxy.server import Listen, ProxyServer
from mxproxy.store import create_store
from mxproxy.store.base import UserRecord

STORE_KEY = "bench-store-key"


async def fill_store(db: str, n: int, host: str) -> float:
    """Insert ``n`` users the way sign-in stores them; returns the seconds it took."""
    store = create_store(db, STORE_KEY)
    await store.open()
    start = time.perf_counter()
    gate = asyncio.Semaphore(64)

    async def put(i: int) -> None:
        async with gate:
            await store.put_user(UserRecord(login=f"user{i}", host=host, mx_login=f"user{i}", password="pw"))

    await asyncio.gather(*(put(i) for i in range(n)))
    took = time.perf_counter() - start
    await store.close()
    return took


async def resume(n: int, concurrency: int, timeout: float, others: set[int]) -> dict[str, float]:
    with SimProcess("--users", str(n)) as sim, tempfile.TemporaryDirectory() as tmp:
        if others:
            os.sched_setaffinity(sim.proc.pid, others)
        db = str(Path(tmp) / "mxproxy.db")
        filled = await fill_store(db, n, f"127.0.0.1:{sim.port}")
        config = parse_config({
            "apps": {"bench": "bench-secret"},
            "server": {"storeKey": STORE_KEY},
            "mx": {"resumeConcurrency": concurrency, "connectTimeout": "10s", "responseTimeout": "10s"},
            "static": {"mode": "direct", "host": f"127.0.0.1:{sim.port}"},
        }, base_dir=Path(tmp))
        server = ProxyServer(config, public=Listen("127.0.0.1", 0), admin_enabled=False, db=db)
        rss_before = rss_bytes()
        cpu_before = time.process_time()
        start = time.perf_counter()
        await server.start()
        started = time.perf_counter() - start
        deadline = start + timeout
        while server.sessions.stats.live_sessions < n and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        all_live = time.perf_counter() - start
        cpu = time.process_time() - cpu_before
        live = server.sessions.stats.live_sessions
        rss_after = rss_bytes()
        sim_cpu = sim.cpu_seconds()
        stop_start = time.perf_counter()
        await server.stop()
        stopped = time.perf_counter() - stop_start
    return {"n": n, "filled": filled, "started": started, "all_live": all_live, "live": live, "cpu": cpu,
            "sim_cpu": sim_cpu, "rss_mib": (rss_after - rss_before) / 2**20, "stopped": stopped}


async def main(args: argparse.Namespace) -> None:
    sizes = args.n or [1000]
    raise_nofile(max(sizes) + 1024)
    others = pin_to_first_cpu() if args.pin else set()
    print(f"load average before: {load_average()}; proxy on one CPU, simulator on {sorted(others) or 'any'}; "
          f"{runtime.describe(asyncio.get_running_loop(), runtime.http_protocol())}", flush=True)
    results = []
    for n in sizes:
        r = await resume(n, args.concurrency, args.timeout, others)
        results.append(r)
        per = r["all_live"] / n * 1000
        print(f"{n:6d} users: store filled in {r['filled']:.1f}s (not counted); start() returned after "
              f"{r['started']:.2f}s; all {r['live']}/{n} live after {r['all_live']:.2f}s "
              f"({n / r['all_live']:.0f} users/s, {per:.2f} ms per user); proxy CPU {r['cpu']:.1f}s "
              f"({r['cpu'] / n * 1000:.2f} ms/user), simulator CPU {r['sim_cpu']:.1f}s; "
              f"RSS +{r['rss_mib']:.0f} MiB; stop (logout all) {r['stopped']:.1f}s", flush=True)
    if len(results) > 1:
        small, big = results[0], results[-1]
        ratio = (big["all_live"] / big["n"]) / (small["all_live"] / small["n"])
        print(f"per-user cost {big['n']} vs {small['n']}: {ratio:.2f} (1.00 = linear)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, action="append", help="stored users (repeat for several runs)")
    parser.add_argument("--concurrency", type=int, default=100, help="[mx] resumeConcurrency")
    parser.add_argument("--timeout", type=float, default=100.0, help="give up waiting after this many seconds")
    parser.add_argument("--asyncio", action="store_true",
                        help="asyncio's own event loop instead of uvloop (what mxproxy serve falls back to)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin the two processes to CPUs")
    arguments = parser.parse_args()
    asyncio.run(main(arguments)) if arguments.asyncio else runtime.run(main(arguments))

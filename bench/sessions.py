"""Client memory per idle, logged-in, monitored Zultys session.

    .venv/bin/python bench/sessions.py --n 1000     (also 5000, 10000)

The simulator runs in a separate process (bench/simserver.py) so only the client's memory is
measured: RSS after the event loop, the connector and a first session are warm, then RSS with
``n`` sessions open (each logged in, ``MonitorStart`` done, an ``events()`` consumer waiting, as
the session manager keeps them), after a quiet second. Per session = growth / n.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time

from common import SimProcess, raise_nofile, rss_bytes

from mxproxy.config import MXConfig
from mxproxy.connectors.base import MXAccount
from mxproxy.connectors.zultys import ZultysConnector


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    raise_nofile(args.n + 1024)
    with SimProcess("--users", str(args.n)) as sim:
        connector = ZultysConnector(MXConfig())
        warm = await connector.login(MXAccount("127.0.0.1", sim.port, "bench", "bench-pw"))
        await warm.start_monitor()
        gc.collect()
        await asyncio.sleep(0.5)
        before = rss_bytes()

        sessions = []
        consumers = []
        gate = asyncio.Semaphore(args.concurrency)

        async def drain(session) -> None:
            async for _ in session.events():
                pass

        async def open_one(i: int) -> None:
            async with gate:
                session = await connector.login(MXAccount("127.0.0.1", sim.port, f"user{i}", "pw"))
                await session.start_monitor()
                sessions.append(session)
                consumers.append(asyncio.create_task(drain(session)))

        start = time.perf_counter()
        await asyncio.gather(*(open_one(i) for i in range(args.n)))
        opened = time.perf_counter() - start
        await asyncio.sleep(1.0)
        gc.collect()
        after = rss_bytes()
        alive = sum(s.is_alive for s in sessions)
        per = (after - before) / args.n
        print(f"sessions: {args.n} opened in {opened:.1f}s ({args.n / opened:.0f}/s), {alive} alive")
        print(f"client RSS: before {before / 2**20:.1f} MiB, after {after / 2**20:.1f} MiB, "
              f"per idle session {per / 1024:.1f} KiB")
        for session in sessions:
            await session.close()
        for task in consumers:
            task.cancel()
        await warm.close()


if __name__ == "__main__":
    from mxproxy import runtime
    runtime.run(main())

"""In-process cost of the public app per request (µs), against a bare Starlette app: no sockets.

    .venv/bin/python bench/asgi.py                 # --n 20000 --repeat 7

The same server as bench/api.py (``start_proxy``: the real ``ProxyServer`` against the simulator
process), but requests are handed to the ASGI app directly, one after another, and the time is
the **best of** ``--repeat`` loops of ``--n`` requests, in CPU time of this thread. What the HTTP parser, the loop and the
sockets cost is left out (bench/api.py measures all of it); what is left is the app's own work per
request (middleware, routing, token check, session look-up, rendering, gzip), which is what the
changes of issue 14 step 2 remove. On this shared machine a best-of is far steadier than wrk's
requests/s, so this is where each step's before/after is read first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from api import SIMULATOR_ARGS, USERS, bare, constant, raw_answer, sign_in, start_proxy
from common import SimProcess, load_average, pin_to_first_cpu
from starlette.applications import Starlette
from starlette.routing import Route

from mxproxy import runtime


def scope_for(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }


async def cost_us(app: Any, path: str, headers: dict[str, str], n: int, repeat: int) -> float:
    """Best of ``repeat`` loops: µs per request of ``app`` answering ``GET path``."""
    template = scope_for(path, headers)
    statuses: list[int] = []
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()  # CPU time: being preempted by other work does not count
        for _ in range(n):
            await app({**template, "state": {}}, receive, send)
        best = min(best, (time.thread_time() - started) / n * 1e6)
    assert set(statuses) == {200}, set(statuses)
    return best


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    others = pin_to_first_cpu()
    print(f"load average before: {load_average()}; "
          f"{runtime.describe(asyncio.get_running_loop(), runtime.http_protocol())}")
    with SimProcess(*SIMULATOR_ARGS) as sim, tempfile.TemporaryDirectory() as tmp:
        if others:
            os.sched_setaffinity(sim.proc.pid, others)
        server = await start_proxy(sim, Path(tmp))
        try:
            assert server._public is not None and server._public.server is not None
            app = server._public.server.config.app
            async with httpx.AsyncClient(base_url=server.public_url) as client:
                tokens = {name: await sign_in(client, name, "pw") for name in USERS}
                me = {"Authorization": f"Bearer {tokens['bench@example.org']}"}
                log27 = {"Authorization": f"Bearer {tokens['log27@example.org']}"}
                gz = {"Accept-Encoding": "gzip"}
                contacts = await raw_answer(client, "/contacts", {**me, **gz})
                calls = await raw_answer(client, "/calls", {**log27, **gz})
            bare_app = Starlette(routes=[Route("/bare", bare), Route("/contacts", constant(*contacts)),
                                         Route("/calls", constant(*calls))])
            rows = [
                ("GET /auth, gzip asked", "/auth", {**me, **gz}, n := args.n),
                ("GET /auth, no Accept-Encoding", "/auth", me, n),
                ("GET /contacts (117), gzip asked", "/contacts", {**me, **gz}, max(1, n // 10)),
                ("GET /calls (27), gzip asked", "/calls", {**log27, **gz}, max(1, n // 10)),
            ]
            print(f"best of {args.repeat} loops; µs per request, in process (no HTTP parsing, no sockets)")
            for label, path, headers, count in rows:
                bare_path = "/bare" if path == "/auth" else path
                base = await cost_us(bare_app, bare_path, headers, count, args.repeat)
                ours = await cost_us(app, path, headers, count, args.repeat)
                print(f"{label:<34} {ours:8.1f} µs   bare {base:6.1f} µs   {ours / base:5.2f} x bare   "
                      f"(+{ours - base:.1f} µs)")
        finally:
            await server.stop()
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    runtime.run(main())

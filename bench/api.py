"""Public API throughput and latency on loopback, against a bare route in the same run.

    .venv/bin/python bench/api.py                  # --seconds 5 --connections 16 --generator auto

The real server: ``ProxyServer`` (SQLite store, key ring, static provisioning, session manager,
Zultys connector, ``create_app``) on 127.0.0.1, the MX simulator in its own process
(bench/simserver.py: 117 people in the directory, call logs of 27 and 42 entries). The baseline
is a bare Starlette route answering a JSON object of the same shape as ``GET /auth``, served by
the same uvicorn setup (``mxproxy.server._HTTPServer``) on the same event loop. The load
generator (wrk when installed, else an httpx async client; bench/loadgen.py) runs in a child
process, so the server has one core to itself.

Figures: requests/s and p50/p99 for the bare route, ``GET /auth`` (ratio to bare; target ≥ 0.8),
``GET /contacts`` (117 contacts) and ``GET /calls`` (logs of 27 and 42 entries; target p99
< 100 ms). ``--call-log-idle`` sets ``[mx] callLogIdle`` (default: the shipped 1s).

Requests carry ``Accept-Encoding: gzip`` like the phone apps' HTTP stacks (OkHttp, NSURLSession)
do; ``GET /auth`` is also measured without it (wrk's default). The bare route gets the same
request bytes. ``GET /calls`` is measured with the per-user call-log cache warm (what a user's
repeated requests see); the cost of a miss (one MX query, which for a log ending on a 21-record
chunk boundary includes the ``callLogIdle`` gap) is printed separately: one request right after
the cache was invalidated, and 16 concurrent ones (they share one MX query).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import SimProcess, raise_nofile
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import loadgen
from mxproxy.config import parse_config
from mxproxy.server import Listen, ProxyServer, _HTTPServer

CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret"
USERS = {  # sign-in name → (MX login, MX password, what the bench does with them)
    "bench@example.org": ("bench", "bench-pw"),
    "log27@example.org": ("user0", "pw"),
    "log42@example.org": ("user1", "pw"),
}


async def bare(request: Request) -> Response:
    """What ``GET /auth`` answers, with no work behind it."""
    return JSONResponse({"mx": "63022", "ext": "201", "jid": "1001", "softPhonePwd": "secret-ish"})


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> str:
    r = await client.post("/auth", data={"username": username, "password": password, "grant_type": "password"},
                          auth=(CLIENT_ID, CLIENT_SECRET))
    r.raise_for_status()
    return r.json()["access_token"]


def row(name: str, result: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    ratio = f"{result['rps'] / base['rps']:.2f} of bare" if base else ""
    errors = f"  ({result['errors']} errors)" if result["errors"] else ""
    return (f"{name:<28} {result['rps']:9.0f} req/s   p50 {result['p50_ms']:7.2f} ms   "
            f"p99 {result['p99_ms']:7.2f} ms   {ratio}{errors}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="bare and /auth alternate this many times")
    parser.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--call-log-idle", default=None, help='[mx] callLogIdle, e.g. "1s" (the default)')
    args = parser.parse_args()
    raise_nofile(4096)
    with SimProcess("--users", "2", "--directory", "114", "--call-log", "user0=27", "--call-log", "user1=42") as sim, \
            tempfile.TemporaryDirectory() as tmp:
        mx: dict[str, Any] = {"connectTimeout": "2s", "responseTimeout": "5s"}
        if args.call_log_idle:
            mx["callLogIdle"] = args.call_log_idle
        config = parse_config({
            "apps": {CLIENT_ID: CLIENT_SECRET},
            "server": {"storeKey": "bench-store-key"},
            "mx": mx,
            "static": {"mode": "users", "host": f"127.0.0.1:{sim.port}",
                       "users": {name: {"password": "pw", "mxLogin": login, "mxPassword": mx_pw}
                                 for name, (login, mx_pw) in USERS.items()}},
        }, base_dir=Path(tmp))
        server = ProxyServer(config, public=Listen("127.0.0.1", 0), admin_enabled=False,
                             db=str(Path(tmp) / "mxproxy.db"))
        await server.start()
        baseline = _HTTPServer("bare", Listen("127.0.0.1", 0), 1)
        await baseline.start(Starlette(routes=[Route("/bare", bare)]))
        try:
            async with httpx.AsyncClient(base_url=server.public_url) as client:
                tokens = {name: await sign_in(client, name, "pw") for name in USERS}
                me = await client.get("/auth", headers={"Authorization": f"Bearer {tokens['bench@example.org']}"})
                contacts = await client.get("/contacts", headers={"Authorization": f"Bearer {tokens['bench@example.org']}"})
                sizes = {name: len((await client.get("/calls", headers={"Authorization": f"Bearer {tokens[name]}"}))
                                   .json()["callLog"]) for name in ("log27@example.org", "log42@example.org")}
            assert me.status_code == 200, me.text
            assert len(contacts.json()["contacts"]) == 117, len(contacts.json()["contacts"])
            assert sizes == {"log27@example.org": 27, "log42@example.org": 42}, sizes

            async def load(url: str, token: str | None = None, gzip: bool = True) -> dict[str, Any]:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                if gzip:
                    headers["Accept-Encoding"] = "gzip"
                return await loadgen.run(url, seconds=args.seconds, connections=args.connections,
                                         headers=headers, generator=args.generator)

            async def call_log_miss(client: httpx.AsyncClient, name: str, concurrent: int) -> float:
                """Milliseconds until ``concurrent`` GET /calls right after the user's cache was dropped
                are all answered, and how many MX queries that took."""
                session = server.sessions.get(USERS[name][0])
                session.call_log_cache.invalidate()
                before = session.call_log_cache.fetches
                headers = {"Authorization": f"Bearer {tokens[name]}", "Accept-Encoding": "gzip"}
                started = time.perf_counter()
                answers = await asyncio.gather(*(client.get("/calls", headers=headers) for _ in range(concurrent)))
                elapsed = (time.perf_counter() - started) * 1000
                assert {r.status_code for r in answers} == {200}
                assert session.call_log_cache.fetches == before + 1, "concurrent misses must share one MX query"
                return elapsed

            bare_url = f"http://127.0.0.1:{baseline.port}/bare"
            api = server.public_url
            me_token = tokens["bench@example.org"]
            await load(bare_url, me_token)  # warm-up: both servers and the generator
            bare_runs, auth_runs, bare_plain_runs, plain_runs = [], [], [], []
            for _ in range(args.rounds):
                # the same request bytes (Authorization, Accept-Encoding) as GET /auth: only the app differs
                bare_runs.append(await load(bare_url, me_token))
                auth_runs.append(await load(f"{api}/auth", me_token))
                bare_plain_runs.append(await load(bare_url, me_token, gzip=False))
                plain_runs.append(await load(f"{api}/auth", me_token, gzip=False))
            best_bare = max(bare_runs, key=lambda r: r["rps"])
            best_auth = max(auth_runs, key=lambda r: r["rps"])
            best_bare_plain = max(bare_plain_runs, key=lambda r: r["rps"])
            best_plain = max(plain_runs, key=lambda r: r["rps"])
            results = [("contacts (117)", await load(f"{api}/contacts", me_token))]
            misses: dict[str, tuple[float, float]] = {}
            async with httpx.AsyncClient(base_url=api, limits=httpx.Limits(max_connections=64)) as client:
                for name, label in (("log27@example.org", "calls (27 entries)"), ("log42@example.org", "calls (42 entries)")):
                    misses[label] = (await call_log_miss(client, name, 1), await call_log_miss(client, name, 16))
                    results.append((label, await load(f"{api}/calls", tokens[name])))
            idle = config.mx.call_log_idle
            print(f"generator: {best_bare['generator']}, {args.connections} connections, {args.seconds:g}s per figure, "
                  f"best of {args.rounds} for bare and /auth; Accept-Encoding: gzip unless said; "
                  f"mx.callLogIdle {idle:g}s, mx.callLogTTL {server.sessions.options.call_log_ttl:g}s")
            print(row("bare Starlette JSON route", best_bare))
            print(row("GET /auth", best_auth, best_bare))
            print(row("bare route (no Accept-Enc.)", best_bare_plain))
            print(row("GET /auth (no Accept-Enc.)", best_plain, best_bare_plain))
            for name, result in results:
                print(row(f"GET /{name}", result, best_bare))
            for label, (one, sixteen) in misses.items():
                print(f"GET /{label}, cache miss: 1 request {one:7.1f} ms; 16 concurrent {sixteen:7.1f} ms "
                      f"(one MX query)")
            ratio = best_auth["rps"] / best_bare["rps"]
            plain = best_plain["rps"] / best_bare_plain["rps"]
            print(f"GET /auth / bare: {ratio:.2f} with gzip asked, {plain:.2f} without "
                  f"(target >= 0.8: {'ok' if min(ratio, plain) >= 0.8 else 'MISSED'}); "
                  f"runs bare {[round(r['rps']) for r in bare_runs]}, auth {[round(r['rps']) for r in auth_runs]}; "
                  f"without gzip: bare {[round(r['rps']) for r in bare_plain_runs]}, "
                  f"auth {[round(r['rps']) for r in plain_runs]}")
            if best_bare["generator"] == "httpx":
                print("note: the httpx generator is slower than this server (it, not the server, sets the pace); "
                      "ratios need wrk (apt-get install wrk)")
            worst = max(r["p99_ms"] for name, r in results if name.startswith("calls"))
            print(f"GET /calls worst p99 (cache warm): {worst:.1f} ms (target < 100 ms: {'ok' if worst < 100 else 'MISSED'})")
        finally:
            baseline.request_stop()
            await baseline.wait()
            await server.stop()


if __name__ == "__main__":
    asyncio.run(main())

"""Public API throughput and latency on loopback, against the best bare route in the same run.

    .venv/bin/python bench/api.py                  # --seconds 5 --connections 32 --rounds 3
    .venv/bin/python bench/api.py --connections 1 --only auth
    .venv/bin/python bench/api.py --connections 1 --only auth --paired --rounds 11 --seconds 2

The real server: ``ProxyServer`` (SQLite store, key ring, static provisioning, session manager,
Zultys connector, ``create_app``) on 127.0.0.1, on the event loop and HTTP parser ``mxproxy
serve`` uses (``mxproxy.runtime``: uvloop + httptools), the MX simulator in its own process
(bench/simserver.py: 117 people in the directory, call logs of 27 and 42 entries).

Baselines — the best a plain route does on this platform: a bare Starlette app (no middleware)
under a stock uvicorn with uvloop and httptools, in this process, on the same loop. ``bare`` answers
the four-field object of ``GET /auth`` with ``JSONResponse``; ``bare bytes`` routes answer, as a
constant, exactly the bytes (and ``Content-Type``/``Content-Encoding``) that ``GET /contacts`` and
``GET /calls`` answered, so their ratio is what serving that answer costs beyond the platform.
The script refuses to run when uvloop or httptools is missing (the baseline would not be the best).

Pinning: this process (both servers) on the first allowed CPU; the load generator (wrk, else an
httpx client; bench/loadgen.py) and the simulator on the others. Each figure is the **median** of
``--rounds`` runs, baseline and route alternating; the load average is printed before and after.

Requests carry ``Accept-Encoding: gzip`` like the phone apps' HTTP stacks (OkHttp, NSURLSession);
``GET /auth`` is also measured without it (wrk's default). ``GET /calls`` is measured with the
per-user call-log cache warm; the cost of a miss (one MX query, 16 concurrent requests sharing it)
is printed separately. Targets (issue 14): ``GET /auth`` ≥ 0.8 × bare at 32 connections, p99 ≤
1.2 × bare's at 1 connection; cached ``GET /contacts`` ≥ 0.6 × its bare bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

import httpx
import uvicorn
from common import SimProcess, load_average, pin_to_first_cpu, raise_nofile
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import loadgen
from mxproxy import runtime
from mxproxy.config import parse_config
from mxproxy.server import Listen, ProxyServer, bind_socket

CLIENT_ID, CLIENT_SECRET = "bench-client", "bench-secret"
USERS = {  # sign-in name → (MX login, MX password)
    "bench@example.org": ("bench", "bench-pw"),
    "log27@example.org": ("user0", "pw"),
    "log42@example.org": ("user1", "pw"),
}
Result = dict[str, Any]


async def bare(request: Request) -> Response:
    """What ``GET /auth`` answers, with no work behind it."""
    return JSONResponse({"mx": "63022", "ext": "201", "jid": "1001", "softPhonePwd": "secret-ish"})


def constant(body: bytes, headers: dict[str, str]) -> Callable[[Request], Awaitable[Response]]:
    """A route answering ``body`` as it is: the floor for serving an answer already rendered."""
    async def route(request: Request) -> Response:
        return Response(body, headers=headers)
    return route


class BareServer:
    """A stock uvicorn (uvloop + httptools, no middleware) serving ``app`` on the current loop."""

    def __init__(self, app: Any) -> None:
        loop = asyncio.get_running_loop()
        if not type(loop).__module__.startswith("uvloop") or runtime.http_protocol() == "h11":
            raise SystemExit("bench/api.py: the baseline needs uvloop and httptools installed (make install)")
        self.sock = bind_socket(Listen("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = _QuietServer(uvicorn.Config(app, http="httptools", lifespan="off", log_config=None,
                                                  access_log=False))
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task
        self.sock.close()


class _QuietServer(uvicorn.Server):
    """Signals stay with the script."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


SIMULATOR_ARGS = ("--users", "2", "--directory", "114", "--call-log", "user0=27", "--call-log", "user1=42")


async def start_proxy(sim: SimProcess, tmp: Path, call_log_idle: str | None = None) -> ProxyServer:
    """The real server with the bench users (static provisioning) against ``sim``."""
    mx: dict[str, Any] = {"connectTimeout": "2s", "responseTimeout": "5s"}
    if call_log_idle:
        mx["callLogIdle"] = call_log_idle
    config = parse_config({
        "apps": {CLIENT_ID: CLIENT_SECRET},
        "server": {"storeKey": "bench-store-key"},
        "mx": mx,
        "static": {"mode": "users", "host": f"127.0.0.1:{sim.port}",
                   "users": {name: {"password": "pw", "mxLogin": login, "mxPassword": mx_pw}
                             for name, (login, mx_pw) in USERS.items()}},
    }, base_dir=tmp)
    server = ProxyServer(config, public=Listen("127.0.0.1", 0), admin_enabled=False, db=str(tmp / "mxproxy.db"))
    await server.start()
    return server


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> str:
    r = await client.post("/auth", data={"username": username, "password": password, "grant_type": "password"},
                          auth=(CLIENT_ID, CLIENT_SECRET))
    r.raise_for_status()
    return r.json()["access_token"]


async def raw_answer(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    """The body as sent (still compressed) and the headers a constant copy must repeat."""
    async with client.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200, r.status_code
        body = b"".join([chunk async for chunk in r.aiter_raw()])
    keep = {k: v for k, v in r.headers.items() if k in ("content-type", "content-encoding", "vary")}
    return body, keep


class GcWatch:
    """Garbage collections in this process (both servers) during one load run: how many per
    generation and the longest pause, so a tail that is ours (a collection our requests trigger)
    can be told from one the scheduler makes (another process holding the core)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.longest = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.counts[info["generation"]] += 1
        self.longest = max(self.longest, time.perf_counter() - self._started)

    def __enter__(self) -> "GcWatch":
        gc.callbacks.append(self)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self)


class ServiceCpu:
    """CPU time of the server thread from a request's first byte parsed (httptools'
    ``on_message_begin``) to its answer written (``on_response_complete``), per request, for
    both servers (the proxy's protocol subclasses the same uvicorn class). At one connection
    nothing else runs in between, and thread CPU time does not count the time other processes
    hold the core: its tail is the tail of our own work (a collection, a timer, a slow path),
    which wall-clock p99 on this shared machine cannot show."""

    def __init__(self) -> None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        self.samples: list[int] | None = None
        watch = self
        begin, complete = HttpToolsProtocol.on_message_begin, HttpToolsProtocol.on_response_complete

        def on_message_begin(protocol: Any) -> None:
            protocol._bench_cpu = time.thread_time_ns()
            begin(protocol)

        def on_response_complete(protocol: Any) -> None:
            complete(protocol)
            started = getattr(protocol, "_bench_cpu", None)
            if watch.samples is not None and started is not None:
                watch.samples.append(time.thread_time_ns() - started)

        HttpToolsProtocol.on_message_begin = on_message_begin  # type: ignore[method-assign]
        HttpToolsProtocol.on_response_complete = on_response_complete  # type: ignore[method-assign]

    def start(self) -> None:
        self.samples = []

    def stop(self) -> dict[str, float]:
        samples, self.samples = sorted(self.samples or [0]), None
        at = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] / 1000  # noqa: E731
        return {"p50": at(0.5), "p99": at(0.99), "p999": at(0.999), "max": samples[-1] / 1000}


def median(runs: list[Result]) -> Result:
    """The run with the median requests/s (its p50 goes with it), plus every run's figure; the
    p99 is the median of the runs' p99s (one run's tail is mostly what the scheduler did in it)."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    middle = dict(ordered[(len(ordered) - 1) // 2] if len(ordered) % 2 else ordered[len(ordered) // 2])
    middle["rps"] = statistics.median(r["rps"] for r in runs)
    middle["runs"] = [round(r["rps"]) for r in runs]
    middle["cpu_us"] = statistics.median(r["cpu_us"] for r in runs)
    middle["p99_ms"] = statistics.median(r["p99_ms"] for r in runs)
    middle["p99_runs"] = [round(r["p99_ms"], 2) for r in runs]
    middle["gc"] = [sum(r["gc"][g] for r in runs) for g in range(3)]
    middle["gc_ms"] = max(r["gc_ms"] for r in runs)
    if all("service" in r for r in runs):
        middle["service"] = {k: statistics.median(r["service"][k] for r in runs) for k in runs[0]["service"]}
    return middle


def row(name: str, result: Result, base: Result | None = None) -> str:
    ratio = (f"{result['rps'] / base['rps']:.2f} of bare (CPU {base['cpu_us'] / result['cpu_us']:.2f}, "
             f"p99 {result['p99_ms'] / base['p99_ms']:.2f} x)") if base else ""
    errors = f"  ({result['errors']} errors)" if result["errors"] else ""
    gc_text = (f"  GC {'/'.join(map(str, result['gc']))} (gen 0/1/2, all runs), longest {result['gc_ms']:.1f} ms"
               if "gc" in result else "")
    p99s = f"  p99 runs {result['p99_runs']}" if len(result.get("p99_runs", ())) > 1 else ""
    if "service" in result:
        sv = result["service"]
        gc_text += (f"  server CPU/request p50 {sv['p50']:.0f} p99 {sv['p99']:.0f} p99.9 {sv['p999']:.0f} "
                    f"max {sv['max']:.0f} us")
        if base is not None and "service" in base:
            gc_text += f" (p99 {sv['p99'] / base['service']['p99']:.2f} x bare's)"
    return (f"{name:<34} {result['rps']:7.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
            f"p99 {result['p99_ms']:6.2f} ms  {result['cpu_us']:5.1f} us CPU/req  {ratio}  "
            f"runs {result['runs']}{errors}{p99s}{gc_text}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="baseline and route alternate this many times")
    parser.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument("--only", choices=["all", "auth", "contacts", "calls"], default="all")
    parser.add_argument("--paired", action="store_true",
                        help="also load bare and GET /auth at the same time, --rounds times: p99 ratio under shared noise")
    parser.add_argument("--call-log-idle", default=None, help='[mx] callLogIdle, e.g. "1s" (the default)')
    args = parser.parse_args()
    raise_nofile(4096)
    others = pin_to_first_cpu()
    print(f"load average before: {load_average()}; server on one CPU, load generator and simulator on "
          f"{sorted(others) or 'the same CPU'}; {runtime.describe(asyncio.get_running_loop(), runtime.http_protocol())}")
    with SimProcess(*SIMULATOR_ARGS) as sim, \
            tempfile.TemporaryDirectory() as tmp:
        if others:
            os.sched_setaffinity(sim.proc.pid, others)
        service = ServiceCpu() if args.connections == 1 else None  # both servers run httptools (BareServer checks)
        server = await start_proxy(sim, Path(tmp), args.call_log_idle)
        config = server.config
        routes = [Route("/bare", bare)]
        baseline: BareServer | None = None
        try:
            api = server.public_url
            async with httpx.AsyncClient(base_url=api) as client:
                tokens = {name: await sign_in(client, name, "pw") for name in USERS}
                me_token = tokens["bench@example.org"]
                me = await client.get("/auth", headers={"Authorization": f"Bearer {me_token}"})
                assert me.status_code == 200, me.text
                contacts = await client.get("/contacts", headers={"Authorization": f"Bearer {me_token}"})
                assert len(contacts.json()["contacts"]) == 117, len(contacts.json()["contacts"])
                copies = {"contacts": await raw_answer(client, "/contacts", {
                    "Authorization": f"Bearer {me_token}", "Accept-Encoding": "gzip"})}
                for name in ("log27@example.org", "log42@example.org"):
                    plain = await client.get("/calls", headers={"Authorization": f"Bearer {tokens[name]}"})
                    assert len(plain.json()["callLog"]) == int(name[3:5]), plain.text[:200]
                    copies[name] = await raw_answer(client, "/calls", {
                        "Authorization": f"Bearer {tokens[name]}", "Accept-Encoding": "gzip"})
            for key, (body, headers) in copies.items():
                routes.append(Route(f"/bytes/{key}", constant(body, headers)))
            baseline = BareServer(Starlette(routes=routes))
            await baseline.start()
            bare_url = f"http://127.0.0.1:{baseline.port}"

            async def load(url: str, token: str | None = None, gzip: bool = True) -> Result:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                if gzip:
                    headers["Accept-Encoding"] = "gzip"
                cpu = time.process_time()
                if service is not None:
                    service.start()
                with GcWatch() as collections:
                    result = await loadgen.run(url, seconds=args.seconds, connections=args.connections,
                                               headers=headers, generator=args.generator, cpus=others)
                result["gc"], result["gc_ms"] = collections.counts, collections.longest * 1000
                if service is not None:
                    result["service"] = service.stop()
                # CPU this process (both servers, one loaded at a time) spent per answer: on a
                # shared machine this is steadier than requests/s, which also measures the scheduler
                result["cpu_us"] = (time.process_time() - cpu) / max(1, result["requests"]) * 1e6
                return result

            async def pair(base_url: str, url: str, token: str, gzip: bool = True) -> tuple[Result, Result]:
                """Median of the rounds for a baseline and a route, alternating (the same request
                bytes: only the app differs)."""
                base_runs, runs = [], []
                for _ in range(args.rounds):
                    base_runs.append(await load(base_url, token, gzip))
                    runs.append(await load(url, token, gzip))
                return median(base_runs), median(runs)

            async def call_log_miss(client: httpx.AsyncClient, name: str, concurrent: int) -> float:
                """Milliseconds until ``concurrent`` GET /calls right after the user's cache was dropped
                are all answered (the script checks they shared one MX query)."""
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

            await load(f"{bare_url}/bare", me_token)  # warm-up: both servers and the generator
            await load(f"{api}/auth", me_token)
            generator = "wrk" if loadgen.WRK and args.generator != "httpx" else "httpx"
            print(f"generator: {generator}, "
                  f"{args.connections} connections, {args.seconds:g}s per run, median of {args.rounds}; "
                  f"Accept-Encoding: gzip unless said")
            checks: list[str] = []
            if args.only in ("all", "auth"):
                base, auth = await pair(f"{bare_url}/bare", f"{api}/auth", me_token)
                base_plain, plain = await pair(f"{bare_url}/bare", f"{api}/auth", me_token, gzip=False)
                print(row("bare Starlette JSON route", base))
                print(row("GET /auth", auth, base))
                print(row("bare (no Accept-Encoding)", base_plain))
                print(row("GET /auth (no Accept-Encoding)", plain, base_plain))
                ratio = min(auth["rps"] / base["rps"], plain["rps"] / base_plain["rps"])
                cpu = min(base["cpu_us"] / auth["cpu_us"], base_plain["cpu_us"] / plain["cpu_us"])
                p99 = max(auth["p99_ms"] / base["p99_ms"], plain["p99_ms"] / base_plain["p99_ms"])
                target = "target >= 0.8 at 32 connections" if args.connections >= 32 else "target at 32 connections"
                checks.append(f"GET /auth throughput {ratio:.2f} of bare, CPU per request {cpu:.2f} ({target}: "
                              f"{'ok' if min(ratio, cpu) >= 0.8 else 'MISSED'}); p99 {p99:.2f} x bare's "
                              f"(target <= 1.2 at 1 connection: {'ok' if p99 <= 1.2 else 'MISSED'})")
            if args.paired:
                # bare and GET /auth loaded at the same time, one wrk each on the other CPU: both
                # servers share this process, core and loop, so a time slice another process takes
                # delays both alike, and the p99 ratio of a round compares like with like
                ratios = []
                for gzip in (True, False):
                    headers = {"Authorization": f"Bearer {me_token}", **({"Accept-Encoding": "gzip"} if gzip else {})}
                    rounds = [await asyncio.gather(*(
                        loadgen.run(url, seconds=args.seconds, connections=args.connections, headers=headers,
                                    generator=args.generator, cpus=others)
                        for url in (f"{bare_url}/bare", f"{api}/auth"))) for _ in range(args.rounds)]
                    per_round = [r["p99_ms"] / b["p99_ms"] for b, r in rounds]
                    ratios.append(statistics.median(per_round))
                    print(f"paired, {'gzip asked' if gzip else 'no Accept-Encoding'}: p99 bare "
                          f"{statistics.median(b['p99_ms'] for b, _ in rounds):.2f} ms, GET /auth "
                          f"{statistics.median(r['p99_ms'] for _, r in rounds):.2f} ms; ratio per round "
                          f"{[round(x, 2) for x in per_round]}, median {ratios[-1]:.2f}")
                checks.append(f"GET /auth p99, paired with bare: {max(ratios):.2f} x bare's "
                              f"(target <= 1.2 at 1 connection: {'ok' if max(ratios) <= 1.2 else 'MISSED'})")
            if args.only in ("all", "contacts"):
                base, contacts_run = await pair(f"{bare_url}/bytes/contacts", f"{api}/contacts", me_token)
                print(row(f"bare bytes of /contacts ({len(copies['contacts'][0])} B)", base))
                print(row("GET /contacts (117)", contacts_run, base))
                ratio = contacts_run["rps"] / base["rps"]
                checks.append(f"GET /contacts {ratio:.2f} of its bare bytes "
                              f"(target >= 0.6: {'ok' if ratio >= 0.6 else 'MISSED'})")
            if args.only in ("all", "calls"):
                misses: dict[str, tuple[float, float]] = {}
                worst = 0.0
                async with httpx.AsyncClient(base_url=api, limits=httpx.Limits(max_connections=64)) as client:
                    for name in ("log27@example.org", "log42@example.org"):
                        label = f"calls ({name[3:5]} entries)"
                        misses[label] = (await call_log_miss(client, name, 1), await call_log_miss(client, name, 16))
                        base, calls_run = await pair(f"{bare_url}/bytes/{name}", f"{api}/calls", tokens[name])
                        print(row(f"bare bytes of /{label}", base))
                        print(row(f"GET /{label}", calls_run, base))
                        worst = max(worst, calls_run["p99_ms"])
                for label, (one, sixteen) in misses.items():
                    print(f"GET /{label}, cache miss: 1 request {one:7.1f} ms; 16 concurrent {sixteen:7.1f} ms "
                          f"(one MX query)")
                checks.append(f"GET /calls worst p99 (cache warm): {worst:.1f} ms "
                              f"(target < 100 ms: {'ok' if worst < 100 else 'MISSED'})")
            for line in checks:
                print(line)
            if generator == "httpx":
                print("note: the httpx generator is slower than this server (it, not the server, sets the pace); "
                      "ratios need wrk (apt-get install wrk)")
            print(f"load average after: {load_average()}")
        finally:
            if baseline is not None:
                await baseline.stop()
            await server.stop()


if __name__ == "__main__":
    runtime.run(main())

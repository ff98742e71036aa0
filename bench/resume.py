"""Start-up resume: stored users → every one of them logged in and monitored again.

    .venv/bin/python bench/resume.py --n 1000
    .venv/bin/python bench/resume.py --n 10000
    .venv/bin/python bench/resume.py --n 1000 --n 10000     # both, and the scaling ratio
    .venv/bin/python bench/resume.py --n 1000 --asyncio     # on asyncio's own loop (the fallback)
    .venv/bin/python bench/resume.py --n 1000 --instructions   # CPU instructions per user, by phase (valgrind)

What a restart does: the SQLite store already holds ``n`` users (inserted before the clock
starts, passwords encrypted as usual), then ``ProxyServer.start()`` opens the store, loads the
keys, and the session manager resumes every user concurrently (``[mx] resumeConcurrency``,
default 100) against the MX simulator in a separate process (bench/simserver.py). The figure is
the time from ``start()`` to the moment every user is live, per user, and the 10k/1k per-user
ratio (1.0 = linear scaling). Both processes raise ``RLIMIT_NOFILE`` themselves. The proxy runs on
the loop ``mxproxy serve`` uses (uvloop, ``mxproxy.runtime``) pinned to one CPU, the simulator on
the other, also on uvloop (``--sim-loop asyncio``: as before 2026-12-01; the simulator stands in
for the MX, whose CPU is not the proxy's).

``--instructions``: the same resume with the proxy process under ``valgrind --tool=callgrind``
(instrumentation switched on from ``start()`` to all live, from outside, as bench/instructions.py
does): instructions per user — stable on this shared machine, unlike times — split by where they
are spent, from the inclusive cost of the C functions each phase runs in (TLS handshake, TLS
records, XML parsing, SQLite, AES-GCM of the stored passwords, the garbage collector); the rest is
the interpreter running our Python (login/monitor commands, owner tasks, asyncio's SSL protocol).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
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


async def gate(directory: Path | None, mine: str, theirs: str) -> None:
    """Traced run: say ``mine`` and wait (on the loop: callgrind serves its commands only while
    the process runs code) until the parent, which switches instrumentation, says ``theirs``."""
    if directory is None:
        return
    (directory / mine).touch()
    while not (directory / theirs).exists():
        await asyncio.sleep(0.05)


async def resume(n: int, concurrency: int, timeout: float, others: set[int],
                 traced: Path | None = None, sim_uvloop: bool = True) -> dict[str, float]:
    with SimProcess("--users", str(n), *(["--uvloop"] if sim_uvloop else [])) as sim, \
            tempfile.TemporaryDirectory() as tmp:
        if others:
            os.sched_setaffinity(sim.proc.pid, others)
        db = str(Path(tmp) / "mxproxy.db")
        filled = await fill_store(db, n, f"127.0.0.1:{sim.port}")
        config = parse_config({
            "apps": {"bench": "bench-secret"},
            "server": {"storeKey": STORE_KEY},
            "mx": {"resumeConcurrency": concurrency, **({"connectTimeout": "10s", "responseTimeout": "10s"}
                                                      if traced is None else  # 20-50 x slower under valgrind
                                                      {"connectTimeout": "300s", "responseTimeout": "300s"})},
            "static": {"mode": "direct", "host": f"127.0.0.1:{sim.port}"},
        }, base_dir=Path(tmp))
        server = ProxyServer(config, public=Listen("127.0.0.1", 0), admin_enabled=False, db=db)
        await gate(traced, "ready", "on")
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
        await gate(traced, "done", "off")
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
        r = await resume(n, args.concurrency, args.timeout, others, args.traced, args.sim_loop == "uvloop")
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


#: Where the instructions go, by the C function (inclusive cost) each phase runs in. The rest is
#: the interpreter: our Python, asyncio's (pure-Python) SSL protocol and loop callbacks.
PHASES = [
    ("TLS handshake (OpenSSL, both round trips)", r"_ssl__SSLSocket_do_handshake"),
    ("TLS session set-up for resumption (session dup)", r"PySSL_set_session|_ssl__SSLSocket_session_set"),
    ("TLS records (SSL_read / SSL_write of frames)", r"_ssl__SSLSocket_read|_ssl__SSLSocket_write"),
    ("XML parse of replies (expat)", r"_elementtree_XMLParser_feed|pyexpat_xmlparser_Parse"),
    ("SQLite (store reads, aiosqlite thread)", r"^sqlite3_step$|^sqlite3_prepare"),
    ("AES-GCM of stored passwords", r"EVP_(Decrypt|Cipher)(Init|Update|Final)|EVP_AEAD|aead"),
    ("garbage collector", r"^gc_collect_main$|^gc_collect_with_callback$"),
]


def annotate(dump: Path) -> tuple[int, dict[str, int]]:
    """Total instructions and the inclusive count of each ``PHASES`` entry (the largest matching
    function per phase, so nested matches are not counted twice)."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
                          check=True, capture_output=True, text=True).stdout
    total = int(next(line for line in dump.read_text().splitlines() if line.startswith("totals:")).split()[1])
    found: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(?:\S+?:)?(\S+)", line)
        if not match:
            continue
        count, function = int(match.group(1).replace(",", "")), match.group(2).split("'")[0]
        for name, pattern in PHASES:
            if re.search(pattern, function) and count > found.get(name, 0):
                found[name] = count
    return total, found


def traced_resume(n: int, args: argparse.Namespace) -> tuple[int, dict[str, int]]:
    """One resume of ``n`` users with the proxy under callgrind (the simulator untraced)."""
    with tempfile.TemporaryDirectory(prefix="mxproxy-bench-resume-") as tmp:
        directory = Path(tmp)
        command = [sys.executable, __file__, "--n", str(n), "--concurrency", str(args.concurrency),
                   "--sim-loop", args.sim_loop,
                   "--timeout", str(max(args.timeout, 3000.0)), "--traced", tmp]
        traced = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                   f"--callgrind-out-file={tmp}/cg.%p", *command],
                                  stdout=subprocess.DEVNULL, stderr=open(directory / "valgrind.log", "w"))
        pid = str(traced.pid)
        try:
            for mine, theirs, controls in (("ready", "on", (["-z"], ["-i", "on"])),
                                           ("done", "off", (["-i", "off"], ["-d"]))):
                while not (directory / mine).exists():
                    if traced.poll() is not None:
                        raise SystemExit(f"traced resume exited:\n{(directory / 'valgrind.log').read_text()[-2000:]}")
                    time.sleep(0.2)
                for control in controls:
                    subprocess.run(["callgrind_control", *control, pid], check=True, capture_output=True)
                (directory / theirs).touch()
            traced.wait(600)
        finally:
            if traced.poll() is None:
                traced.kill()
        dump = directory / f"cg.{pid}.1"
        if args.keep:
            shutil.copy(dump, f"{args.keep}.{n}")
        return annotate(dump)


def instructions(args: argparse.Namespace) -> None:
    """Instructions per user: the difference between two resumes (default 200 and 600 users)
    divided by the difference in users, so what start-up costs once (imports, the store key's
    scrypt, loading the CA bundle) drops out; split by ``PHASES``."""
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise SystemExit(f"--instructions needs {tool} (apt-get install -y valgrind)")
    sizes = sorted(args.n or [200, 600])
    if len(sizes) < 2:
        raise SystemExit("--instructions needs two sizes (--n 200 --n 600): the per-user cost is their difference")
    small, big = sizes[0], sizes[-1]
    (t_small, f_small), (t_big, f_big) = traced_resume(small, args), traced_resume(big, args)
    users = big - small
    total = t_big - t_small
    print(f"load average: {load_average()} (instruction counts do not depend on it)")
    print(f"proxy process (all threads), per user, from resuming {small} and {big} users under callgrind: "
          f"{total / users:,.0f} instructions")
    rest = total
    for name, _ in PHASES:
        count = f_big.get(name, 0) - f_small.get(name, 0)
        rest -= count
        print(f"  {name:<52} {count / users:10,.0f}  {100 * count / total:5.1f} %")
    print(f"  {'interpreter: our Python, asyncio, the rest':<52} {rest / users:10,.0f}  {100 * rest / total:5.1f} %",
          flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, action="append", help="stored users (repeat for several runs)")
    parser.add_argument("--concurrency", type=int, default=100, help="[mx] resumeConcurrency")
    parser.add_argument("--timeout", type=float, default=100.0, help="give up waiting after this many seconds")
    parser.add_argument("--asyncio", action="store_true",
                        help="asyncio's own event loop instead of uvloop (what mxproxy serve falls back to)")
    parser.add_argument("--sim-loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the simulator's event loop (before 2026-12-01: asyncio)")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin the two processes to CPUs")
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions per user under valgrind callgrind, split by phase")
    parser.add_argument("--keep", help="with --instructions: copy the callgrind dumps to KEEP.<n>")
    parser.add_argument("--traced", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if arguments.instructions:
        instructions(arguments)
    else:
        asyncio.run(main(arguments)) if arguments.asyncio else runtime.run(main(arguments))

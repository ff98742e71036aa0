"""CPU instructions per request (user space) of the public API against its bare baselines.

    apt-get install -y valgrind wrk
    .venv/bin/python bench/instructions.py              # --seconds 5 --connections 32

Why: on this machine (2 vCPUs shared by eight developers) requests/s and even CPU time per
request swing by 2x between runs of the same code. The number of instructions the server
executes per request does not: it is what each change of issue 14 is judged by first, next to the
timed figures of bench/api.py.

How: the server process of bench/api.py (``start_proxy``: the real ``ProxyServer`` on uvloop +
httptools, the simulator in its own untraced process; ``BareServer``: a stock uvicorn with a bare
Starlette route answering the ``/auth`` object, and routes answering the bytes ``/contacts`` and
``/calls`` answered) runs under ``valgrind --tool=callgrind`` with instrumentation off. For each
figure, after an uncounted one-second warm-up run (the caches filled, as a phone's repeated
requests find them), the script switches counting on (``callgrind_control -i on``), drives
``wrk`` against the route for ``--seconds``, switches it off and dumps: instructions / requests
answered. Kernel work (socket syscalls) is not counted; both sides pay the same. Ratio = route /
its baseline; the throughput target ≥ 0.8 × bare means a ratio ≤ 1.25.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FIGURES = [  # name, server, path, user, baseline name
    ("bare /auth object", "bare", "/bare", "bench@example.org", None),
    ("GET /auth", "api", "/auth", "bench@example.org", "bare /auth object"),
    ("bare bytes of /contacts", "bare", "/bytes/contacts", "bench@example.org", None),
    ("GET /contacts (117)", "api", "/contacts", "bench@example.org", "bare bytes of /contacts"),
    ("bare bytes of /calls (27)", "bare", "/bytes/calls", "log27@example.org", None),
    ("GET /calls (27, cache warm)", "api", "/calls", "log27@example.org", "bare bytes of /calls (27)"),
]


async def serve(directory: Path) -> None:
    """The traced process: the proxy and the baselines, until ``directory/stop`` appears."""
    import httpx
    from api import SIMULATOR_ARGS, USERS, BareServer, bare, constant, raw_answer, sign_in, start_proxy
    from common import SimProcess
    from starlette.applications import Starlette
    from starlette.routing import Route

    with SimProcess(*SIMULATOR_ARGS) as sim, tempfile.TemporaryDirectory() as tmp:
        server = await start_proxy(sim, Path(tmp))
        async with httpx.AsyncClient(base_url=server.public_url, timeout=120) as client:
            tokens = {name: await sign_in(client, name, "pw") for name in USERS}
            gz = {"Accept-Encoding": "gzip"}
            contacts = await raw_answer(client, "/contacts", {"Authorization": f"Bearer {tokens['bench@example.org']}", **gz})
            calls = await raw_answer(client, "/calls", {"Authorization": f"Bearer {tokens['log27@example.org']}", **gz})
        baseline = BareServer(Starlette(routes=[Route("/bare", bare), Route("/bytes/contacts", constant(*contacts)),
                                                Route("/bytes/calls", constant(*calls))]))
        await baseline.start()
        (directory / "ready.json").write_text(json.dumps(
            {"api": server.public_url, "bare": f"http://127.0.0.1:{baseline.port}", "tokens": tokens}))
        while not (directory / "stop").exists():
            await asyncio.sleep(0.2)
        await baseline.stop()
        await server.stop()


def wrk(url: str, token: str, seconds: int, connections: int, cpus: set[int]) -> int:
    """Requests answered (wrk -t1, keep-alive, the same headers as bench/api.py)."""
    from loadgen import parse_wrk

    args = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "30s",
            "-H", f"Authorization: Bearer {token}", "-H", "Accept-Encoding: gzip", url]
    if cpus and shutil.which("taskset"):
        args = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *args]
    result = parse_wrk(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    if result["errors"]:
        raise SystemExit(f"{url}: {result['errors']} errors under load")
    return int(result["requests"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from common import load_average, pin_to_first_cpu

    from mxproxy import runtime

    if args.serve:
        runtime.run(serve(args.serve))
        return
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench/instructions.py needs {tool} (apt-get install -y valgrind wrk)")
    others = pin_to_first_cpu()  # the traced server inherits this CPU; wrk runs on the others
    print(f"load average before: {load_average()} (instruction counts do not depend on it)")
    with tempfile.TemporaryDirectory(prefix="mxproxy-bench-instr-") as tmp:
        directory = Path(tmp)
        traced = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={directory}/cg.%p",
             sys.executable, __file__, "--serve", str(directory)],
            stdout=subprocess.DEVNULL, stderr=open(directory / "valgrind.log", "w"))
        pid = str(traced.pid)
        try:
            while not (directory / "ready.json").exists():
                if traced.poll() is not None:
                    raise SystemExit(f"traced server exited:\n{(directory / 'valgrind.log').read_text()[-2000:]}")
                time.sleep(0.5)
            ready: dict[str, Any] = json.loads((directory / "ready.json").read_text())
            counts: dict[str, float] = {}
            for part, (name, server, path, user, base) in enumerate(FIGURES, start=1):
                # uncounted warm-up: caches filled again (the call log's TTL is 30 s), connections open
                wrk(ready[server] + path, ready["tokens"][user], 1, args.connections, others)
                subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
                subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
                requests = wrk(ready[server] + path, ready["tokens"][user], args.seconds, args.connections, others)
                subprocess.run(["callgrind_control", "-i", "off", pid], check=True, capture_output=True)
                subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
                dump = directory / f"cg.{pid}.{part}"
                while not dump.exists():
                    time.sleep(0.1)
                totals = next(line for line in dump.read_text().splitlines() if line.startswith("totals:"))
                counts[name] = int(totals.split()[1]) / requests
                ratio = f"{counts[name] / counts[base]:5.2f} x its baseline" if base else ""
                print(f"{name:<30} {counts[name]:9.0f} instructions/request ({requests} requests)  {ratio}",
                      flush=True)
        finally:
            (directory / "stop").touch()
            try:
                traced.wait(120)
            except subprocess.TimeoutExpired:
                traced.kill()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()

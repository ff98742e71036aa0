"""HTTP load for the API benchmark: wrk when installed, else an httpx async generator.

Either runs in its own process (the server under test owns this machine's other core), keeps
``connections`` keep-alive connections busy for ``seconds`` and reports requests/s and latency
percentiles in one shape::

    {"generator": "wrk"|"httpx", "requests": int, "errors": int, "rps": float,
     "p50_ms": float, "p99_ms": float}

As a script (used by ``run`` for the httpx generator)::

    python bench/loadgen.py URL --seconds 5 --connections 16 [-H 'Name: value' ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

WRK = shutil.which("wrk")
TASKSET = shutil.which("taskset")

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise ValueError(f"wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse_wrk(out: str) -> dict[str, float | int | str]:
    """The figures of ``wrk --latency`` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"\n\s+50%\s+(\S+)", out)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"\n\s+99%\s+(\S+)", out)[1])  # type: ignore[index]
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        errors += int(non2xx[1])
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    return {"generator": "wrk", "requests": requests, "errors": errors, "rps": rps, "p50_ms": p50, "p99_ms": p99}


async def run(url: str, *, seconds: float, connections: int, headers: dict[str, str],
              generator: str = "auto", cpus: set[int] | None = None) -> dict[str, float | int | str]:
    """Load ``url`` from a child process (pinned to ``cpus`` when given); ``generator`` is
    ``wrk``, ``httpx`` or ``auto``."""
    use_wrk = generator == "wrk" or (generator == "auto" and WRK is not None)
    if use_wrk:
        if WRK is None:
            raise RuntimeError("wrk is not installed")
        args = [WRK, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        args.append(url)
    else:
        args = [sys.executable, str(Path(__file__).resolve()), url, "--seconds", str(seconds),
                "--connections", str(connections)]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
    if cpus:
        args = [TASKSET, "-c", ",".join(str(c) for c in sorted(cpus)), *args] if TASKSET else args
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {out.decode(errors='replace')}")
    return parse_wrk(out.decode()) if use_wrk else json.loads(out)


async def httpx_load(url: str, seconds: float, connections: int, headers: dict[str, str]) -> dict[str, float | int | str]:
    """``connections`` workers, each one keep-alive connection, sequential requests."""
    import httpx

    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    # identity, as wrk sends no Accept-Encoding: both generators measure the same responses
    async with httpx.AsyncClient(limits=limits, timeout=5.0,
                                 headers={"Accept-Encoding": "identity", **headers}) as client:
        await client.get(url)  # warm the connection pool's first connection
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while True:
                start = time.perf_counter()
                if start >= deadline:
                    return
                try:
                    r = await client.get(url)
                    await r.aread()
                    if r.status_code >= 400:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - start)

        begun = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - begun
    latencies.sort()
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {"generator": "httpx", "requests": len(latencies), "errors": errors, "rps": len(latencies) / elapsed,
            "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("-H", dest="headers", action="append", default=[])
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.headers)
    print(json.dumps(asyncio.run(httpx_load(args.url, args.seconds, args.connections, headers))))


if __name__ == "__main__":
    main()

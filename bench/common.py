"""Helpers shared by the benchmark scripts: a simulator subprocess, RSS and CPU readings."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def process_cpu_seconds(pid: int | str) -> float:
    """User + system CPU time of a process (or ``"<pid>/task/<tid>"``, a thread) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_child(proc: subprocess.Popen, timeout: float) -> None:  # type: ignore[type-arg]
    """Close the child's stdin (our children stop on EOF), wait, kill if it does not."""
    if proc.stdin:
        proc.stdin.close()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


async def create_bench_database(pg: str) -> tuple[str, str]:
    """A PostgreSQL database of its own for a cluster bench run: (its DSN, its name)."""
    import secrets

    import asyncpg

    name = f"mxproxy_bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(pg)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"{pg.rpartition('/')[0]}/{name}", name


async def stop_instances_and_drop_database(procs: list[subprocess.Popen | None], pg: str,  # type: ignore[type-arg]
                                           database: str) -> None:
    """End of a cluster bench: SIGTERM every instance still running (kill after 30 s), then drop
    the run's PostgreSQL database."""
    import asyncpg

    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except Exception:  # noqa: BLE001
                proc.kill()
    conn = await asyncpg.connect(pg)
    await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    await conn.close()


class SimProcess:
    """``bench/simserver.py`` in a child process; ``port`` once it listens."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "simserver.py"), *args],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"simulator process did not start: {line!r}")
        self.port = int(line.split()[1])

    def cpu_seconds(self) -> float:
        """User + system CPU time of the child so far (from /proc)."""
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        stop_child(self.proc, 5)

    def __enter__(self) -> "SimProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_average() -> str:
    """The 1-minute load average: every figure on this shared machine is quoted next to it."""
    return Path("/proc/loadavg").read_text().split()[0]


def pin_to_first_cpu() -> set[int]:
    """Pin this process to its first allowed CPU; returns the others (for the load generator and
    the peer processes), empty when there is only one."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set()
    os.sched_setaffinity(0, {cpus[0]})
    return set(cpus[1:])


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(needed, soft), hard), hard))

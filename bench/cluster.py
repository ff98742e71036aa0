"""Cluster mode: N ``mxproxy serve`` processes on one PostgreSQL database, the MX simulator in
another process.

    .venv/bin/python bench/cluster.py --users 1000            # 3 instances (--instances)
    .venv/bin/python bench/cluster.py --users 10000 --ttl 15s

Measured, in one run:
* **all live**: from starting the instances (users already stored) until every user has a live
  MX session on exactly one instance (admin ``/connections`` of all instances);
* **renewal cost**: transactions/s the database committed while the cluster idled
  (``pg_stat_database.xact_commit``; every store statement is its own transaction, and asyncpg's
  reset of the pooled connection after it one more), per instance;
* **takeover**: SIGKILL one instance, then in phases: until its leases lapse (the TTL: they are
  the fence, nobody may take them earlier), until the survivors hold every lease (the lease
  rounds' own work), until every user is live again (the MX logins);
* **forwarding**: ``GET /auth`` p50/p99 sent to the owner directly vs to another instance
  (forwarded), sequential, interleaved, and the difference; plus the CPU time (``/proc``) the
  forwarding instance spends per forwarded request next to what the owner spends per request
  it serves, which a loaded machine disturbs far less than the latencies.

The database is created for the run on the machine's PostgreSQL (``--pg``) and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from common import ROOT, SimProcess, create_bench_database, raise_nofile, stop_instances_and_drop_database

from mxproxy.store.postgres import PostgresStore
from mxproxy.store.base import UserRecord

STORE_KEY = "bench-cluster-store-key"
CLIENT = ("bench", "bench-secret")
MXPROXY = str(Path(sys.executable).with_name("mxproxy"))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Instance:
    def __init__(self, name: str, tmp: Path, dsn: str, sim_port: int, ttl: str) -> None:
        self.name = name
        self.port, self.admin_port = free_port(), free_port()
        self.config = tmp / f"{name}.toml"
        self.config.write_text(f"""
logName = "{name}.log"
[apps]
{CLIENT[0]} = "{CLIENT[1]}"
[server]
port = "127.0.0.1:{self.port}"
admin = "127.0.0.1:{self.admin_port}"
db = "{dsn}"
storeKey = "{STORE_KEY}"
[cluster]
leaseTTL = "{ttl}"
instanceId = "{name}"
[mx]
connectTimeout = "20s"
responseTimeout = "20s"
[static]
mode = "direct"
host = "127.0.0.1:{sim_port}"
""")
        self.stderr = (tmp / f"{name}.stderr").open("wb")
        self.proc = None

    def start(self, profile: str | None = None) -> None:
        import subprocess

        env = {k: v for k, v in os.environ.items() if k not in ("PORT", "ADMIN", "DB", "ADVERTISE", "INSTANCE_ID")}
        # --profile DIR: each instance under bench/sampler.py, written to DIR/<name>.txt at its (SIGTERM) exit
        command = [sys.executable, str(Path(__file__).with_name("sampler.py")), f"{profile}/{self.name}.txt", "-m", "mxproxy"] \
            if profile else [MXPROXY]
        self.proc = subprocess.Popen([*command, "--log-level", "warning", "serve", "--config", str(self.config)],
                                     cwd=self.config.parent, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"


async def live_map(client: httpx.AsyncClient, instances: list[Instance]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for inst in instances:
        try:
            r = await client.get(f"{inst.admin}/connections", timeout=30)
        except httpx.HTTPError:
            continue
        if r.status_code == 200:
            for login in r.json()["connections"]:
                found.setdefault(login, []).append(inst.name)
    return found


async def wait_all_live(client: httpx.AsyncClient, instances: list[Instance], n: int, timeout: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        dead = [i.name for i in instances if i.proc is not None and i.proc.poll() is not None]
        if dead:
            raise RuntimeError(f"instance(s) {dead} exited; see their stderr")
        found = await live_map(client, instances)
        if len(found) == n and all(len(v) == 1 for v in found.values()):
            return time.perf_counter() - start
        await asyncio.sleep(0.25)
    raise RuntimeError(f"not every user live within {timeout:.0f}s")


async def per_instance(client: httpx.AsyncClient, instances: list[Instance]) -> dict[str, int]:
    counts = {i.name: 0 for i in instances}
    for names in (await live_map(client, instances)).values():
        counts[names[0]] += 1
    return counts


async def wait_balanced(client: httpx.AsyncClient, instances: list[Instance], n: int, timeout: float) -> float:
    """Until no lease is being handed over and every user is live once (``GET /cluster``)."""
    from mxproxy.sessions.placement import owner_of

    start = time.perf_counter()
    names = [i.name for i in instances]
    while time.perf_counter() - start < timeout:
        found = await live_map(client, instances)
        if len(found) == n and all(v == [owner_of(login, names)] for login, v in found.items()):
            return time.perf_counter() - start
        await asyncio.sleep(0.5)
    raise RuntimeError("placement did not settle")


async def xact_commits(dsn: str, name: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name))
    finally:
        await conn.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def victim_lease_expiry(dsn: str, victim: str) -> float:
    """Seconds until the last lease the victim holds lapses (the database's clock)."""
    conn = await asyncpg.connect(dsn)
    try:
        value = await conn.fetchval(
            "SELECT max(expires_at) - extract(epoch FROM clock_timestamp()) FROM mxproxy.user_leases WHERE instance = $1",
            victim)
        return float(value or 0.0)
    finally:
        await conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    raise_nofile(args.users * 2 + 1024)
    dsn, name = await create_bench_database(args.pg)
    instances: list[Instance] = []
    try:
        with SimProcess("--users", str(args.users), "--uvloop") as sim, tempfile.TemporaryDirectory() as tmp:
            store = PostgresStore(dsn, STORE_KEY)
            await store.open()
            gate = asyncio.Semaphore(32)

            async def put(i: int) -> None:
                async with gate:
                    await store.put_user(UserRecord(login=f"user{i}", host=f"127.0.0.1:{sim.port}",
                                                    mx_login=f"user{i}", password="pw"))

            await asyncio.gather(*(put(i) for i in range(args.users)))
            await store.close()
            instances = [Instance(chr(ord("a") + k), Path(tmp), dsn, sim.port, args.ttl) for k in range(args.instances)]
            async with httpx.AsyncClient(trust_env=False) as client:
                for inst in instances:
                    inst.start(args.profile)
                all_live = await wait_all_live(client, instances, args.users, args.timeout)
                print(f"{args.instances} instances x {args.users} users (lease TTL {args.ttl}): every user live "
                      f"once after {all_live:.1f}s from process start; per instance "
                      f"{await per_instance(client, instances)}", flush=True)
                balanced = await wait_balanced(client, instances, args.users, args.timeout)
                print(f"placement settled (every user on its rendezvous owner) after {balanced:.1f}s more: "
                      f"{await per_instance(client, instances)}", flush=True)

                await asyncio.sleep(args.idle / 2)  # let start-up traffic (logins read their users) end
                before = await xact_commits(args.pg, name)
                t0 = time.perf_counter()
                await asyncio.sleep(args.idle)
                after = await xact_commits(args.pg, name)
                rate = (after - before - 1) / (time.perf_counter() - t0)
                # asyncpg resets a pooled connection after each use: two transactions per statement
                print(f"renewal while idle: {rate:.2f} transactions/s on PostgreSQL for the cluster, "
                      f"{rate / args.instances:.2f} per instance (= {rate / args.instances / 2:.2f} store "
                      f"statements/s: asyncpg's connection reset is a transaction of its own)", flush=True)

                # forwarding: GET /auth of one user, to its owner directly vs via another instance
                r = await client.post(f"{instances[0].url}/auth", auth=CLIENT,
                                      data={"username": "user0", "password": "pw", "grant_type": "password"})
                r.raise_for_status()
                headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
                owner = (await live_map(client, instances))["user0"][0]
                direct = next(i for i in instances if i.name == owner)
                other = next(i for i in instances if i.name != owner)
                times: dict[str, list[float]] = {"direct": [], "forwarded": []}
                assert direct.proc is not None and other.proc is not None
                cpu_before = {}
                for k in range(args.requests * 2 + 40):
                    if k == 40:  # warm-up done: connection pools, caches
                        cpu_before = {"direct": cpu_seconds(direct.proc.pid), "other": cpu_seconds(other.proc.pid)}
                    target = (direct, "direct") if k % 2 == 0 else (other, "forwarded")
                    start = time.perf_counter()
                    resp = await client.get(f"{target[0].url}/auth", headers=headers)
                    took = time.perf_counter() - start
                    assert resp.status_code == 200, resp.text
                    if k >= 40:
                        times[target[1]].append(took * 1000)
                owner_cpu = (cpu_seconds(direct.proc.pid) - cpu_before["direct"]) / (2 * args.requests) * 1000
                hop_cpu = (cpu_seconds(other.proc.pid) - cpu_before["other"]) / args.requests * 1000
                d50, d99 = percentile(times["direct"], 0.5), percentile(times["direct"], 0.99)
                f50, f99 = percentile(times["forwarded"], 0.5), percentile(times["forwarded"], 0.99)
                print(f"GET /auth ({args.requests} each, sequential): direct p50 {d50:.2f} ms p99 {d99:.2f} ms; "
                      f"forwarded p50 {f50:.2f} ms p99 {f99:.2f} ms; forwarding adds {f50 - d50:.2f} ms p50 "
                      f"(ratio {f50 / d50:.2f}); mean direct {statistics.mean(times['direct']):.2f} ms", flush=True)
                print(f"CPU per request: forwarding instance {hop_cpu:.3f} ms per forwarded request; owner "
                      f"{owner_cpu:.3f} ms per request served (direct or forwarded); hop / served "
                      f"{f'{hop_cpu / owner_cpu:.2f}' if owner_cpu else 'n/a (too few requests for the CPU clock)'}; "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
                if args.skip_takeover:
                    return

                victim = instances[-1]
                victims = [login for login, names in (await live_map(client, instances)).items()
                           if names == [victim.name]]
                assert victim.proc is not None
                lapse_at = time.perf_counter() + await victim_lease_expiry(dsn, victim.name)
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait()
                killed = time.perf_counter()
                lapse = lapse_at - killed
                survivors = instances[:-1]
                while True:  # the lease part: until the survivors hold every user
                    held = sum([(await client.get(f"{i.admin}/cluster", timeout=30)).json()["held"] for i in survivors])
                    if held >= args.users:
                        break
                    await asyncio.sleep(0.1)
                leased = time.perf_counter() - killed
                await wait_all_live(client, survivors, args.users, args.timeout)
                live = time.perf_counter() - killed
                print(f"takeover: SIGKILL of {victim.name} holding {len(victims)} users (lease TTL {args.ttl}) -> "
                      f"its leases lapse after {lapse:.1f}s, the survivors hold every lease after {leased:.1f}s "
                      f"({leased - lapse:.2f}s after the lapse), all live after {live:.1f}s "
                      f"({live - leased:.1f}s of MX logins); load average {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        await stop_instances_and_drop_database([inst.proc for inst in instances], args.pg, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--ttl", default="15s", help="[cluster] leaseTTL")
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle cluster for the renewal cost")
    parser.add_argument("--requests", type=int, default=300, help="GET /auth per path")
    parser.add_argument("--profile", metavar="DIR", help="sample the instances CPU (bench/sampler.py), stats to DIR/<name>.txt")
    parser.add_argument("--skip-takeover", action="store_true", help="stop after the forwarding figures")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

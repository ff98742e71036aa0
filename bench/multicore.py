"""One instance per core: ``GET /auth`` throughput of one ``mxproxy serve`` vs two in cluster mode
on one PostgreSQL database, on this machine, in one run (issue #14's multi-core item).

    LD_LIBRARY_PATH=... .venv/bin/python bench/multicore.py --wrk /path/to/wrk [--nginx /path/to/nginx]

The users are stored, signed in, and their tokens spread over the requests (a wrk Lua script
sends each request with the next user's token), so with two instances a request lands on the
user's owner or is forwarded to it, as behind any balancer without stickiness. Measured:

* **one**: one instance holding every user, two wrk processes of half the ``--connections`` each
  (every figure uses two, so the load generator is the same in all);
* **two, mixed**: two instances, one wrk per port at once (half the connections each), every
  user's tokens on both: about half the requests are forwarded;
* **two, owner-affine**: the same, but each port gets only the tokens of the users it owns (a
  balancer that routes by user would do this): the ceiling of the scaling;
* **nginx** (``--nginx``): the wrk processes against nginx spreading over the instance(s), for one
  and two.

Each line gives requests/s (sum over the wrk processes), the instances' CPU per request
(``/proc``, which the other processes of a shared machine disturb less than the rate), and the
ratio to the one-instance figure of the same round. Rounds alternate one and two instances
(``--rounds``): the second instance is stopped (its users hand back) and started again.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
from cluster import CLIENT, STORE_KEY, Instance, cpu_seconds, free_port, live_map, wait_all_live
from common import ROOT, SimProcess, create_bench_database, raise_nofile, stop_instances_and_drop_database

from mxproxy.store.base import UserRecord
from mxproxy.store.postgres import PostgresStore

LUA = """
tokens = {%s}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/auth", {["Authorization"] = "Bearer " .. tokens[(counter %% #tokens) + 1]})
end
"""


def parse(out: str) -> tuple[float, int, int]:
    """requests/s, requests, errors of one ``wrk`` run."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    errors = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    return rps, requests, errors


async def wrk(binary: str, url: str, tokens: list[str], connections: int, seconds: int, tmp: Path) -> tuple[float, int, int]:
    script = tmp / f"tokens-{secrets.token_hex(3)}.lua"
    script.write_text(LUA % ", ".join(f'"{t}"' for t in tokens))
    proc = await asyncio.create_subprocess_exec(
        binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script), url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.decode(errors='replace')}")
    return parse(out.decode())


class Nginx:
    def __init__(self, binary: str, tmp: Path, upstreams: list[Instance]) -> None:
        self.binary = binary
        self.dir = tmp / f"nginx-{secrets.token_hex(3)}"
        self.dir.mkdir()
        self.port = free_port()
        servers = "\n".join(f"        server 127.0.0.1:{i.port};" for i in upstreams)
        temps = "\n".join(f"    {name}_temp_path {self.dir}/{name};" for name in
                          ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (self.dir / "nginx.conf").write_text(f"""
daemon off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temps}
    upstream mxproxy {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://mxproxy;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
""")
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> "Nginx":
        self.proc = await asyncio.create_subprocess_exec(self.binary, "-p", str(self.dir), "-c",
                                                         str(self.dir / "nginx.conf"))
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return self
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError("nginx did not start")

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGQUIT)
        await self.proc.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/auth"


async def measure(args: argparse.Namespace, tmp: Path, loads: list[tuple[str, list[str], int]],
                  instances: list[Instance]) -> tuple[float, float, int]:
    """Run the wrk ``loads`` (url, tokens, connections) at once: (requests/s, CPU ms per request, errors)."""
    pids = [i.proc.pid for i in instances if i.proc is not None]
    before = sum(cpu_seconds(pid) for pid in pids)
    results = await asyncio.gather(*(wrk(args.wrk, url, tokens, conns, args.seconds, tmp) for url, tokens, conns in loads))
    cpu = sum(cpu_seconds(pid) for pid in pids) - before
    rps = sum(r[0] for r in results)
    requests = sum(r[1] for r in results)
    return rps, cpu / max(1, requests) * 1000, sum(r[2] for r in results)


async def run(args: argparse.Namespace) -> None:
    raise_nofile(args.users * 2 + 4096)
    dsn, name = await create_bench_database(args.pg)
    instances: list[Instance] = []
    figures: dict[str, list[float]] = {}
    try:
        with SimProcess("--users", str(args.users)) as sim, tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            store = PostgresStore(dsn, STORE_KEY)
            await store.open()
            for i in range(args.users):
                await store.put_user(UserRecord(login=f"user{i}", host=f"127.0.0.1:{sim.port}", mx_login=f"user{i}",
                                                password="pw"))
            await store.close()
            a, b = (Instance(n, tmp, dsn, sim.port, args.ttl) for n in ("a", "b"))
            instances = [a, b]
            async with httpx.AsyncClient(trust_env=False, timeout=30) as client:
                a.start()
                await wait_all_live(client, [a], args.users, args.timeout)
                tokens: dict[str, str] = {}
                for i in range(args.users):
                    r = await client.post(f"{a.url}/auth", auth=CLIENT, data={
                        "username": f"user{i}", "password": "pw", "grant_type": "password"})
                    r.raise_for_status()
                    tokens[f"user{i}"] = r.json()["access_token"]
                everyone = list(tokens.values())
                print(f"{args.users} users signed in; wrk {args.connections} connections, {args.seconds}s per figure, "
                      f"load average {os.getloadavg()[0]:.1f}", flush=True)
                for round_no in range(1, args.rounds + 1):
                    half = args.connections // 2
                    # two wrk processes in every figure, so the generator is the same in all of them
                    one = await measure(args, tmp, [(f"{a.url}/auth", everyone, half)] * 2, [a])
                    line = {"one": one}
                    if args.nginx:
                        async with Nginx(args.nginx, tmp, [a]) as nginx:
                            line["one via nginx"] = await measure(args, tmp, [(nginx.url, everyone, half)] * 2, [a])
                    b.start()
                    await wait_all_live(client, [a, b], args.users, args.timeout)
                    from mxproxy.sessions.placement import owner_of

                    while True:  # every user on its rendezvous owner
                        found = await live_map(client, [a, b])
                        if len(found) == args.users and all(v == [owner_of(u, ["a", "b"])] for u, v in found.items()):
                            break
                        await asyncio.sleep(0.5)
                    line["two, mixed"] = await measure(args, tmp, [(f"{a.url}/auth", everyone, half),
                                                                   (f"{b.url}/auth", everyone, half)], [a, b])
                    own = {inst.name: [tokens[u] for u, v in found.items() if v == [inst.name]] for inst in (a, b)}
                    line["two, owner-affine"] = await measure(args, tmp, [(f"{a.url}/auth", own["a"], half),
                                                                          (f"{b.url}/auth", own["b"], half)], [a, b])
                    if args.nginx:
                        async with Nginx(args.nginx, tmp, [a, b]) as nginx:
                            line["two via nginx"] = await measure(args, tmp, [(nginx.url, everyone, half)] * 2,
                                                                  [a, b])
                    base = line["one"][0]
                    for label, (rps, cpu, errors) in line.items():
                        ratio_base = line["one via nginx"][0] if "nginx" in label and "one via nginx" in line else base
                        figures.setdefault(label, []).append(rps / ratio_base)
                        print(f"round {round_no} {label:18s} {rps:8.0f} req/s  {cpu:.3f} ms CPU/request  "
                              f"x{rps / ratio_base:.2f}  errors {errors}", flush=True)
                    print(f"  users per instance {({k: len(v) for k, v in own.items()})}, load average "
                          f"{os.getloadavg()[0]:.1f}", flush=True)
                    assert b.proc is not None
                    b.proc.send_signal(signal.SIGTERM)  # hands its users back to a
                    b.proc.wait(60)
                    b.proc = None
                    await wait_all_live(client, [a], args.users, args.timeout)
                for label, ratios in figures.items():
                    print(f"median ratio to one instance, {label}: {statistics.median(ratios):.2f}", flush=True)
    finally:
        await stop_instances_and_drop_database([inst.proc for inst in instances], args.pg, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ttl", default="15s")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--wrk", default=shutil.which("wrk"), help="the wrk binary (required)")
    parser.add_argument("--nginx", default=shutil.which("nginx"), help="an nginx binary: also measure through it")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if not args.wrk:
        parser.error("wrk is needed (--wrk PATH)")
    asyncio.run(run(args))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

"""Zultys connector throughput against the MX simulator running in a separate process.

    .venv/bin/python bench/connector.py [--seconds 3]

Figures (each with a ratio against a baseline measured in the same run):
* baseline: raw framed echo over the same TLS loopback (one frame out, the same frame back);
* one session, sequential command round trips/s (``GetServiceList`` with no services: the
  smallest command/reply pair), the client's CPU per round trip (against the simulator's CPU for
  the same round trips: the figure that survives a loaded machine), and with 32 commands in flight;
* 100 concurrent sessions, total round trips/s;
* the simulator's own CPU cost per command (its process CPU time / commands served);
* directory fetch of 117 entries (3 pages), milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import time

from common import SimProcess, raise_nofile

from mxproxy.config import MXConfig
from mxproxy.connectors.base import MXAccount
from mxproxy.connectors.zultys import ZultysConnector
from mxproxy.connectors.zultys.framing import encode_frame

COMMAND = b"<GetServiceList></GetServiceList>"


async def echo_baseline(port: int, seconds: float) -> float:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    frame = encode_frame(1, COMMAND)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            writer.write(frame)
            header = await reader.readexactly(8)
            await reader.readexactly(int.from_bytes(header[2:4], "big") - 8)
        n += 200
    elapsed = time.perf_counter() - start
    writer.close()
    return n / elapsed


async def round_trips(sessions: list, seconds: float, in_flight: int = 1) -> float:
    count = 0
    stop = time.perf_counter() + seconds

    async def worker(session) -> None:
        nonlocal count
        while time.perf_counter() < stop:
            for _ in range(50):
                await session.services()
            count += 50

    start = time.perf_counter()
    await asyncio.gather(*(worker(s) for s in sessions for _ in range(in_flight)))
    return count / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    raise_nofile(4096)
    config = MXConfig(cert_fingerprint=None)
    connector = ZultysConnector(config)

    with SimProcess("--echo") as echo:
        baseline = await echo_baseline(echo.port, args.seconds)
    print(f"baseline: raw framed TLS echo, 1 connection      {baseline:9.0f} rt/s   (1.00)")

    with SimProcess("--users", "100", "--directory", "16") as sim:
        one = await connector.login(MXAccount("127.0.0.1", sim.port, "bench", "bench-pw"))
        await one.start_monitor()
        await round_trips([one], 0.5)  # warm-up
        own0, sim0 = time.process_time(), sim.cpu_seconds()
        seq = await round_trips([one], args.seconds)
        own, sim_cpu = time.process_time() - own0, sim.cpu_seconds() - sim0
        print(f"connector: 1 session, sequential             {seq:9.0f} rt/s   ({seq / baseline:.2f} of baseline)")
        # both processes suffer the same contention on a loaded machine; their quotient much less
        print(f"connector: CPU per sequential round trip     {own / (seq * args.seconds) * 1e6:9.1f} us     "
              f"({own / sim_cpu:.3f} x the simulator's CPU for the same round trips)")
        piped = await round_trips([one], args.seconds, in_flight=32)
        print(f"connector: 1 session, 32 in flight           {piped:9.0f} rt/s   ({piped / baseline:.2f} of baseline)")

        many = [await connector.login(MXAccount("127.0.0.1", sim.port, f"user{i}", "pw")) for i in range(100)]
        for s in many:
            await s.start_monitor()
        total = await round_trips(many, args.seconds)
        print(f"connector: 100 sessions, 1 in flight each    {total:9.0f} rt/s   ({total / baseline:.2f} of baseline)")

        cpu0 = sim.cpu_seconds()
        served = await round_trips([one], args.seconds, in_flight=32) * args.seconds
        cpu = sim.cpu_seconds() - cpu0
        per_command = cpu / served * 1e6
        print(f"simulator: CPU per command                   {per_command:9.1f} us     "
              f"({per_command / (1e6 / baseline):.2f} of a baseline round trip)")

        await one.directory()  # warm-up
        samples = []
        for _ in range(200):
            t = time.perf_counter()
            contacts = await one.directory()
            samples.append((time.perf_counter() - t) * 1000)
        assert len(contacts) == 117, len(contacts)
        median = statistics.median(samples)
        print(f"connector: directory of 117 (3 pages)        {median:9.2f} ms     "
              f"({median / (3000 / baseline):.2f} x three baseline round trips), p95 "
              f"{statistics.quantiles(samples, n=20)[18]:.2f} ms")
        for s in [one, *many]:
            await s.close()


if __name__ == "__main__":
    asyncio.run(main())

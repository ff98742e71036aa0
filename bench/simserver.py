"""A simulator (or a raw framed TLS echo server) in its own process, for the benchmarks.

    python bench/simserver.py --users 100 --directory 114 [--call-log user0=27 ...] [--echo] [--uvloop]

Prints ``PORT <port>`` on stdout once listening, then serves until stdin closes."""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mxproxy.simulator import Fixture, Quirks, SimUser, Simulator  # noqa: E402
from mxproxy.simulator.tls import self_signed, server_context  # noqa: E402


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def world(users: int, directory: int, call_logs: dict[str, int] | None = None) -> Fixture:
    """``bench`` plus ``users`` users ``user0…`` (password ``pw``) and ``directory`` more people;
    ``call_logs`` gives some of them a call log of that many entries."""
    fx = Fixture(users=[SimUser(login="bench", password="bench-pw", ext="201", jid=1001, first_name="Bench")])
    fx.add_users(users, password="pw")
    if directory:
        fx.add_directory_entries(directory)
    for login, n in (call_logs or {}).items():
        fx.set_call_log(login, n)
    return fx


def call_log_arg(text: str) -> tuple[str, int]:
    login, _, n = text.partition("=")
    if not login or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected LOGIN=N, got {text!r}")
    return login, int(n)


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read a frame, write the same frame back: the cost floor of a framed TLS round trip."""
    try:
        while True:
            header = await reader.readexactly(8)
            payload = await reader.readexactly(int.from_bytes(header[2:4], "big") - 8)
            writer.write(header + payload)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--directory", type=int, default=0)
    parser.add_argument("--call-log", type=call_log_arg, action="append", default=[],
                        help="LOGIN=N: give that user a call log of N entries")
    parser.add_argument("--echo", action="store_true")
    parser.add_argument("--uvloop", action="store_true", help=argparse.SUPPRESS)  # parsed in __main__
    args = parser.parse_args()
    raise_nofile()
    if args.echo:
        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_context(self_signed()), backlog=4096)
        port = server.sockets[0].getsockname()[1]
    else:
        sim = Simulator(world(args.users, args.directory, dict(args.call_log)), host="127.0.0.1", port=0,
                        quirks=Quirks(presence_after_login=False))
        await sim.start()
        port = sim.port
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent goes away


if __name__ == "__main__":
    if "--uvloop" in sys.argv:  # the MX stand-in on the fast loop (bench/resume.py): less of its CPU per login
        from mxproxy import runtime

        runtime.run(main())
    else:
        asyncio.run(main())

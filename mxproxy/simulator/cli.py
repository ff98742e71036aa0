"""``mxproxy simulator``: run the MX simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from mxproxy.simulator.fixture import FixtureError, demo_fixture, load_fixture
from mxproxy.simulator.quirks import QuirkError, Quirks
from mxproxy.simulator.server import Simulator

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    try:
        fixture = load_fixture(args.fixture) if getattr(args, "fixture", None) else demo_fixture()
        quirks = Quirks.profile(getattr(args, "profile", None) or "spec", getattr(args, "quirk", None) or [])
    except (FixtureError, QuirkError) as exc:
        print(f"mxproxy simulator: {exc}", file=sys.stderr)
        return 2
    control = getattr(args, "control", "") or None
    if control and ":" not in control:
        print("mxproxy simulator: --control must be host:port (or '' to disable)", file=sys.stderr)
        return 2
    if getattr(args, "key", None) and not getattr(args, "cert", None):
        print("mxproxy simulator: --key needs --cert", file=sys.stderr)
        return 2
    sim = Simulator(fixture, host=args.host, port=args.port, control=control, quirks=quirks,
                    certfile=getattr(args, "cert", None), keyfile=getattr(args, "key", None))
    try:
        asyncio.run(_serve(sim))
    except OSError as exc:
        print(f"mxproxy simulator: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(sim: Simulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
            pass
    await sim.start()
    try:
        users = ", ".join(f"{u.login}/{u.ext}" for u in sim.fixture.users[:5])
        more = f" and {len(sim.fixture.users) - 5} more" if len(sim.fixture.users) > 5 else ""
        print(f"MX simulator (sn {sim.fixture.sn}) listening on {sim.host}:{sim.port} (CSTA over TLS, self-signed "
              f"certificate sha256 {sim.cert_fingerprint})", flush=True)
        print(f"users: {users}{more}", flush=True)
        if sim.control_url:
            print(f"control API: {sim.control_url}  (try: curl {sim.control_url}/sessions)", flush=True)
        else:
            print("control API: disabled", flush=True)
        await stop.wait()
        print("MX simulator stopping", flush=True)
    finally:
        await sim.stop()

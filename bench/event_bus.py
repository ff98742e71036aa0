"""CPU per MX event of the event stream (issue 13): what ``[events]`` adds to the owner's work.

    .venv/bin/python bench/event_bus.py            # --calls 20000 --rounds 5

One real user is signed in (real SessionManager, Zultys connector, the MX simulator in a
separate process), so the bus finds the user's extension as it does in production. Then
pre-built call flows (Delivered, Established, Held, Retrieved, ConnectionCleared per call, new
call ids each) go through exactly what the owner task does per MX event: the call-info cache,
the recordings list and ``SessionManager._fan_out`` to the listeners. Figures (process CPU time,
best of ``--rounds``):

* ``unchanged config``: no listener (the bus is not attached) — the baseline;
* ``[events] enabled``: the bus attached, normalising and keeping history, no subscriber;
* ``+ 1 subscriber``: a sink that takes ``json_bytes()`` into a bounded deque (what a stream does).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import time

from common import SimProcess, load_average

from mxproxy.config import EventsConfig, parse_config
from mxproxy.connectors.base import ConnectionCleared, Delivered, Established, Event, Held, MXAccount, Retrieved
from mxproxy.connectors.registry import create_connector
from mxproxy.events.bus import EventBus
from mxproxy.provisioning import ProvisionedAccount
from mxproxy.sessions import SessionManager
from mxproxy.store import create_store

LOGIN, PASSWORD = "user0", "pw"


def flows(ext: str, calls: int, first: int) -> list[Event]:
    out: list[Event] = []
    for n in range(first, first + calls):
        common = dict(call_id=n, device_id=ext, global_call_id=str(2809269720623105000 + n))
        out += [
            Delivered(**common, calling_device="5550100", calling_display_name="Peter Hyde", called_device=ext,
                      alerting_device=ext, alerting_display_name="User Zero", local_connection_info="alerting"),
            Established(**common, answering_device=ext, calling_device="5550100", called_device=ext),
            Held(**common, holding_device=ext),
            Retrieved(**common, retrieving_device=ext),
            ConnectionCleared(**common, releasing_device="5550100", cause="normal"),
        ]
    return out


def run(manager: SessionManager, events: list[Event], ext: str) -> float:
    """CPU seconds per event of the owner's per-event work (``Owner._consume``'s body)."""
    owner = manager._owners[LOGIN]
    calls, recordings, fan_out = owner.calls, owner.recordings, manager._fan_out
    gc.collect()
    start = time.process_time()
    for event in events:
        calls.observe(event, ext)
        recordings.observe(event)
        fan_out(LOGIN, event)
    return (time.process_time() - start) / len(events)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with SimProcess("--users", "1") as sim:
        store = create_store(":memory:", "bench key")
        await store.open()
        connector = create_connector(parse_config({"apps": {"a": "b"}}).mx)
        manager = SessionManager(connector, store, parse_config({"apps": {"a": "b"}}))
        view = await manager.sign_in(ProvisionedAccount(
            login=LOGIN, account=MXAccount("127.0.0.1", sim.port, LOGIN, PASSWORD)))
        ext = view.info.extension
        bus = EventBus(EventsConfig(enabled=False))
        bus.bind(manager)
        kept: collections.deque[bytes] = collections.deque(maxlen=1000)
        best: dict[str, float] = {}
        first = 1
        for _ in range(args.rounds):
            for name in ("unchanged config", "[events] enabled", "+ 1 subscriber"):
                sub = None
                if name == "[events] enabled":
                    bus.require("bench")
                elif name == "+ 1 subscriber":
                    sub = bus.subscribe(LOGIN, lambda e: kept.append(e.json_bytes()))
                events = flows(ext, args.calls, first)
                first += args.calls
                per_event = run(manager, events, ext)
                best[name] = min(best.get(name, per_event), per_event)
                if sub is not None:
                    sub.close()
                if name == "+ 1 subscriber":  # back to "not attached" for the next round
                    bus._required.clear()
                    bus._update_attachment()
        base = best["unchanged config"]
        print(f"{load_average()}; {args.calls} calls x 5 events per figure, best of {args.rounds}")
        for name, value in best.items():
            print(f"{name:18s} {value * 1e6:7.2f} µs CPU per MX event  "
                  f"({value / base:.2f}x, +{(value - base) * 1e6:.2f} µs)")
        await manager.stop()
        await connector.aclose()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())

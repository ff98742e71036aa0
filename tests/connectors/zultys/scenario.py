"""One session's worth of operations, run against the live simulator and against replays of the
traces it recorded (tests/connectors/zultys/traces/<profile>.jsonl).

Re-record the shipped traces (after a change of the simulator or the demo fixture)::

    .venv/bin/python -m tests.connectors.zultys.scenario tests/connectors/zultys/traces
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any, Awaitable, Callable

from mxproxy.connectors.base import Delivered, MXAccount
from mxproxy.connectors.zultys import ZultysConnector, ZultysSession
from tests.connectors.zultys.conftest import FAST, EventReader

TRACES = Path(__file__).parent / "traces"
LOGIN, PASSWORD, EXT = "dmitrys", "78561", "3095"  # the demo fixture's README user

Ring = Callable[[], Awaitable[Any]]


async def scenario(session: ZultysSession, ring: Ring | None = None) -> dict[str, Any]:
    """Every kind of exchange once: lists, multi-part results, a chunked download cancelled after
    its first chunk, and call control on an incoming call (``ring`` makes it ring; a replay sends
    the recorded ``DeliveredEvent`` by itself)."""
    events = EventReader(session)
    await session.start_monitor()
    services = await session.services()
    contacts = await session.directory()
    calls = await session.call_log()
    mails = await session.voicemails()
    download = await session.download_voicemail(mails[0].mail_id)
    first_chunk = await download.__aiter__().__anext__()
    await download.aclose()
    conferences = await session.conferences()
    if ring is not None:
        await ring()
    delivered = await events.next(Delivered)
    await session.answer_call(delivered.call_id, EXT)
    held = await session.hold_call(delivered.call_id, EXT)
    retrieved = await session.retrieve_call(delivered.call_id, EXT)
    cleared = await session.clear_connection(delivered.call_id, EXT)
    return {
        "login": (session.login_info.extension, session.login_info.api_version),
        "services": [s.name for s in services],
        "contacts": sorted((c.jid, c.first_name, c.last_name, c.ext) for c in contacts),
        "calls": [(e.record_id, e.direction, e.missed) for e in calls],
        "mails": [(m.mail_id, m.media_type, m.read) for m in mails],
        "first_chunk": len(first_chunk),
        "conferences": [c.name for c in conferences],
        "call": [type(e).__name__ for e in (held, retrieved, cleared)]
                + [e.call_id == delivered.call_id for e in (held, retrieved, cleared)],
    }


async def login(port: int, connector: ZultysConnector | None = None) -> ZultysSession:
    connector = connector or ZultysConnector(FAST)
    return await connector.login(MXAccount("127.0.0.1", port, LOGIN, PASSWORD))


async def record(profile: str, target: Path) -> None:
    """Run ``scenario`` against the simulator in ``profile`` with tracing on; the trace becomes
    ``target``."""
    from mxproxy.simulator import Quirks, Simulator, demo_fixture

    with tempfile.TemporaryDirectory() as tmp:
        config = dataclasses.replace(FAST, options={"traceDir": tmp})
        connector = ZultysConnector(config)
        connector.trace_user(LOGIN, 600)
        async with Simulator(demo_fixture(), quirks=Quirks.profile(profile)) as sim:
            session = await login(sim.port, connector)
            await scenario(session, lambda: sim.incoming_call(to_ext=EXT, from_number="3044", from_name="Peter Hyde"))
            await session.logout()
        [trace] = Path(tmp).glob("*.jsonl")
        target.write_text(trace.read_text())


def main(folder: str) -> None:
    from mxproxy.simulator.quirks import PROFILES

    Path(folder).mkdir(parents=True, exist_ok=True)
    for profile in PROFILES:
        asyncio.run(record(profile, Path(folder) / f"{profile}.jsonl"))
        print(f"recorded {folder}/{profile}.jsonl")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(TRACES))

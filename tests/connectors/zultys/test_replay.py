"""Replays of recorded CSTA traces (``mxproxy simulator --replay``): the connector gets from a
trace what it got from the MX that was recorded. A trace filed by the owner of a real MX becomes
a regression test the same way: ``sim = await replay(path)``, log in, assert what that MX answered."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import pytest

from mxproxy.simulator import Quirks, Simulator, demo_fixture
from mxproxy.simulator.quirks import PROFILES
from mxproxy.simulator.replay import ReplaySimulator, TraceError, load_trace
from tests.connectors.zultys.scenario import TRACES, EXT, login, scenario

Replay = Callable[[Path], Awaitable[ReplaySimulator]]


@pytest.fixture
async def replay() -> AsyncIterator[Replay]:
    started: list[ReplaySimulator] = []

    async def factory(path: Path) -> ReplaySimulator:
        sim = ReplaySimulator(load_trace(path))
        await sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        await sim.stop()


@pytest.mark.parametrize("profile", sorted(PROFILES))
async def test_a_trace_replays_what_the_live_simulator_answered(replay: Replay, profile: str) -> None:
    async with Simulator(demo_fixture(), quirks=Quirks.profile(profile)) as sim:
        live = await login(sim.port)
        expected = await scenario(live, lambda: sim.incoming_call(to_ext=EXT, from_number="3044"))
        await live.close()
    replayed = await replay(TRACES / f"{profile}.jsonl")
    session = await login(replayed.port)
    try:
        assert await scenario(session) == expected
    finally:
        await session.close()
    assert replayed.unmatched == []


async def test_a_trace_without_login_still_logs_in_and_answers(replay: Replay, tmp_path: Path) -> None:
    lines = (TRACES / "spec.jsonl").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "GetServiceList" in line and '"out"' in line)
    trace = tmp_path / "mid-session.jsonl"
    trace.write_text("\n".join(lines[start:start + 2]) + "\n")
    session = await login((await replay(trace)).port)
    try:
        assert [s.name for s in await session.services()] == [s.name for s in demo_fixture().services]
    finally:
        await session.close()


@pytest.mark.parametrize("content, fragment", [("", "no command"), ("{not json\n", ":1: not a trace line"),
                                               ('{"dir": "sideways", "id": 1, "xml": "<a/>"}\n', ":1:")])
def test_a_broken_trace_is_refused_naming_the_line(tmp_path: Path, content: str, fragment: str) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(content)
    with pytest.raises(TraceError, match=fragment):
        load_trace(trace)


async def test_cli_replays_a_trace_to_a_connector_and_stops_on_sigint() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mxproxy", "simulator", "--port", "0", "--replay", str(TRACES / "name-matched.jsonl"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        port = int(re.search(r"listening on 127\.0\.0\.1:(\d+)", line).group(1))
        session = await login(port)
        assert len(await session.directory()) == len(demo_fixture().people())
        await session.close()
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_cli_refuses_a_missing_trace_with_exit_code_2(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mxproxy", "simulator", "--replay", str(tmp_path / "none.jsonl"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"cannot read trace" in err

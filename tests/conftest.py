"""Shared test helpers for every test folder.

* ``start_simulator`` — factory fixture: ``sim = await start_simulator(fixture=None, quirks=None,
  control=False)`` starts an MX simulator (``mxproxy.simulator.Simulator``) on 127.0.0.1, port 0,
  with the demo fixture unless one is given; every simulator started is stopped after the test.
  Its quirks are those of the ``sim_profile`` fixture ("spec") unless ``quirks`` is given; mark a
  test or module ``@pytest.mark.profiles`` to run it against every profile.
  ``sim.port`` is the CSTA port, ``sim.control_url`` the control API (when ``control=True``).
* ``raw_connect`` — factory fixture: ``conn = await raw_connect(sim)`` opens a TLS connection
  (certificate not verified, as every MX client does) and gives a ``RawCSTA`` that writes and
  reads frames by hand: ``await conn.send(1, "<keepalive />")``, ``await conn.read()``,
  ``await conn.read_until("ablist")``, ``await conn.login("dmitrys", "78561")``.

The raw-frame helpers live in ``tests/rawcsta.py`` (``RawCSTA``, ``build_frame``,
``hashed_password``) for tests that import them directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from mxproxy.store import create_store
from mxproxy.store.base import Store
from tests.rawcsta import RawCSTA

SimulatorFactory = Callable[..., Awaitable[Any]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``profiles`` (a module's ``pytestmark`` or one test) run once per simulator
    profile (``mxproxy.simulator.quirks.PROFILES``) through the ``sim_profile`` fixture;
    ``@pytest.mark.profiles("spec")`` narrows one test to the profiles named."""
    marker = metafunc.definition.get_closest_marker("profiles")
    if marker is None or "sim_profile" not in metafunc.fixturenames:
        return
    from mxproxy.simulator.quirks import PROFILES

    metafunc.parametrize("sim_profile", list(marker.args or PROFILES))


@pytest.fixture
def sim_profile() -> str:
    """The simulator profile ``start_simulator`` (and the API harness) use unless told otherwise."""
    return "spec"


@pytest.fixture
async def start_simulator(sim_profile: str) -> AsyncIterator[SimulatorFactory]:
    from mxproxy.simulator import Quirks, Simulator, demo_fixture

    started: list[Any] = []

    async def factory(fixture: Any = None, *, quirks: Any = None, control: bool = False, **kwargs: Any) -> Any:
        sim = Simulator(fixture if fixture is not None else demo_fixture(), host="127.0.0.1", port=0,
                        control="127.0.0.1:0" if control else None,
                        quirks=quirks if quirks is not None else Quirks.profile(sim_profile), **kwargs)
        await sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in reversed(started):
        await sim.stop()


@pytest.fixture
async def raw_connect() -> AsyncIterator[Callable[[Any], Awaitable[RawCSTA]]]:
    opened: list[RawCSTA] = []

    async def factory(sim_or_port: Any) -> RawCSTA:
        port = sim_or_port if isinstance(sim_or_port, int) else sim_or_port.port
        conn = await RawCSTA.open(port)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        await conn.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh SQLite store (packages with their own ``store`` fixture override this one)."""
    st = create_store(str(tmp_path / "mxproxy.db"), "test store key", base_dir=tmp_path)
    await st.open()
    try:
        yield st
    finally:
        await st.close()

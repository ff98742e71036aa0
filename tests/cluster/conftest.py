"""The ``cluster`` fixture: ``rig = await cluster(users=50)`` (see harness.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from mxproxy.simulator import Fixture
from tests.cluster.harness import ClusterRig, create_database, drop_database
from tests.push.certs import make_service_account
from tests.push.fcm_server import LocalFCM
from tests.store.conftest import postgres_dsn

PROJECT = "mx-test-project"


@pytest.fixture
async def cluster(tmp_path: Path, start_simulator: Any) -> AsyncIterator[Callable[..., Any]]:
    base = postgres_dsn()
    rigs: list[ClusterRig] = []
    databases: list[str] = []
    fcms: list[LocalFCM] = []

    async def factory(users: int = 10) -> ClusterRig:
        fixture = Fixture(sn="63022", api_version=11)
        sim_users = fixture.add_users(users, password="mxpass")
        sim = await start_simulator(fixture)
        fcm = LocalFCM()
        fcm.reserve_port()
        key = make_service_account(tmp_path / "service-account.json", fcm.token_uri, PROJECT)
        fcm.public_keys[f"push@{PROJECT}.iam.gserviceaccount.com"] = key.public_key()
        await fcm.start()
        fcms.append(fcm)
        dsn, name = await create_database(base)
        databases.append(name)
        rig = ClusterRig(tmp=tmp_path, dsn=dsn, database=name, sim=sim, fcm=fcm, users=sim_users)
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        await rig.close()
    for fcm in fcms:
        await fcm.stop()
    for name in databases:
        await drop_database(base, name)

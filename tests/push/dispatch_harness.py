"""The real pieces the dispatcher tests wire together: the MX simulator (with its control API),
the Zultys connector, a SessionManager, a SQLite store, the local APNs and FCM peers, and the
dispatcher built by ``create_dispatcher`` from a Config pointing the senders at those peers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx
import pytest

from mxproxy.config import Config, MXConfig
from mxproxy.connectors.base import Event, MXAccount
from mxproxy.connectors.registry import create_connector
from mxproxy.metrics import Metrics
from mxproxy.provisioning import ProvisionedAccount
from mxproxy.push.dispatcher import PushDispatcher, create_dispatcher
from mxproxy.sessions import SessionManager, SessionOptions
from mxproxy.store.base import DeviceToken, Store, UserRecord
from mxproxy.localpush.apns import LocalAPNs
from tests.push.conftest import APP, BUNDLE, push_config
from mxproxy.localpush.fcm import LocalFCM

USER, PASSWORD, EXT = "dmitrys", "78561", "3095"  # demo fixture (docs/simulator.md)


def apn(value: str, login: str = USER, *, sandbox: bool = False) -> DeviceToken:
    return DeviceToken(kind="apn", topic=BUNDLE, token=value, login=login, sandbox=sandbox)


def fcm_token(value: str, login: str = USER) -> DeviceToken:
    return DeviceToken(kind="fcm", topic=APP, token=value, login=login)


def dispatcher_config(tmp_path: Path, pki: dict[str, Any], apns: LocalAPNs, fcm: LocalFCM, **push: Any) -> Config:
    """``[voip]`` credentials and ``[push.apns]``/``[push.fcm]`` endpoints of the local peers."""
    apns_cfg = {"production": apns.endpoint, "development": apns.endpoint, "caFile": str(pki["ca_file"]),
                **push.pop("apns", {})}
    return push_config(
        tmp_path,
        voip={"apn": {str(pki["p12"]): "secret"}, "fcm": {APP: str(tmp_path / "service-account.json")}},
        push={"retryBackoff": "10ms", "apns": apns_cfg, "fcm": {"sendURL": fcm.send_url}, **push},
    )


@dataclass
class Rig:
    """Everything one test needs; ``events`` is what a second session listener saw."""

    config: Config
    store: Store
    sessions: SessionManager
    dispatcher: PushDispatcher
    metrics: Metrics
    apns: LocalAPNs
    fcm: LocalFCM
    sim: Any = None
    control: httpx.AsyncClient | None = None
    events: list[tuple[str, Event]] = field(default_factory=list)

    async def sign_in(self, login: str = USER, password: str = PASSWORD) -> None:
        assert self.sim is not None
        await self.sessions.sign_in(ProvisionedAccount(
            login=login, account=MXAccount(host="127.0.0.1", port=self.sim.port, login=login, password=password)))

    async def add_user(self, login: str) -> None:
        await self.store.put_user(UserRecord(login=login, host="127.0.0.1:7778", mx_login=login, password="pw"))

    async def control_post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self.control is not None
        response = await self.control.post(path, json=body or {})
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def seen(self, type_: type) -> list[Event]:
        return [e for _, e in self.events if isinstance(e, type_)]

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(tmp_path: Path, pki: dict[str, Any], apns: LocalAPNs, fcm: LocalFCM, store: Store,
                   start_simulator: Any) -> AsyncIterator[RigFactory]:
    """``rig = await make_rig(simulator=True, **push_settings)``; everything is closed afterwards."""
    made: list[Rig] = []
    connector = create_connector(MXConfig(connect_timeout=3.0, response_timeout=3.0))

    async def make(*, simulator: bool = True, **push: Any) -> Rig:
        config = dispatcher_config(tmp_path, pki, apns, fcm, **push)
        options = SessionOptions(reconnect_min=0.05, reconnect_max=0.2, jitter=0.0, resume_wait=5.0,
                                 sign_in_wait=5.0, stop_timeout=3.0)
        sessions = SessionManager(connector, store, config, options=options)
        metrics = Metrics()
        dispatcher = create_dispatcher(config, store, sessions, metrics=metrics)
        rig = Rig(config, store, sessions, dispatcher, metrics, apns, fcm)
        sessions.add_listener(lambda login, event: rig.events.append((login, event)))
        if simulator:
            rig.sim = await start_simulator(control=True)
            rig.control = httpx.AsyncClient(base_url=rig.sim.control_url, timeout=5.0)
        await dispatcher.start()
        made.append(rig)
        return rig

    yield make
    for rig in made:
        await rig.sessions.stop()
        await rig.dispatcher.aclose()
        if rig.control is not None:
            await rig.control.aclose()
    await connector.aclose()

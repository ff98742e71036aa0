"""The public API built from real parts: SQLite store, key ring + token service, the static
provisioner, the session manager, the Zultys connector and the MX simulator on 127.0.0.1.

``client`` talks to the app in-process through httpx's ASGI transport (cheap); ``live_client``
talks to a real uvicorn on an ephemeral port (streaming, disconnects, wire headers).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
import uvicorn

from mxproxy.api.app import create_app
from mxproxy.api.context import ApiContext
from mxproxy.auth.azure import AzureADValidator
from mxproxy.auth.keyring import KeyRing
from mxproxy.auth.signin_limits import SignInLimiter
from mxproxy.auth.tokens import TokenService
from mxproxy.config import Config, parse_config
from mxproxy.connectors.registry import create_connector
from mxproxy.events.bus import EventBus
from mxproxy.provisioning import create_provisioner
from mxproxy.push.topics import PushTopics
from mxproxy.sessions import SessionManager
from mxproxy.simulator import Quirks, Simulator, demo_fixture
from mxproxy.store import Store, create_store

# The README's literal example credentials.
CLIENT_ID = "client7664"
CLIENT_SECRET = "Mmx0OlWEDIDhPGgGpLQFxBwpCSPp9IIY"
README_BASIC = "Basic Y2xpZW50NzY2NDpNbXgwT2xXRURJRGhQR2dHcExRRnhCd3BDU1BwOUlJWQ=="
README_USERNAME = "dmitrys@xyzrd.com"
README_PASSWORD = "78561"
README_FORM = "username=dmitrys%40xyzrd.com&password=78561&grant_type=password"
FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"

APN_TOPIC = "com.connector73.vialer.voip"
FCM_APP = "vialer-android"
DEMO_EXT = "3095"  # the README's signed-in user (Dmitry Sedykh)
SECOND_EXT = "3044"  # Peter Hyde


def demo_user(fixture: Any, ext: str) -> Any:
    for user in fixture.users:
        if user.ext == ext:
            return user
    raise LookupError(f"demo fixture has no user with ext {ext}")


@dataclass
class ApiHarness:
    sim: Simulator
    ctx: ApiContext
    app: Any
    client: httpx.AsyncClient
    config: Config
    log_path: Path

    async def sign_in(self, username: str = README_USERNAME, password: str = README_PASSWORD) -> str:
        form = httpx.QueryParams({"username": username, "password": password, "grant_type": "password"})
        r = await self.client.post("/auth", content=str(form), headers={"Authorization": README_BASIC,
                                                                         "Content-Type": FORM_TYPE})
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def build_api(tmp_path: Path, *, response_timeout: str = "1s",
                    azure: dict[str, Any] | None = None, profile: str = "spec",
                    mx: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
                    store: Store | None = None) -> AsyncIterator[ApiHarness]:
    """``mx``: extra ``[mx]`` keys (e.g. ``traceDir``); ``extra``: config tables merged over the
    defaults; ``store``: an unopened store to use instead of a SQLite file in ``tmp_path`` (closed
    afterwards)."""
    fixture = demo_fixture()
    sim = Simulator(fixture, host="127.0.0.1", port=0, control=None, quirks=Quirks.profile(profile))
    await sim.start()
    me = demo_user(fixture, DEMO_EXT)
    peter = demo_user(fixture, SECOND_EXT)
    log_path = tmp_path / "mxproxy.log"
    config = parse_config(
        {
            "apps": {CLIENT_ID: CLIENT_SECRET},
            "logName": "mxproxy.log",
            "mx": {"responseTimeout": response_timeout, "connectTimeout": "2s", "reconnectMin": "30s",
                   "reconnectMax": "60s", "callLogIdle": "200ms", "callReplyGrace": "50ms"} | (mx or {}),
            "static": {
                "mode": "users",
                "host": f"127.0.0.1:{sim.port}",
                "users": {
                    README_USERNAME: {"password": README_PASSWORD, "mxLogin": me.login, "mxPassword": me.password},
                    "peterh@xyzrd.com": {"password": "peter-pw", "mxLogin": peter.login,
                                         "mxPassword": peter.password},
                },
            },
        }
        | ({"azure": azure} if azure else {})
        | (extra or {}),
        base_dir=tmp_path,
    )
    validator = AzureADValidator(config.azure) if config.azure.enabled else None
    if store is None:
        store = create_store(str(tmp_path / "mxproxy.db"), "api-test-key", base_dir=tmp_path)
    await store.open()
    keyring = KeyRing(store, config.jwt)
    await keyring.load()
    tokens = TokenService(keyring, config.jwt)
    provisioner = create_provisioner(config)
    connector = create_connector(config.mx)
    sessions = SessionManager(connector, store, config)
    bus = EventBus(config.events)  # as ProxyServer.events: listening only when something needs it
    bus.bind(sessions)
    await sessions.start()
    limiter = SignInLimiter(config.signin) if config.signin.enabled else None
    ctx = ApiContext(
        config=config, tokens=tokens, azure=validator, provisioner=provisioner, sessions=sessions, store=store,
        push_topics=PushTopics.of(apn=[(APN_TOPIC, False), (APN_TOPIC, True)], fcm=[FCM_APP]),
        signin_limits=limiter, events=bus,
    )
    app = create_app(ctx)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mxproxy.test")
    try:
        yield ApiHarness(sim=sim, ctx=ctx, app=app, client=client, config=config, log_path=log_path)
    finally:
        await client.aclose()
        if limiter is not None:
            await limiter.aclose()
        await sessions.stop()
        bus.close()
        await connector.aclose()
        await provisioner.aclose()
        await store.close()
        if validator is not None:
            await validator.aclose()
        await sim.stop()


@pytest.fixture
async def api(tmp_path: Path, sim_profile: str) -> AsyncIterator[ApiHarness]:
    """The harness on the ``sim_profile`` simulator profile ("spec"; every profile for tests
    marked ``profiles``)."""
    async with build_api(tmp_path, profile=sim_profile) as harness:
        yield harness


@pytest.fixture
async def token(api: ApiHarness) -> str:
    return await api.sign_in()


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run ``app`` under a real uvicorn on 127.0.0.1:0; yields the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", server_header=False,
                            lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def live_client(api: ApiHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(api.app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            yield client


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

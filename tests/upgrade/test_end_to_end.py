"""The whole upgrade, end to end: an MX Proxy 2.3 folder (its config and a bbolt file written by
the real bbolt library) → ``mxproxy serve`` as a real process → every imported user logs in to
the MX simulator and monitors → an incoming call pushes to their imported APNs and FCM tokens
(local APNs and FCM peers, as in tests/push)."""

from __future__ import annotations

import asyncio
import errno
import shutil
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from mxproxy.simulator import Fixture, Simulator, SimUser
from mxproxy.upgrade.bbolt import read_bolt_file
from tests.push.apns_server import LocalAPNs
from tests.push.certs import make_push_p12
from tests.push.conftest import apns, fcm, pki  # noqa: F401 - fixtures
from tests.push.fcm_server import LocalFCM
from tests.test_server import ServeProcess
from tests.upgrade.conftest import BUNDLE, fixture_db
from tests.waiting import eventually

# e2e.db's users (makefixtures.go, writeEndToEnd) live on an MX at this loopback alias: nothing
# else in the suite listens there. Their passwords are "e2e-<login>".
MX_HOST, MX_PORT = "127.0.77.1", 7778
USERS = {"peterh": "3044", "mikef": "3055", "testone": "3080"}


@pytest.fixture
async def original_mx() -> AsyncIterator[Simulator]:
    fixture = Fixture(users=[SimUser(login=login, password=f"e2e-{login}", ext=ext, jid=1000 + int(ext),
                                     first_name=login) for login, ext in USERS.items()])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # another run of this very test may still hold the address
    while True:
        sim = Simulator(fixture, host=MX_HOST, port=MX_PORT, control=None)
        try:
            await sim.start()
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)
    yield sim
    await sim.stop()


def _config(folder: Path, pki: dict[str, Any], apns: LocalAPNs, fcm: LocalFCM, service_account: Path) -> Path:
    make_push_p12(pki["ca"], folder / "phone.p12", BUNDLE, password="p12-secret", legacy=True)
    path = folder / "mxproxy.toml"
    path.write_text(f'''[apps]
client7664 = "secret"
[voip]
apnTTL = "10m"
[voip.apn]
"phone.p12" = "p12-secret"
[voip.fcm]
"{BUNDLE}" = "{service_account}"
# for the test: local ports and the local provider peers
[server]
port = "127.0.0.1:0"
admin = "off"
[mx]
connectTimeout = "5s"
[push]
retryBackoff = "10ms"
[push.apns]
production = "{apns.endpoint}"
development = "{apns.endpoint}"
caFile = "{pki['ca_file']}"
[push.fcm]
sendURL = "{fcm.send_url}"
''')
    return path


async def test_an_original_folder_served_brings_every_user_back_and_rings_their_devices(
    tmp_path: Path, original_mx: Simulator, pki: dict[str, Any], apns: LocalAPNs, fcm: LocalFCM,  # noqa: F811
) -> None:
    folder = tmp_path / "mxproxy"
    folder.mkdir()
    shutil.copyfile(fixture_db("e2e"), folder / "mxproxy.db")
    config = _config(folder, pki, apns, fcm, tmp_path / "service-account.json")
    stored = read_bolt_file(folder / "mxproxy.db").bucket("tokens").items
    devices = {key.decode().split(":", 2)[0] + ":" + login.decode(): key.decode().split(":", 2)[2]
               for key, login in stored.items()}

    proc = ServeProcess(config)
    await proc.start()
    try:
        await proc.ready_url()

        def monitoring() -> set[str]:
            return {s.login for s in original_mx.sessions() if s.active and s.logged_in and s.monitors}

        await eventually(lambda: monitoring() == set(USERS), "every imported user logged in and monitors", 30)

        call_id = await original_mx.incoming_call(USERS["peterh"], "5551234", "Caller")
        await eventually(lambda: apns.requests and fcm.sends, "the ring reached APNs and FCM", 30)
        [ring] = [r for r in apns.requests if r.json().get("callId") == call_id]
        assert ring.token == devices["apn:peterh"] and ring.json()["type"] == "Delivered"
        assert ring.headers["apns-push-type"] == "voip"
        sends = [s for s in fcm.sends if s.message["data"].get("callId") == str(call_id)]
        assert [s.message["token"] for s in sends] == [devices["fcm:peterh"]]
        # only peterh was called: nobody else's device rang
        assert {r.token for r in apns.requests} == {devices["apn:peterh"]}
    finally:
        await proc.kill()
    assert (folder / "mxproxy.sqlite").is_file()
    assert (folder / "mxproxy.db").read_bytes() == fixture_db("e2e").read_bytes()
    assert "importing it into" in proc.stderr

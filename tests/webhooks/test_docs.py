"""docs/webhooks.md's admin examples (the ``$ curl`` lines, kept out of tests/test_docs_examples.py's
scope because they need ``[webhooks] enabled`` and ids only known at run time) run in order
against a real proxy with webhooks on: ``$ID`` is the subscription the first example created,
``$DELIVERY`` a delivery of it (a call is rung before the first deliveries example)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from mxproxy.config import load_config
from mxproxy.demo import DemoRequest
from mxproxy.server import ProxyServer
from tests.admin.test_serve import APP_PASSWORD, CLIENT, write_config
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_serve import WEBHOOKS

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
DOC_URL = "https://crm.example.com/mxproxy"


def examples() -> list[str]:
    return [line.strip()[2:] for block in FENCE.findall(DOC.read_text())
            for line in block.splitlines() if line.strip().startswith("$ curl ")]


def test_the_doc_has_every_admin_example() -> None:
    found = examples()
    assert len(found) == 7
    for route in ("/webhooks", "/webhooks/$ID", "/deliveries?state=failed", "/redeliver"):
        assert any(route in c for c in found), route


async def test_every_documented_webhook_example_works(tmp_path: Path, start_simulator: Any) -> None:
    sim = await start_simulator()
    me = next(u for u in sim.fixture.users if u.login == "dmitrys")
    path = write_config(tmp_path, sim.port, me.password)
    path.write_text(path.read_text() + WEBHOOKS)
    receiver = Receiver()
    await receiver.start()
    server = ProxyServer(load_config(path))
    await server.start()
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(f"{server.public_url}/auth", auth=CLIENT, data={
                "username": "dmitrys@xyzrd.com", "password": APP_PASSWORD, "grant_type": "password"})
            assert r.status_code == 200, r.text
            names: dict[str, str] = {}
            for command in examples():
                if "/deliveries" in command and "DELIVERY" not in names:
                    await sim.incoming_call(me.ext, "5550100", "Peter Hyde")
                    await receiver.wait_for(1)
                    rows = (await client.get(f"{server.admin_url}/webhooks/{names['ID']}/deliveries")).json()
                    names["DELIVERY"] = str(rows["deliveries"][0]["id"])
                text = command.replace("localhost:8043", server.admin_url.split("://", 1)[1])
                text = text.replace(DOC_URL, receiver.url)
                for name, value in names.items():
                    text = text.replace(f"${name}", value)
                request = DemoRequest.from_curl(text)
                response = await client.request(request.method, request.url, headers=request.headers,
                                                 content=request.body)
                assert response.status_code < 400, (command, response.status_code, response.text)
                if request.method == "POST" and request.url.endswith("/webhooks"):
                    names["ID"] = response.json()["id"]
                    assert response.json()["secret"].startswith("whsec_")
            assert (await client.get(f"{server.admin_url}/webhooks")).json() == {"webhooks": []}  # the last one deleted it
    finally:
        await server.stop()
        await receiver.stop()


async def test_an_unchanged_config_starts_no_webhooks_and_the_routes_say_so(tmp_path: Path, start_simulator: Any) -> None:
    sim = await start_simulator()
    me = next(u for u in sim.fixture.users if u.login == "dmitrys")
    server = ProxyServer(load_config(write_config(tmp_path, sim.port, me.password)))
    await server.start()
    try:
        assert server.webhooks is None and not server.events.attached
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.get(f"{server.admin_url}/webhooks")
            assert r.status_code == 503 and "[webhooks] enabled = false" in r.json()["error"]
            assert "mxproxy_webhook_outbox_depth 0.0" in (await client.get(f"{server.admin_url}/metrics")).text
    finally:
        await server.stop()

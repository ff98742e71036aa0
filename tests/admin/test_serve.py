"""``ProxyServer`` (``mxproxy serve``) really serves the admin app on its admin port, next to the
public API on one loop: the admin sees the users the public API signed in, counts both APIs in
``/metrics``, and enforces ``[server] adminToken`` on a non-loopback-capable bind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from mxproxy.config import load_config
from mxproxy.server import ProxyServer

CLIENT = ("client7664", "Mmx0OlWEDIDhPGgGpLQFxBwpCSPp9IIY")
APP_PASSWORD = "app-secret-78561"


def write_config(tmp_path: Path, mx_port: int, mx_password: str, extra_server: str = "") -> Path:
    path = tmp_path / "mxproxy.toml"
    path.write_text(f"""
logName = "mxproxy.log"
[apps]
{CLIENT[0]} = "{CLIENT[1]}"
[server]
port = "127.0.0.1:0"
admin = "127.0.0.1:0"
db = "store.db"
{extra_server}
[mx]
connectTimeout = "3s"
responseTimeout = "3s"
[static]
host = "127.0.0.1:{mx_port}"
[static.users."dmitrys@xyzrd.com"]
password = "{APP_PASSWORD}"
mxLogin = "dmitrys"
mxPassword = "{mx_password}"
""")
    return path


async def start(tmp_path: Path, start_simulator: Any, extra_server: str = "") -> tuple[ProxyServer, Any]:
    sim = await start_simulator()
    me = next(u for u in sim.fixture.users if u.login == "dmitrys")
    server = ProxyServer(load_config(write_config(tmp_path, sim.port, me.password, extra_server)))
    await server.start()
    return server, sim


async def test_proxy_server_serves_the_admin_app_on_its_admin_port(tmp_path: Path, start_simulator: Any) -> None:
    server, _ = await start(tmp_path, start_simulator)
    try:
        assert server.admin_port and server.admin_port != server.public_port
        assert server.admin_url == f"http://127.0.0.1:{server.admin_port}"
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{server.public_url}/auth", auth=CLIENT, data={
                "username": "dmitrys@xyzrd.com", "password": APP_PASSWORD, "grant_type": "password"})
            assert r.status_code == 200, r.text
            r = await client.get(f"{server.admin_url}/connections")
            assert (r.status_code, r.json()) == (200, {"connections": ["dmitrys"]})
            r = await client.get(f"{server.admin_url}/users")
            assert r.json()["users"]["dmitrys"]["password"] == "xxxxx"
            r = await client.get(f"{server.admin_url}/readyz")
            assert r.status_code == 200, r.text
            r = await client.get(f"{server.admin_url}/metrics")
            families = {f.name: f for f in text_string_to_metric_families(r.text)}
            requests = {(s.labels["api"], s.labels["route"]): s.value
                        for s in families["mxproxy_http_requests"].samples if s.name.endswith("_total")}
            assert requests[("public", "/auth")] == 1
            assert requests[("admin", "/connections")] == 1
            # the public port does not serve the admin routes
            assert (await client.get(f"{server.public_url}/connections")).status_code == 404
    finally:
        await server.stop()


async def test_proxy_server_admin_requires_the_configured_token(tmp_path: Path, start_simulator: Any) -> None:
    server, _ = await start(tmp_path, start_simulator, 'adminToken = "tok-5a4b3c2d1e"')
    try:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{server.admin_url}/users")
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
            r = await client.get(f"{server.admin_url}/users", headers={"Authorization": "Bearer tok-5a4b3c2d1e"})
            assert (r.status_code, r.json()) == (200, {"users": {}})
            assert (await client.get(f"{server.admin_url}/healthz")).status_code == 200
    finally:
        await server.stop()

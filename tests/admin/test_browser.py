"""The admin API refuses what only a web page would send — a rebinding ``Host``, a cross-site
state-changing request — through a real ``mxproxy serve`` admin listener on loopback, while the
README's curl lines (run with the real curl) keep answering 200."""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from mxproxy.server import ProxyServer
from tests.admin.test_serve import APP_PASSWORD, CLIENT, start

LOGIN = "dmitrys@xyzrd.com"
MX_LOGIN = "dmitrys"  # what POST /users takes (the sign-in name too once issue 10's fix lands)


@pytest.fixture
async def served(tmp_path: Path, start_simulator: Any) -> AsyncIterator[ProxyServer]:
    server, _ = await start(tmp_path, start_simulator, 'adminHosts = ["admin.example.net"]')
    try:
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{server.public_url}/auth", auth=CLIENT, data={
                "username": LOGIN, "password": APP_PASSWORD, "grant_type": "password"})
            assert r.status_code == 200, r.text
        yield server
    finally:
        await server.stop()


async def connections(server: ProxyServer) -> list[str]:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{server.admin_url}/connections")).json()["connections"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "rebind.attacker.test:80", "10.1.2.3"])
async def test_a_foreign_host_is_refused_so_dns_rebinding_cannot_read_tokens(served: ProxyServer, host: str) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{served.admin_url}/tokens", headers={"Host": host.format(port=served.admin_port)})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/json")
    assert "Host not allowed" in r.json()["error"]


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "LOCALHOST", "admin.example.net:{port}"])
async def test_loopback_names_and_configured_admin_hosts_are_served(served: ProxyServer, host: str) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{served.admin_url}/tokens", headers={"Host": host.format(port=served.admin_port)})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"},
    {"Origin": "http://evil.example", "Content-Type": "text/plain"},
    {"Origin": "http://evil.example", "Content-Type": "multipart/form-data; boundary=x"},
    {"Origin": "null", "Content-Type": "application/x-www-form-urlencoded"},
    {"Origin": "https://127.0.0.1:{port}", "Content-Type": "application/x-www-form-urlencoded"},
    {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/x-www-form-urlencoded"},
    {"Sec-Fetch-Site": "same-site", "Content-Type": "application/x-www-form-urlencoded"},
], ids=["form", "text-plain", "multipart", "null-origin", "other-scheme", "fetch-cross-site", "fetch-same-site"])
async def test_a_cross_site_browser_post_cannot_sign_a_user_out(served: ProxyServer, headers: dict[str, str]) -> None:
    headers = {k: v.format(port=served.admin_port) for k, v in headers.items()}
    body = f"login={MX_LOGIN}" if "multipart" not in headers["Content-Type"] else \
        f'--x\r\nContent-Disposition: form-data; name="login"\r\n\r\n{MX_LOGIN}\r\n--x--\r\n'
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{served.admin_url}/users", content=body, headers=headers)
    assert r.status_code == 403
    assert r.json() == {"error": "admin API: cross-site request refused"}
    assert await connections(served) == ["dmitrys"]  # still signed in


async def test_the_admin_page_itself_may_post_same_origin(served: ProxyServer) -> None:
    origin = served.admin_url
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{origin}/users", data={"login": MX_LOGIN},
                              headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200, r.text
    assert await connections(served) == []


async def curl(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    body, _, code = out.decode().rpartition("\n")
    return int(code), body


def readme_admin_curls(port: int) -> list[list[str]]:
    """The README's admin curl lines, as they are written there, pointed at ``port``."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    commands: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("curl localhost:8043"):
            for command in line.split("#")[0].split(";"):
                argv = shlex.split(command.replace("localhost:8043", f"localhost:{port}"))
                assert argv[0] == "curl"
                commands.append(argv[1:])
    return commands


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
async def test_the_readme_curl_lines_keep_working(served: ProxyServer) -> None:
    commands = readme_admin_curls(served.admin_port or 0)
    assert len(commands) >= 5
    answers = {" ".join(argv): await curl(*argv) for argv in commands}
    for command, (code, body) in answers.items():
        assert code != 403, (command, body)
        if "/push" not in command:  # no push provider is configured here: /push says so (503)
            assert code == 200, (command, body)
    assert await connections(served) == []  # the README's sign-out line signed dmitrys out

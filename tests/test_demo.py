"""``mxproxy demo``: the printed curl commands work against the demo as printed."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from mxproxy.demo import DEMO_PASSWORD, DEMO_USERNAME, Demo, DemoRequest


@pytest.fixture
async def demo():  # type: ignore[no-untyped-def]
    running = Demo(port="127.0.0.1:0", admin="127.0.0.1:0", mx_port=0, control="127.0.0.1:0")
    await running.start()
    try:
        assert running.proxy is not None, running.proxy_error
        yield running
    finally:
        await running.stop()


async def _execute(client: httpx.AsyncClient, request: DemoRequest, token: str | None, out_dir: Path) -> httpx.Response:
    """Send exactly what the printed curl sends: the same method, headers and raw body."""
    headers = {k: v.replace("$TOKEN", token or "") for k, v in request.headers.items()}
    content: str | None = None
    if request.form is not None:
        content = "&".join(f"{k}={v}" for k, v in request.form.items())
    elif request.body is not None:
        content = request.body
    response = await client.request(request.method, request.url, headers=headers, content=content)
    if request.output:
        (out_dir / request.output).write_bytes(response.content)
    return response


def test_sign_in_is_the_readme_request() -> None:
    request = DemoRequest(
        "t", "POST", "http://127.0.0.1:8000/auth",
        headers={"Authorization": "Basic Y2xpZW50NzY2NDpNbXgwT2xXRURJRGhQR2dHcExRRnhCd3BDU1BwOUlJWQ=="},
        form={"username": "dmitrys%40xyzrd.com", "password": "78561", "grant_type": "password"},
    )
    assert request.curl() == (
        "curl -sS -H 'Authorization: Basic Y2xpZW50NzY2NDpNbXgwT2xXRURJRGhQR2dHcExRRnhCd3BDU1BwOUlJWQ==' "
        "--data-raw 'username=dmitrys%40xyzrd.com&password=78561&grant_type=password' http://127.0.0.1:8000/auth"
    )
    assert DemoRequest("t", "PUT", "http://x/tokens", headers={"Authorization": "Bearer $TOKEN"}).curl() == (
        'curl -sS -X PUT -H "Authorization: Bearer $TOKEN" http://x/tokens'
    )


async def test_printed_requests_succeed_against_the_demo(demo: Demo, tmp_path: Path) -> None:
    text = demo.instructions()
    requests = demo.requests()
    for request in requests:
        assert request.curl() in text
    assert f"{DEMO_USERNAME} / {DEMO_PASSWORD}" in text
    assert demo.admin_url is None or f"curl -sS {demo.admin_url}/users" in text
    titles = [r.title for r in requests]
    assert any("voicemail" in t.lower() and "download" in t.lower() for t in titles), titles

    token: str | None = None
    async with httpx.AsyncClient(timeout=30) as client:
        for request in requests:
            response = await _execute(client, request, token, tmp_path)
            assert response.status_code < 300, (request.title, response.status_code, response.text)
            if request.capture_token:
                token = response.json()["access_token"]
                assert token
            elif request.url.endswith("/auth"):
                assert response.json()["ext"]
            elif request.url.endswith("/contacts"):
                assert response.json()  # the README's people
    assert (tmp_path / "vm.wav").read_bytes()[:4] == b"RIFF"


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="needs curl and bash")
async def test_printed_text_runs_in_a_shell(demo: Demo, tmp_path: Path) -> None:
    """Paste the sign-in, contacts and voicemail download lines into bash, as a user would."""
    lines = demo.instructions().splitlines()
    wanted = [line for line in lines if line.startswith(("TOKEN=", "curl")) and "/contacts" in line
              or line.startswith("TOKEN=") or ("-o vm.wav" in line)]
    assert len(wanted) == 3, wanted
    script = "set -e\n" + "\n".join(wanted) + "\n"
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    proc = await asyncio.create_subprocess_exec(
        "bash", "-c", script, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert b'"contacts"' in out or b"firstName" in out, out[:500]
    assert (tmp_path / "vm.wav").read_bytes()[:4] == b"RIFF"


async def test_the_demo_starts_without_plain_text_password_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        running = Demo(port="127.0.0.1:0", admin="127.0.0.1:0", mx_port=0, control="127.0.0.1:0")
        await running.start()
        await running.stop()
    assert "plain text" not in caplog.text

"""``mxproxy healthcheck`` (the container's HEALTHCHECK) against a live proxy and a dead port."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from admin.healthcheck import healthz_url
from tests.admin.test_serve import start


async def run_healthcheck(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mxproxy", "healthcheck", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_live_proxy_is_healthy(tmp_path: Path, start_simulator: Any) -> None:
    server, _ = await start(tmp_path, start_simulator)
    try:
        code, out, _ = await run_healthcheck("--admin", f"127.0.0.1:{server.admin_port}")
    finally:
        await server.stop()
    assert code == 0
    assert out.strip() == f"http://127.0.0.1:{server.admin_port}/healthz: ok"


async def test_nothing_listening_is_unhealthy_with_the_reason_on_stderr() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, out, err = await run_healthcheck("--admin", f"127.0.0.1:{port}", "--timeout", "2")
    assert (code, out) == (1, "")
    assert f"127.0.0.1:{port}/healthz: ConnectError" in err


@pytest.mark.parametrize(
    ("admin", "url"),
    [
        (None, "http://127.0.0.1:8043/healthz"),
        ("9000", "http://127.0.0.1:9000/healthz"),
        ("0.0.0.0:8043", "http://127.0.0.1:8043/healthz"),  # a wildcard bind is reached on loopback
        ("[::]:8043", "http://[::1]:8043/healthz"),
        ("10.1.2.3:8043", "http://10.1.2.3:8043/healthz"),
    ],
)
def test_the_admin_address_is_spelled_as_for_serve(admin: str | None, url: str) -> None:
    assert healthz_url(admin) == url

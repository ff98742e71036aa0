"""Credentials and local provider peers shared by the push tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from mxproxy.config import Config, parse_config
from mxproxy.push.results import PushKind, PushResult, Sender
from mxproxy.store.base import DeviceToken
from mxproxy.localpush.apns import LocalAPNs
from mxproxy.localpush.pki import (
    TestCA,
    make_ca,
    make_push_p12,
    make_server_cert,
    make_service_account,
)
from mxproxy.localpush.fcm import LocalFCM

BUNDLE = "com.example.phone"
APP = "com.example.phone"  # FCM app id
PROJECT = "mx-test-project"  # Firebase project of the generated service account


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A CA, a TLS server certificate for 127.0.0.1 and a dev+prod push certificate."""
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca()
    cert, key = make_server_cert(ca, d)
    return {
        "dir": d,
        "ca": ca,
        "ca_file": ca.write(d / "ca.pem"),
        "server_cert": cert,
        "server_key": key,
        "p12": make_push_p12(ca, d / "phone.p12", BUNDLE, password="secret"),
    }


@pytest.fixture
async def apns(pki: dict[str, Any]) -> AsyncIterator[LocalAPNs]:
    server = await LocalAPNs(str(pki["server_cert"]), str(pki["server_key"]), client_ca=str(pki["ca_file"])).start()
    yield server
    await server.stop()


async def start_fcm(folder: Path, tls: tuple[str, str] | None = None) -> LocalFCM:
    """A local FCM (HTTPS with ``tls``) and ``folder/service-account.json`` whose token URI is it."""
    server = LocalFCM(tls=tls)
    server.reserve_port()
    key = make_service_account(folder / "service-account.json", server.token_uri, PROJECT)
    server.public_keys[f"push@{PROJECT}.iam.gserviceaccount.com"] = key.public_key()
    return await server.start()


@pytest.fixture
async def fcm(tmp_path: Path) -> AsyncIterator[LocalFCM]:
    server = await start_fcm(tmp_path)
    yield server
    await server.stop()


def push_config(base_dir: Path, *, voip: dict[str, Any] | None = None, push: dict[str, Any] | None = None) -> Config:
    """A full Config through the real parser, as an operator would write it."""
    data: dict[str, Any] = {"apps": {"app": "secret"}, "voip": voip or {}, "push": push or {}}
    return parse_config(data, base_dir=base_dir)


def ca_of(pki: dict[str, Any]) -> TestCA:
    return pki["ca"]


def soon(seconds: float = 5.0) -> float:
    """A send deadline ``seconds`` from now."""
    return time.monotonic() + seconds


async def send_once(sender: Sender, device: DeviceToken, payload: dict[str, Any], kind: PushKind) -> PushResult:
    """One push through a sender made for this test alone, closed afterwards."""
    try:
        return await sender.send(device, payload, kind, deadline=soon())
    finally:
        await sender.aclose()

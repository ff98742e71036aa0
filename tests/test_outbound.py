"""The outbound trust rule (mxproxy/outbound.py): a configured CA adds to the system trust store,
and the environment's requests/curl CA bundles and proxies are ignored by every client alike.

The environment test runs real pushes (FCM over HTTPS: OAuth2 token + send; APNs over HTTP/2 TLS)
and a real provisioning fetch with ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE``
pointing at an unrelated CA and every proxy variable pointing at a closed port."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any, AsyncIterator

import certifi
import pytest

from mxproxy import outbound
from mxproxy.config import ConfigError
from mxproxy.provisioning import URLProvisioner
from mxproxy.push.apns import ApnsSender
from mxproxy.push.fcm import FcmSender
from mxproxy.store.base import DeviceToken
from tests.push.apns_server import LocalAPNs
from tests.push.certs import make_service_account
from tests.push.conftest import APP, BUNDLE, PROJECT, apns, pki, push_config, soon  # noqa: F401 - fixtures
from tests.push.fcm_server import LocalFCM
from tests.test_provisioning import GOOD_MX, ProvisioningPeer, peer, peer_server  # noqa: F401 - fixtures

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hostile_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a host's environment can hold: CA bundles that do not know our peers, a dead proxy."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.setenv(name, certifi.where())  # public CAs only: none of them signed our peers
    dead = f"http://127.0.0.1:{_closed_port()}"
    for name in PROXY_VARS:
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)


@pytest.fixture
async def fcm_tls(tmp_path: Path, pki: dict[str, Any]) -> AsyncIterator[LocalFCM]:  # noqa: F811
    server = LocalFCM(tls=(str(pki["server_cert"]), str(pki["server_key"])))
    server.reserve_port()
    key = make_service_account(tmp_path / "service-account.json", server.token_uri, PROJECT)
    server.public_keys[f"push@{PROJECT}.iam.gserviceaccount.com"] = key.public_key()
    await server.start()
    yield server
    await server.stop()


def test_a_configured_ca_adds_to_the_system_trust_store(tmp_path: Path, pki: dict[str, Any]) -> None:  # noqa: F811
    """APNs' and FCM's contexts trust the system CAs *and* ``caFile`` (a caFile used to replace them)."""
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    assert system > 0, "this machine has no system CA store to add to"
    config = push_config(tmp_path, push={"apns": {"caFile": str(pki["ca_file"])},
                                         "fcm": {"caFile": str(pki["ca_file"])}})
    contexts = {
        "apns": ApnsSender(config.voip, config.push, config.base_dir)._ssl_context(),
        "fcm": FcmSender(config.voip, config.push, config.base_dir)._tls,
        "outbound": outbound.ssl_context(pki["ca_file"]),
    }
    for name, context in contexts.items():
        assert context.cert_store_stats()["x509_ca"] == system + 1, name
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname, name


def test_an_unreadable_ca_file_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^push\.fcm\.caFile: cannot load .*missing\.pem"):
        outbound.ssl_context(tmp_path / "missing.pem", key="push.fcm.caFile")


async def test_fcm_token_and_send_use_the_configured_ca_whatever_the_environment_says(
    tmp_path: Path, pki: dict[str, Any], fcm_tls: LocalFCM, hostile_env: None,  # noqa: F811
) -> None:
    config = push_config(tmp_path, voip={"fcm": {APP: "service-account.json"}},
                         push={"fcm": {"sendURL": fcm_tls.send_url, "caFile": str(pki["ca_file"])}})
    sender = FcmSender(config.voip, config.push, config.base_dir)
    try:
        result = await sender.send(DeviceToken(kind="fcm", topic=APP, token="ok-env", login="alice"),
                                   {"type": "Delivered"}, "voip", deadline=soon())
    finally:
        await sender.aclose()
    assert (result.status, result.reason) == ("ok", ""), result.summary()
    assert fcm_tls.token_requests == 1 and [s.message["token"] for s in fcm_tls.sends] == ["ok-env"]


async def test_apns_uses_the_configured_ca_whatever_the_environment_says(
    tmp_path: Path, pki: dict[str, Any], apns: LocalAPNs, hostile_env: None,  # noqa: F811
) -> None:
    config = push_config(tmp_path, voip={"apn": {str(pki["p12"]): "secret"}},
                         push={"apns": {"production": apns.endpoint, "development": apns.endpoint,
                                        "caFile": str(pki["ca_file"])}})
    sender = ApnsSender(config.voip, config.push, config.base_dir)
    try:
        result = await sender.send(DeviceToken(kind="apn", topic=BUNDLE, token="a1" * 32, login="alice"),
                                   {"type": "Delivered"}, "voip", deadline=soon())
    finally:
        await sender.aclose()
    assert result.status == "ok", result.summary()


@pytest.mark.asyncio(loop_scope="module")  # the provisioning peer is a module-scoped server
async def test_provisioning_ignores_proxy_variables(peer: ProvisioningPeer, hostile_env: None) -> None:  # noqa: F811
    url = peer.serve_json("config", {"MX": GOOD_MX})
    provisioner = URLProvisioner(url)
    try:
        account = await provisioner.by_password("dmitrys@xyzrd.com", "pw")
    finally:
        await provisioner.aclose()
    assert account.login == GOOD_MX["account_name"]


def test_every_client_builder_ignores_the_environment() -> None:
    assert outbound.requests_session().trust_env is False
    assert outbound.httpx_client()._trust_env is False  # noqa: SLF001 - httpx has no public getter

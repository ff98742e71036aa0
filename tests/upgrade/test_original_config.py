"""The original's config file and Docker layout, taken as they are: the README's example config
(spec: mxproxy-2.3-readme) and MX Proxy 2.3's Docker defaults (spec §7.1)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from mxproxy.config import load_config
from mxproxy.upgrade.differences import original_differences
from mxproxy.server import ProxyServer, admin_listen, apply_overrides, parse_listen
from tests.api.readme_examples import README_CONFIG as README_EXAMPLE
from tests.upgrade.conftest import FIXTURES, fixture_db


def readme_folder(folder: Path) -> Path:
    """The README's config beside a .p12 of that name and password (``openssl pkcs12 -export
    -legacy``: RC2-40 certificate bag, 3DES key, SHA-1 MAC, as the original's era wrote them)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mxproxy.toml").write_text(README_EXAMPLE)
    shutil.copyfile(FIXTURES / "certificate.p12", folder / "certificate.p12")
    return folder / "mxproxy.toml"


def test_the_readme_example_config_loads_with_the_original_meanings(tmp_path: Path) -> None:
    config = load_config(readme_folder(tmp_path))
    assert dict(config.apps) == {"client1": "client-secret"}
    assert config.voip.apn_ttl == 230.0
    assert dict(config.voip.apn) == {"certificate.p12": "password"}
    assert dict(config.voip.fcm) == {"app": "AAAA0bHpCVQ:APA9...p7Yge"}
    assert config.provisioning == "https://config.connector73.net/config"
    assert (config.jwt.token_ttl, config.jwt.sign_key_ttl) == (3600.0, 6 * 3600.0)


async def test_serve_starts_on_the_readme_config_and_warns_once_per_key_treated_differently(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config_path = readme_folder(tmp_path / "config")
    caplog.set_level(logging.INFO)
    config = apply_overrides(load_config(config_path), "127.0.0.1:0", "127.0.0.1:0", str(tmp_path / "mxproxy.db"))
    server = ProxyServer(config)
    await server.start()
    try:
        assert server.push.topics.apn_ok("com.example.phone", False)  # the legacy .p12 loaded
        assert server.push.topics.fcm_ok("app")  # the legacy key's app still takes registrations
        assert server.push.ready_warnings()
    finally:
        await server.stop()
    differences = [r.getMessage() for r in caplog.records if "compat.md" in r.getMessage()]
    assert len(differences) == 1 and 'voip.fcm."app"' in differences[0] and "compat.md P1" in differences[0]
    assert "AAAA0bHpCVQ" not in caplog.text
    assert not [r for r in caplog.records if "unknown key" in r.getMessage()]


async def test_the_originals_docker_layout_and_defaults(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Docker: /config/mxproxy.toml, /db/mxproxy.db (a bbolt file), PORT=8080, ADMIN=8049."""
    config_path = readme_folder(tmp_path / "config")
    (tmp_path / "db").mkdir()
    shutil.copyfile(fixture_db("one-user"), tmp_path / "db" / "mxproxy.db")
    docker = apply_overrides(load_config(config_path), "8080", "8049", str(tmp_path / "db" / "mxproxy.db"))
    assert parse_listen(docker.server.port, 8000) == parse_listen(":8080", 8000)  # all interfaces, as before
    assert admin_listen(docker.server.admin, None).host == "127.0.0.1"  # never open without a token (M1)
    assert [n for n in original_differences(docker) if "compat.md M1" in n and "127.0.0.1:8049" in n]
    caplog.set_level(logging.INFO)
    quick = apply_overrides(docker, "127.0.0.1:0", None, None)  # the admin on 127.0.0.1:8049, as ADMIN=8049 asks
    quick = replace(quick, server=replace(quick.server, admin="0"))  # …but a free port: other tests run too
    server = ProxyServer(quick)
    await server.start()
    try:
        assert server.db == str(tmp_path / "db" / "mxproxy.sqlite")
        assert [u.login for u in await server.store.list_users()] == ["dmitrys"]
        assert server.admin_listen.host == "127.0.0.1"
    finally:
        await server.stop()
    warned = [r.getMessage() for r in caplog.records if "compat.md M1" in r.getMessage()]
    assert len(warned) == 1 and "127.0.0.1:0 only" in warned[0]

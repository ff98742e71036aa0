"""bbolt files written by the real bbolt library (tests/upgrade/fixtures/makefixtures.go) and an
MX Proxy 2.3 folder built from them; the store fixtures of tests/store (SQLite and PostgreSQL)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.push.certs import make_ca, make_push_p12
from tests.store.conftest import backend, postgres_backend, sqlite_backend, store  # noqa: F401 - fixtures

FIXTURES = Path(__file__).parent / "fixtures"
BUNDLE = "com.example.phone"  # the APNs topic and FCM app id the fixtures use


def fixture_db(name: str) -> Path:
    return FIXTURES / f"{name}.db"


def original_config(folder: Path, *, p12: bool = True, fcm_value: str = "AAAA-legacy-server-key", extra: str = "") -> Path:
    """An MX Proxy 2.3 config: [apps], a .p12 for the fixtures' topic, a legacy FCM server key."""
    lines = ["[apps]", 'client7664 = "secret"', "[voip]", 'apnTTL = "10m"']
    if p12:
        make_push_p12(make_ca(), folder / "phone.p12", BUNDLE, password="p12-secret")
        lines += ["[voip.apn]", '"phone.p12" = "p12-secret"']
    if fcm_value:
        lines += ["[voip.fcm]", f'"{BUNDLE}" = "{fcm_value}"']
    path = folder / "mxproxy.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture
def original_folder(tmp_path: Path) -> Any:
    """factory: an MX Proxy 2.3 folder holding ``mxproxy.toml`` and a copy of fixture ``name``."""

    def make(name: str = "one-user", **config: Any) -> Path:
        folder = tmp_path / "mxproxy"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(fixture_db(name), folder / "mxproxy.db")
        original_config(folder, **config)
        return folder

    return make

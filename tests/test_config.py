"""Config loading: the original's keys keep their meaning; a bad value names its key."""

from pathlib import Path

import pytest

from mxproxy.config import DEFAULT_PROVISIONING, ConfigError, load_config, parse_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mxproxy.toml"
    path.write_text(text)
    return path


def test_readme_example_config_loads_with_original_meaning(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """
[apps]
client1 = "client-secret"
[voip]
apnTTL = "3m50s"
[voip.apn]
"certificate.p12" = "password"
[voip.fcm]
"app" = "AAAA0bHpCVQ:APA9...p7Yge"
""",
        )
    )
    assert cfg.provisioning == DEFAULT_PROVISIONING
    assert cfg.apps == {"client1": "client-secret"}
    assert cfg.voip.apn_ttl == 230
    assert cfg.voip.apn == {"certificate.p12": "password"}
    assert cfg.jwt.token_ttl == 3600 and cfg.jwt.sign_key_ttl == 6 * 3600
    assert cfg.resolve_path("certificate.p12") == tmp_path / "certificate.p12"
    assert cfg.mx.response_timeout == 7 and cfg.mx.call_log_chunk == 21
    assert cfg.server.admin == "127.0.0.1:8043"


def test_missing_apps_fails_like_the_original() -> None:
    with pytest.raises(ConfigError, match="oauth2 apps not configured"):
        parse_config({})


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"jwt": {"tokenTTL": "1 hour"}}, "jwt.tokenTTL"),
        ({"jwt": {"signKeyTTL": 60}}, "jwt.signKeyTTL"),
        ({"voip": {"apnTTL": "-1m"}}, "voip.apnTTL"),
        ({"mx": {"callLogChunk": 0}}, "mx.callLogChunk"),
        ({"mx": {"tlsVerify": "yes"}}, "mx.tlsVerify"),
        ({"mx": {"certFingerprint": "abc"}}, "mx.certFingerprint"),
        ({"mx": {"keepalive": "5m", "readDeadline": "1m"}}, "mx.readDeadline"),
        ({"logName": 5}, "logName"),
        ({"voip": {"apn": {"a.p12": 1}}}, 'voip.apn."a.p12"'),
    ],
)
def test_bad_value_names_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"apps": {"c": "s"}, **data})
    assert str(info.value).startswith(key)


def test_secrets_can_come_from_env_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_SECRET", "from-env")
    secret_file = tmp_path / "key"
    secret_file.write_text("from-file\n")
    cfg = parse_config({"apps": {"c": "env:APP_SECRET"}, "server": {"storeKey": f"file:{secret_file}"}})
    assert cfg.apps["c"] == "from-env"
    assert cfg.server.store_key == "from-file"


def test_missing_env_secret_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    with pytest.raises(ConfigError, match=r'apps."c": environment variable NOPE_SECRET is not set'):
        parse_config({"apps": {"c": "env:NOPE_SECRET"}})


def test_missing_file_and_bad_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, "[apps\n"))


def test_fingerprint_is_normalised() -> None:
    fp = ":".join(["AB"] * 32)
    cfg = parse_config({"apps": {"c": "s"}, "mx": {"certFingerprint": fp}})
    assert cfg.mx.cert_fingerprint == "ab" * 32

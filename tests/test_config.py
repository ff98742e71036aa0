"""Config loading: the original's keys keep their meaning; a bad value names its key."""

from pathlib import Path

import pytest

from mxproxy.config import DEFAULT_PROVISIONING, ConfigError, load_config, parse_config
from tests.api.readme_examples import README_CONFIG


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mxproxy.toml"
    path.write_text(text)
    return path


def test_readme_example_config_loads_with_original_meaning(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, README_CONFIG))
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
        ({"signin": {"perUser": "lots"}}, "signin.perUser"),
        ({"signin": {"perClient": "10 per fortnight"}}, "signin.perClient"),
        ({"signin": {"failureCost": 0}}, "signin.failureCost"),
        ({"signin": {"storage": "memcached://x"}}, "signin.storage"),
        ({"signin": {"enabled": "no"}}, "signin.enabled"),
        ({"server": {"trustedProxies": ["*"]}}, "server.trustedProxies"),
        ({"server": {"trustedProxies": ["10.0.0.0/33"]}}, "server.trustedProxies"),
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


def test_signin_limits_and_trusted_proxies_are_read_and_normalised() -> None:
    cfg = parse_config({"apps": {"c": "s"}, "signin": {"perUser": "5/minute;20/hour", "storage": "redis://r:6379/1"},
                        "server": {"trustedProxies": ["10.1.2.3/8", "::1", "192.0.2.1"]}})
    assert (cfg.signin.per_user, cfg.signin.storage, cfg.signin.failure_cost) == ("5/minute;20/hour",
                                                                                  "redis://r:6379/1", 5)
    assert cfg.server.trusted_proxies == ("10.0.0.0/8", "::1", "192.0.2.1")
    assert parse_config({"apps": {"c": "s"}}).signin.enabled  # on by default


def test_fingerprint_is_normalised() -> None:
    fp = ":".join(["AB"] * 32)
    cfg = parse_config({"apps": {"c": "s"}, "mx": {"certFingerprint": fp}})
    assert cfg.mx.cert_fingerprint == "ab" * 32


# -- unknown tables and keys -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sever": {"db": "x.db"}}, "sever: unknown table (did you mean server?)"),
        ({"jwt": {"tokenTTl": "1h"}}, "jwt.tokenTTl: unknown key (did you mean tokenTTL?)"),
        ({"mx": {"tlsVerfy": True}}, "mx.tlsVerfy: unknown key (did you mean tlsVerify?)"),
        ({"mx": {"conectTimeout": "5s"}}, "mx.conectTimeout: unknown key (did you mean connectTimeout?)"),
        ({"mx": {"adressBookEvents": False}}, "mx.adressBookEvents: unknown key (did you mean addressBookEvents?)"),
        ({"server": {"storekey": "k"}}, "server.storekey: unknown key (did you mean storeKey?)"),
        ({"push": {"apns": {"pingIntervl": "1s"}}}, "push.apns.pingIntervl: unknown key (did you mean pingInterval?)"),
        ({"voip": {"apnTtl": "1m"}}, "voip.apnTtl: unknown key (did you mean apnTTL?)"),
        ({"logname": "x.log"}, "logname: unknown key (did you mean logName?)"),
        ({"azure": {"zzz": 1}}, "azure.zzz: unknown key (known: "),
        ({"static": {"hots": "mx:7778"}}, "static.hots: unknown key (did you mean host?)"),
    ],
)
def test_unknown_key_or_table_is_an_error_with_a_suggestion(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        config = parse_config({"apps": {"c": "s"}, **data})
        from mxproxy.provisioning import create_provisioner

        create_provisioner(config)  # [static] is checked by the provisioner it configures
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_allow_unknown_keys_only_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="mxproxy.config"):
        cfg = parse_config({"apps": {"c": "s"}, "server": {"allowUnknownKeys": True},
                            "jwt": {"tokenTTl": "5m"}, "future": {"x": 1}})
    assert cfg.jwt.token_ttl == 3600
    assert "jwt.tokenTTl: unknown key (did you mean tokenTTL?)" in caplog.text
    assert "future: unknown table" in caplog.text


def test_connector_options_are_typed_by_the_connectors_declaration() -> None:
    from mxproxy.connectors.registry import declared_options

    assert declared_options("zultys")["addressBookEvents"].kind == "boolean"
    assert parse_config({"apps": {"c": "s"}}).mx.options == {"addressBookEvents": True, "traceDir": None,
                                                            "tlsResumption": True}
    assert parse_config({"apps": {"c": "s"}, "mx": {"tlsResumption": False}}).mx.options["tlsResumption"] is False
    with pytest.raises(ConfigError, match="mx.tlsResumption"):
        parse_config({"apps": {"c": "s"}, "mx": {"tlsResumption": "maybe"}})
    assert parse_config({"apps": {"c": "s"}, "mx": {"addressBookEvents": False}}).mx.options["addressBookEvents"] is False
    with pytest.raises(ConfigError, match="mx.connector: unknown connector 'zultis' .did you mean 'zultys'"):
        parse_config({"apps": {"c": "s"}, "mx": {"connector": "zultis"}})


# -- paths ---------------------------------------------------------------------------------------


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mxproxy.simulator.tls import self_signed

    folder = tmp_path / "etc"
    folder.mkdir()
    for name in ("mx-ca.pem", "apns-ca.pem", "fcm-ca.pem"):
        (folder / name).write_bytes(self_signed().cert_pem)
    (folder / "secret").write_text("s3cret\n")
    path = write(folder, """
[apps]
c = "file:secret"
[mx]
caFile = "mx-ca.pem"
[push.apns]
caFile = "apns-ca.pem"
[push.fcm]
caFile = "fcm-ca.pem"
[voip.apnToken]
keyFile = "AuthKey.p8"
keyId = "K"
teamId = "T"
topics = ["com.example"]
""")
    monkeypatch.chdir(tmp_path)  # not the config's folder
    cfg = load_config(path)
    assert cfg.mx.ca_file == str(folder / "mx-ca.pem")
    assert cfg.push.apns.ca_file == str(folder / "apns-ca.pem")
    assert cfg.push.fcm.ca_file == str(folder / "fcm-ca.pem")
    assert cfg.voip.apn_token is not None and cfg.voip.apn_token.key_file == str(folder / "AuthKey.p8")
    assert cfg.apps["c"] == "s3cret"
    assert cfg.resolve_path("mxproxy.log") == folder / "mxproxy.log"


@pytest.mark.parametrize("table", [("mx",), ("push", "apns"), ("push", "fcm")])
@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_unreadable_ca_file_stops_start_up_naming_the_key(tmp_path: Path, table: tuple[str, ...],
                                                          content: bytes | None) -> None:
    if content is not None:
        (tmp_path / "ca.pem").write_bytes(content)
    data: dict = {"caFile": "ca.pem"}
    for name in reversed(table):
        data = {name: data}
    with pytest.raises(ConfigError) as info:
        parse_config({"apps": {"c": "s"}, **data}, base_dir=tmp_path)
    assert str(info.value).startswith(".".join(table) + ".caFile: ")
    assert str(tmp_path / "ca.pem") in str(info.value)


# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["callLogTTL", "directoryTTL"])
def test_zero_cache_ttl_means_no_cache(key: str) -> None:
    from mxproxy.sessions import SessionOptions

    cfg = parse_config({"apps": {"c": "s"}, "mx": {key: "0s"}})
    options = SessionOptions.from_config(cfg)
    assert {"callLogTTL": options.call_log_ttl, "directoryTTL": options.directory_ttl}[key] == 0
    with pytest.raises(ConfigError, match=f"mx.{key}: must not be negative"):
        parse_config({"apps": {"c": "s"}, "mx": {key: "-1s"}})


def test_cluster_table_is_typed_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADVERTISE", raising=False)
    monkeypatch.delenv("INSTANCE_ID", raising=False)
    assert parse_config({"apps": {"c": "s"}}).cluster.lease_ttl == 15.0
    cfg = parse_config({"apps": {"c": "s"}, "cluster": {
        "advertise": "http://10.0.0.5:8000/", "leaseTTL": "5s", "instanceId": "mx-a"}})
    assert (cfg.cluster.advertise, cfg.cluster.lease_ttl, cfg.cluster.instance_id) == ("http://10.0.0.5:8000", 5.0, "mx-a")
    monkeypatch.setenv("ADVERTISE", "https://proxy-b.internal:8443")
    assert parse_config({"apps": {"c": "s"}}).cluster.advertise == "https://proxy-b.internal:8443"
    assert parse_config({"apps": {"c": "s"}, "cluster": {"advertise": "http://10.0.0.5:8000"}}).cluster.advertise \
        == "https://proxy-b.internal:8443"
    monkeypatch.setenv("INSTANCE_ID", "host-02")  # one config file, one id per systemd instance
    assert parse_config({"apps": {"c": "s"}, "cluster": {"instanceId": "mx-a"}}).cluster.instance_id == "host-02"
    monkeypatch.setenv("INSTANCE_ID", "a b")
    with pytest.raises(ConfigError, match=r"cluster\.instanceId"):
        parse_config({"apps": {"c": "s"}})


@pytest.mark.parametrize(
    ("cluster", "key"),
    [
        ({"advertise": "10.0.0.5:8000"}, "cluster.advertise"),
        ({"advertise": "http://10.0.0.5:8000/api"}, "cluster.advertise"),
        ({"leaseTTL": "500ms"}, "cluster.leaseTTL"),
        ({"leaseTTL": 15}, "cluster.leaseTTL"),
        ({"instanceId": "a b"}, "cluster.instanceId"),
    ],
)
def test_bad_cluster_values_name_the_key(monkeypatch: pytest.MonkeyPatch, cluster: dict, key: str) -> None:
    monkeypatch.delenv("ADVERTISE", raising=False)
    monkeypatch.delenv("INSTANCE_ID", raising=False)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({"apps": {"c": "s"}, "cluster": cluster})


def test_webhooks_are_off_by_default_and_typed() -> None:
    default = parse_config({"apps": {"c": "s"}}).webhooks
    assert not default.enabled and default.allow_networks == () and default.retry_for == 24 * 3600.0
    cfg = parse_config({"apps": {"c": "s"}, "webhooks": {
        "enabled": True, "allowNetworks": ["127.0.0.0/8", "::1"], "retryFor": "1h", "retryMin": "100ms",
        "retryMax": "1s", "timeout": "2s", "claimTTL": "5s", "disableAfter": 3}}).webhooks
    assert (cfg.enabled, cfg.allow_networks, cfg.retry_for, cfg.retry_min, cfg.retry_max, cfg.disable_after) == (
        True, ("127.0.0.0/8", "::1"), 3600.0, 0.1, 1.0, 3)


@pytest.mark.parametrize(
    ("webhooks", "key"),
    [
        ({"enabled": "yes"}, "webhooks.enabled"),
        ({"allowNetworks": ["localhost"]}, "webhooks.allowNetworks"),
        ({"retryFor": "forever"}, "webhooks.retryFor"),
        ({"retryMin": "10s", "retryMax": "1s"}, "webhooks.retryMax"),
        ({"timeout": "30s", "claimTTL": "10s"}, "webhooks.claimTTL"),
        ({"disableAfter": -1}, "webhooks.disableAfter"),
        ({"concurrency": 0}, "webhooks.concurrency"),
        ({"caFile": "/nonexistent/ca.pem"}, "webhooks.caFile"),
        ({"retryfor": "1h"}, "webhooks.retryfor"),
    ],
)
def test_bad_webhooks_values_name_the_key(webhooks: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({"apps": {"c": "s"}, "webhooks": webhooks})

"""``mxproxy serve``: listen-address parsing, admin bind policy, log redaction, and the real
process lifecycle (start as a subprocess, sign a user in, SIGTERM, MX logout recorded)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sys
from pathlib import Path

import httpx
import pytest

from mxproxy.server import (
    Listen,
    ListenError,
    RedactingFilter,
    admin_listen,
    apply_overrides,
    parse_listen,
    redact,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8000", Listen("0.0.0.0", 8000)),
        (8080, Listen("0.0.0.0", 8080)),
        (":8001", Listen("0.0.0.0", 8001)),
        ("127.0.0.1:9000", Listen("127.0.0.1", 9000)),
        ("localhost", Listen("localhost", 8000)),
        ("example.org", Listen("example.org", 8000)),
        ("[::1]:8443", Listen("::1", 8443)),
        ("[::1]", Listen("::1", 8000)),
        ("::", Listen("::", 8000)),
        ("127.0.0.1:0", Listen("127.0.0.1", 0)),
        ("", Listen("0.0.0.0", 8000)),
        (None, Listen("0.0.0.0", 8000)),
    ],
)
def test_parse_listen_accepts_the_original_port_forms(value: object, expected: Listen) -> None:
    assert parse_listen(value, 8000) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["host:port", "1.2.3.4:70000", "[::1", "[::1]x", "a b:80", "host:-1"])
def test_parse_listen_rejects_malformed_values_naming_the_key(value: str) -> None:
    with pytest.raises(ListenError, match="^port: "):
        parse_listen(value, 8000, key="port")


def test_admin_bare_port_binds_loopback_and_defaults_to_8043() -> None:
    assert admin_listen("9043", None) == Listen("127.0.0.1", 9043)
    assert admin_listen("127.0.0.1", None) == Listen("127.0.0.1", 8043)
    assert admin_listen("localhost:1", None) == Listen("localhost", 1)
    assert admin_listen("[::1]:8043", None) == Listen("::1", 8043)


@pytest.mark.parametrize("value", ["", "off", "OFF", "none"])
def test_admin_can_be_disabled(value: str) -> None:
    assert admin_listen(value, None) is None


@pytest.mark.parametrize("value", [":8043", "0.0.0.0:8043", "10.1.2.3", "admin.example.org:8043"])
def test_admin_refuses_a_non_loopback_bind_without_a_token(value: str) -> None:
    with pytest.raises(ListenError, match="adminToken"):
        admin_listen(value, None)
    assert admin_listen(value, "s3cret").port == 8043


def test_cli_and_env_values_override_the_server_table() -> None:
    from mxproxy.config import parse_config

    config = parse_config({"apps": {"c": "s"}, "server": {"port": "9000", "admin": "off", "db": "a.db"}})
    same = apply_overrides(config, None, None, None)
    assert (same.server.port, same.server.admin, same.server.db) == ("9000", "off", "a.db")
    changed = apply_overrides(config, "127.0.0.1:1", "127.0.0.1:2", "b.db")
    assert (changed.server.port, changed.server.admin, changed.server.db) == ("127.0.0.1:1", "127.0.0.1:2", str(Path.cwd() / "b.db"))
    assert apply_overrides(config, None, "", None).server.admin == ""  # ADMIN="" disables the admin API


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("POST /auth body username=dmitrys%40xyzrd.com&password=78561&grant_type=password", "78561"),
        ('<loginRequest><userName>dmitrys</userName><pwd>p@ss w0rd</pwd></loginRequest>', "p@ss w0rd"),
        ('provisioning JSON {"account_pwd": "hunter2", "password": "hunter3"}', "hunter3"),
        ("Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "c2lnbmF0dXJl"),
        ("Authorization: Basic Y2xpZW50NzY2NDpNbXgwT2xXRURJRGhQR2dHcExRRnhCd3BDU1BwOUlJWQ==", "Y2xpZW50"),
        ("token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl leaked", "eyJzdWIiOiJ4In0"),
        ("softPhonePwd=EqNe45DYvZH2va1gesL7AA1ldtP04j4a", "EqNe45DYvZH2va1gesL7AA1ldtP04j4a"),
    ],
)
def test_redact_blanks_secrets(line: str, secret: str) -> None:
    out = redact(line)
    assert secret not in out
    assert "***" in out


def test_redact_keeps_ordinary_lines() -> None:
    line = "user dmitrys@xyzrd.com signed in from 10.0.0.1:7778 (ext 3044)"
    assert redact(line) == line


def test_redacting_filter_rewrites_formatted_records_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "login %s with password=%s", ("bob", "pw1"), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "login bob with password=***"
    try:
        raise ValueError("<pwd>topsecret</pwd>")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    RedactingFilter().filter(record)
    assert "topsecret" not in (record.exc_text or "")
    assert "<pwd>***</pwd>" in (record.exc_text or "")


# -- config.toml.example ----------------------------------------------------------------------


EXAMPLE = Path(__file__).resolve().parent.parent / "config.toml.example"
_OPTIONAL_LINE = re.compile(r"^#(?=\[|\"|[A-Za-z])")


def _example_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in set(re.findall(r"env:([A-Z0-9_]+)", EXAMPLE.read_text())):
        monkeypatch.setenv(name, f"value-of-{name.lower()}")


def _parse_example(text: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from mxproxy.config import load_config

    _example_env(monkeypatch)
    path = tmp_path / "mxproxy.toml"
    path.write_text(text)
    return load_config(path)


def test_config_example_parses_as_shipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mxproxy.config"):
        config = _parse_example(EXAMPLE.read_text(), monkeypatch, tmp_path)
    assert config.apps == {"client7664": "Mmx0OlWEDIDhPGgGpLQFxBwpCSPp9IIY"}
    assert config.voip.apn_ttl == 600 and config.jwt.token_ttl == 3600 and config.jwt.sign_key_ttl == 6 * 3600
    assert config.server.admin == "127.0.0.1:8043" and config.mx.connector == "zultys"
    assert not config.static and not config.azure.enabled
    assert "unknown key" not in caplog.text


def test_config_example_parses_with_every_optional_key_enabled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Uncommenting the optional settings must give a valid file: every documented key is real."""
    from mxproxy.provisioning import create_provisioner, parse_static

    from mxproxy.simulator.tls import self_signed

    lines = [_OPTIONAL_LINE.sub("", line) for line in EXAMPLE.read_text().splitlines()]
    ca_files = set(re.findall(r'caFile = "([^"]+)"', EXAMPLE.read_text()))
    for name in ca_files:  # a CA file the config names must be readable at start
        (tmp_path / name).write_bytes(self_signed().cert_pem)
    with caplog.at_level(logging.WARNING, logger="mxproxy.config"):
        config = _parse_example("\n".join(lines) + "\n", monkeypatch, tmp_path)
    assert "unknown key" not in caplog.text
    assert config.apps["ios-app"] == "value-of-mxproxy_ios_secret"
    assert config.server.store_key == "value-of-mxproxy_store_key"
    assert config.server.admin_token == "value-of-mxproxy_admin_token"
    assert config.azure.enabled and config.jwt.issuer == "https://mxproxy.example.org"
    assert config.mx.cert_fingerprint is not None and config.mx.ca_file == str(tmp_path / "mx-ca.pem")
    assert config.push.apns.ca_file == str(tmp_path / "apns-ca.pem")
    assert config.voip.apn["certificate.p12"] == "password"
    static = parse_static(config.static)
    user = static.users["dmitrys@xyzrd.com"]
    assert (user.mx_login, user.host, user.port) == ("dmitrys", "10.0.0.1", 7778)
    assert user.check_password("change-me")
    assert type(create_provisioner(config)).__name__ == "StaticProvisioner"
    from mxproxy.sessions import SessionOptions

    options = SessionOptions.from_config(config)
    assert (options.reconnect_min, options.reconnect_max, options.call_ttl) == (1.0, 60.0, 7200.0)
    assert config.push.events == {"MailIncoming": "alert", "Held": "none"}
    assert config.voip.apn_token is not None and config.voip.apn_token.topics == ("com.connector73.vialer",)


# -- the real process ---------------------------------------------------------------------------



CLIENT = ("client7664", "Mmx0OlWEDIDhPGgGpLQFxBwpCSPp9IIY")
APP_PASSWORD = "app-secret-78561"
MX_PASSWORD = "mx-secret-4242"
READY = "mxproxy ready: public API "


def _server_config(tmp_path: Path, mx_port: int, *, admin: str = "127.0.0.1:0", extra: str = "") -> Path:
    path = tmp_path / "mxproxy.toml"
    path.write_text(
        f"""
logName = "mxproxy.log"
[apps]
{CLIENT[0]} = "{CLIENT[1]}"
[server]
port = "127.0.0.1:0"
admin = "{admin}"
db = "store.db"
[mx]
connectTimeout = "5s"
responseTimeout = "5s"
reconnectMin = "100ms"
reconnectMax = "1s"
[static]
host = "127.0.0.1:{mx_port}"
[static.users."alice@example.org"]
password = "{APP_PASSWORD}"
mxLogin = "alice"
mxPassword = "{MX_PASSWORD}"
{extra}
"""
    )
    return path


class ServeProcess:
    """``python -m mxproxy serve`` as a child process, its stderr in a file we can poll."""

    def __init__(self, config: Path, *args: str) -> None:
        self.config = config
        self.args = args
        self.stderr_path = config.parent / f"stderr-{os.urandom(3).hex()}.log"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("PORT", "ADMIN", "DB", "MXPROXY_CONFIG", "MXPROXY_STORE_KEY")}
        env["PYTHONUNBUFFERED"] = "1"
        with self.stderr_path.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mxproxy", "serve", "--config", str(self.config), *self.args,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=err, env=env,
                cwd=str(Path(__file__).resolve().parent.parent),
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def ready_url(self, timeout: float = 60.0) -> str:
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for line in self.stderr.splitlines():
                if READY in line:
                    return line.split(READY, 1)[1].split()[0].rstrip(",;")
            if self.proc.returncode is not None:
                raise AssertionError(f"mxproxy exited with {self.proc.returncode}:\n{self.stderr}")
            await asyncio.sleep(0.05)
        raise AssertionError(f"mxproxy did not become ready:\n{self.stderr}")

    async def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"mxproxy did not exit:\n{self.stderr}") from None

    async def run_to_exit(self, timeout: float = 60.0) -> int:
        """Start, wait for the process to end by itself, and return its exit code."""
        await self.start()
        try:
            return await self.wait(timeout)
        finally:
            await self.kill()

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def _sign_in(client: httpx.AsyncClient, url: str) -> str:
    response = await client.post(
        f"{url}/auth", auth=CLIENT,
        data={"username": "alice@example.org", "password": APP_PASSWORD, "grant_type": "password"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    return body["access_token"]


def _sessions_of(sim, login: str) -> list:  # type: ignore[no-untyped-def]
    """Live sessions of ``login`` (the simulator also lists closed ones)."""
    return [s for s in sim.sessions() if s.login == login and s.active]


def _commands_of(sim, session_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Commands one session received, read afresh (SessionInfo is a snapshot)."""
    return next(s.commands for s in sim.sessions() if s.id == session_id)


async def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


@pytest.fixture
async def mx():  # type: ignore[no-untyped-def]
    from mxproxy.simulator import Fixture, Simulator, SimUser

    fixture = Fixture(users=[SimUser(login="alice", password=MX_PASSWORD, ext="201", jid=1001, first_name="Alice")])
    sim = Simulator(fixture, host="127.0.0.1", port=0, control=None)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def test_sigterm_logs_every_mx_session_out_and_exits_zero_then_restart_resumes(
    mx, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    config = _server_config(tmp_path, mx.port)
    first = ServeProcess(config)
    await first.start()
    try:
        url = await first.ready_url()
        async with httpx.AsyncClient(timeout=30) as client:
            token = await _sign_in(client, url)
            me = await client.get(f"{url}/auth", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["ext"] == "201"
            assert me.headers["server"].startswith("MXProxy/")
        (info,) = _sessions_of(mx, "alice")
        assert "logout" not in info.commands
        first.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert await first.wait() == 0, first.stderr
    finally:
        await first.kill()
    await _wait_for(lambda: _sessions_of(mx, "alice") == [])
    assert "logout" in _commands_of(mx, info.id)
    assert "mxproxy stopped" in first.stderr
    # the C event loop and HTTP parser are dependencies, so a started process runs on them
    assert "running on event loop uvloop " in first.stderr and ", HTTP parser httptools " in first.stderr

    # the log file served at /debug/log was written, and no secret reached it or stderr
    log_text = (tmp_path / "mxproxy.log").read_text()
    assert READY in log_text
    for secret in (APP_PASSWORD, MX_PASSWORD, token, CLIENT[1]):
        assert secret not in log_text and secret not in first.stderr

    # the user stayed in the store: the next start resumes the MX session without a sign-in;
    # SIGINT (Ctrl-C) shuts down the same way
    second = ServeProcess(config)
    await second.start()
    try:
        await second.ready_url()
        await _wait_for(lambda: len(_sessions_of(mx, "alice")) == 1)
        (resumed,) = _sessions_of(mx, "alice")
        assert resumed.id != info.id and "logout" not in resumed.commands
        second.proc.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        assert await second.wait() == 0, second.stderr
    finally:
        await second.kill()
    await _wait_for(lambda: _sessions_of(mx, "alice") == [])
    assert "logout" in _commands_of(mx, resumed.id)


async def test_flags_override_the_config_and_a_busy_port_fails_with_exit_1(tmp_path: Path) -> None:
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = busy.getsockname()[1]
        # the port is checked before the store is opened or any MX is contacted (mx port 9 is unused)
        proc = ServeProcess(_server_config(tmp_path, 9), "--port", f"127.0.0.1:{port}", "--admin", "off")
        assert await proc.run_to_exit() == 1
        assert f"127.0.0.1:{port}" in proc.stderr
        assert not (tmp_path / "store.db").exists()
    finally:
        busy.close()


@pytest.mark.parametrize(
    ("admin", "extra", "message"),
    [
        ("0.0.0.0:0", "", "adminToken"),
        ("127.0.0.1:0", '[jwt]\ntokenTTL = "soon"', "jwt.tokenTTL"),
        ("127.0.0.1:0", "[static.users.bob]\npassword = 'x'", "mxPassword"),
    ],
)
async def test_config_errors_exit_2_naming_the_key(tmp_path: Path, admin: str, extra: str, message: str) -> None:
    proc = ServeProcess(_server_config(tmp_path, 9, admin=admin, extra=extra))
    assert await proc.run_to_exit() == 2
    assert message in proc.stderr


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ('[sever]\ndb = "other.db"', "sever: unknown table (did you mean server?)"),
        ('[jwt]\ntokenTTl = "5m"', "jwt.tokenTTl: unknown key (did you mean tokenTTL?)"),
        ('[push.apns]\ncaFile = "missing-ca.pem"', "push.apns.caFile: cannot read "),
    ],
)
async def test_config_mistakes_exit_2_with_one_line(tmp_path: Path, extra: str, line: str) -> None:
    proc = ServeProcess(_server_config(tmp_path, 9, extra=extra))
    assert await proc.run_to_exit() == 2
    [printed] = proc.stderr.strip().splitlines()
    assert printed.startswith(f"mxproxy: config error: {line}")
    assert not (tmp_path / "store.db").exists()


async def test_postgresql_without_a_store_key_exits_2(tmp_path: Path) -> None:
    proc = ServeProcess(_server_config(tmp_path, 9), "--db", "postgresql://mxproxy@127.0.0.1:5432/test")
    assert await proc.run_to_exit() == 2
    [printed] = proc.stderr.strip().splitlines()
    assert printed.startswith("mxproxy: config error: server.storeKey: required with a PostgreSQL store")


async def _store_with_another_key(tmp_path: Path) -> str:
    from mxproxy.store import create_store

    store = create_store(str(tmp_path / "store.db"), "the-key-it-was-made-with")
    await store.open()
    await store.close()
    return "store.db"


async def _text_file(tmp_path: Path) -> str:
    (tmp_path / "notes.db").write_text("these are notes, not an SQLite database\n" * 10)
    return "notes.db"


async def _unreachable_postgres(tmp_path: Path) -> str:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    port = busy.getsockname()[1]
    busy.close()
    return f"postgresql://mxproxy:hunter2@127.0.0.1:{port}/test"


async def _unwritable_folder(tmp_path: Path) -> str:
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    return str(folder / "store.db")


@pytest.mark.parametrize(
    ("db", "message"),
    [
        (_store_with_another_key, "the store key does not match"),
        (_text_file, "not an SQLite database"),
        (_unreachable_postgres, "cannot connect to PostgreSQL at postgresql://mxproxy:***@127.0.0.1:"),
        (_unwritable_folder, "ermission denied"),
    ],
)
async def test_expected_start_up_failures_are_one_line_without_a_traceback(
    tmp_path: Path, db: Any, message: str
) -> None:
    target = await db(tmp_path)
    config = _server_config(tmp_path, 9, extra="").read_text().replace('db = "store.db"', f'db = "{target}"')
    config = config.replace("[server]\n", '[server]\nstoreKey = "the-configured-key"\n')
    path = tmp_path / "mxproxy.toml"
    path.write_text(config)
    proc = ServeProcess(path)
    assert await proc.run_to_exit() == 1
    [printed] = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert "ERROR mxproxy.server: startup failed: " in printed and message in printed
    assert "Traceback" not in proc.stderr and "hunter2" not in proc.stderr


async def test_accepted_connections_have_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on sockets created with proto=IPPROTO_TCP; without it every
    response written as head + body waited ~40 ms for a delayed ACK (368 → 9 000 req/s)."""
    import socket

    from mxproxy.server import bind_socket

    sock = bind_socket(Listen("127.0.0.1", 0))
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = writer.get_extra_info("socket")
        accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        assert await asyncio.wait_for(accepted, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_started_server_freezes_its_start_up_heap_and_releases_it_when_stopped(
    tmp_path: Path, start_simulator: Any
) -> None:
    import gc

    from tests.admin.test_serve import start

    server, _ = await start(tmp_path, start_simulator)
    try:
        assert gc.get_freeze_count() > 0  # full collections no longer walk the resumed sessions
    finally:
        await server.stop()
    assert gc.get_freeze_count() == 0


async def test_a_second_process_on_the_same_sqlite_store_refuses_to_start(tmp_path: Path) -> None:
    first = ServeProcess(_server_config(tmp_path, 9))
    await first.start()
    try:
        await first.ready_url()
        second = ServeProcess(_server_config(tmp_path, 9))
        await second.start()
        try:
            assert await second.wait() == 1
        finally:
            await second.kill()
        assert "is in use by another mxproxy process" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        await first.kill()


async def test_a_postgresql_store_on_a_wildcard_bind_needs_an_advertised_url(tmp_path: Path) -> None:
    config = _server_config(tmp_path, 9).read_text().replace('port = "127.0.0.1:0"', 'port = "0.0.0.0:0"')
    config = config.replace('db = "store.db"', 'db = "postgresql://127.0.0.1:1/none"\nstoreKey = "k"')
    path = tmp_path / "pg.toml"
    path.write_text(config)
    proc = ServeProcess(path)
    assert await proc.run_to_exit() == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("mxproxy: config error: cluster.advertise: required")

"""Log lines: JSON or text format with context fields, the access log, sign-in lines, the start
line, reconnect lines and the log file's mode; the process tests run ``mxproxy serve``."""

from __future__ import annotations

import json
import logging
import re
import signal
import stat
from pathlib import Path

import httpx
import pytest

from mxproxy.logs import ContextFilter, TextFormatter, annotate, json_formatter, log_context, open_log_file
from mxproxy.store import describe_store
from tests.test_server import APP_PASSWORD, CLIENT, MX_PASSWORD, ServeProcess, _server_config, _sign_in, mx  # noqa: F401


def _record(message: str = "hello", level: int = logging.INFO) -> logging.LogRecord:
    record = logging.LogRecord("mxproxy.test", level, __file__, 1, message, None, None)
    ContextFilter().filter(record)
    return record


def test_json_lines_carry_time_level_logger_message_and_context_fields() -> None:
    with log_context(request_id="r-1"):
        annotate(user="alice")
        line = json.loads(json_formatter().format(_record("signed %s" % "in")))
    assert line["level"] == "INFO" and line["logger"] == "mxproxy.test" and line["message"] == "signed in"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line["time"])
    assert (line["user"], line["request_id"]) == ("alice", "r-1")
    outside = json.loads(json_formatter().format(_record()))
    assert "user" not in outside and "request_id" not in outside


def test_text_lines_end_with_the_context_and_keep_tracebacks_last() -> None:
    with log_context(user="bob"):
        plain = TextFormatter().format(_record("hello"))
    assert plain.endswith("INFO mxproxy.test: hello [user=bob]")
    assert TextFormatter().format(_record("x")).endswith("mxproxy.test: x")


def test_start_line_store_description_never_shows_a_password(tmp_path: Path) -> None:
    assert describe_store("postgresql://mx:hunter2@db.example:6543/prod") == "PostgreSQL db.example:6543/prod"
    assert describe_store("postgres://db.example/prod?sslmode=require") == "PostgreSQL db.example:5432/prod"
    assert describe_store("store.db", tmp_path) == f"SQLite {tmp_path / 'store.db'}"


def test_the_log_file_is_created_0600(tmp_path: Path) -> None:
    handler = open_log_file(tmp_path / "logs" / "mxproxy.log")
    handler.close()
    assert stat.S_IMODE((tmp_path / "logs" / "mxproxy.log").stat().st_mode) == 0o600


def _sign_in_form(password: str) -> dict[str, str]:
    return {"username": "alice@example.org", "password": password, "grant_type": "password"}


async def _serve_signing_in(tmp_path: Path, mx_port: int, extra: str) -> ServeProcess:
    """Start, sign in once right and once wrong, GET /auth, then stop: the lines to look at."""
    proc = ServeProcess(_server_config(tmp_path, mx_port, extra=extra))
    await proc.start()
    try:
        url = await proc.ready_url()
        async with httpx.AsyncClient(timeout=30) as client:
            token = await _sign_in(client, url)
            await client.get(f"{url}/auth", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-42"})
            wrong = await client.post(f"{url}/auth", auth=CLIENT, data=_sign_in_form("wrong-password-1"))
            assert wrong.status_code == 403
        proc.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        assert await proc.wait() == 0, proc.stderr
    finally:
        await proc.kill()
    for secret in (APP_PASSWORD, MX_PASSWORD, "wrong-password-1", CLIENT[1], token):
        assert secret not in proc.stderr
    return proc


async def test_json_format_lines_in_a_real_process(mx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc = await _serve_signing_in(tmp_path, mx.port, '[log]\nformat = "json"\n')
    lines = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"].startswith("mxproxy ready: ") for line in lines)


async def test_text_format_start_line_and_no_doubled_uvicorn_lines(
    mx, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    proc = await _serve_signing_in(tmp_path, mx.port, "")
    text = proc.stderr
    ready = next(line for line in text.splitlines() if "mxproxy ready: " in line)
    assert re.search(r"public API http://127\.0\.0\.1:\d+, admin API http://127\.0\.0\.1:\d+; ", ready)
    assert f"; config {tmp_path / 'mxproxy.toml'}; store SQLite {tmp_path / 'store.db'}" in ready
    messages = [line.split(" ", 2)[2] for line in text.splitlines()]  # without the time stamp
    assert len(messages) == len(set(messages)), text
    assert "uvicorn" not in text
    assert stat.S_IMODE((tmp_path / "mxproxy.log").stat().st_mode) == 0o600


async def test_a_successful_reconnect_is_logged(mx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.test_server import _sessions_of, _wait_for

    proc = ServeProcess(_server_config(tmp_path, mx.port))
    await proc.start()
    try:
        url = await proc.ready_url()
        async with httpx.AsyncClient(timeout=30) as client:
            await _sign_in(client, url)
        await _wait_for(lambda: len(_sessions_of(mx, "alice")) == 1)
        await mx.drop_session("alice")
        await _wait_for(lambda: "mx session of alice reconnected to 127.0.0.1:" in proc.stderr)
    finally:
        await proc.kill()
    line = next(line for line in proc.stderr.splitlines() if "reconnected" in line)
    assert "after 0 failed attempt(s) [user=alice]" in line


def test_every_sub_command_logs_through_the_redaction_filter(tmp_path: Path) -> None:
    """``mxproxy demo`` and the other sub-commands never call configure_logging: the CLI itself
    must redact, or a secret logged there reaches stderr in clear."""
    import subprocess
    import sys

    script = (
        "import logging\n"
        "from mxproxy.cli import main\n"
        "try:\n"
        f"    main(['check', '--config', {str(tmp_path / 'missing.toml')!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "logging.getLogger('mxproxy.demo').warning('sent <pwd>hunter2</pwd> with Authorization: Bearer abc.def.ghi')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "sent" in done.stderr
    assert "hunter2" not in done.stderr and "abc.def.ghi" not in done.stderr

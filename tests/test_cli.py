"""The ``mxproxy`` command line, run as real processes: version, help, log levels, hash-password
and ``check``."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from mxproxy.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def mxproxy(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("LOG", "PORT", "ADMIN", "DB", "MXPROXY_CONFIG", "MXPROXY_STORE_KEY", "MXPROXY_DEFAULT_DB")}
    return subprocess.run([sys.executable, "-m", "mxproxy", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={**clean, **(env or {})})


def commands() -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_version_is_the_installed_packages() -> None:
    run = mxproxy("--version")
    assert run.returncode == 0
    assert run.stdout.strip() == f"mxproxy {version('mxproxy')}"


def test_help_is_plain_text_and_lists_every_sub_command() -> None:
    run = mxproxy("--help")
    assert run.returncode == 0
    assert "``" not in run.stdout and ":class:" not in run.stdout
    for name in commands():
        assert f"\n    {name} " in run.stdout, name
    assert {"serve", "check", "hash-password", "simulator", "demo", "healthcheck"} <= set(commands())


def test_serve_help_shows_defaults_and_environment_variables() -> None:
    run = mxproxy("serve", "--help")
    assert run.returncode == 0
    for text in ("env PORT", "env ADMIN", "env DB", "env MXPROXY_CONFIG", "env LOG", "default mxproxy.toml",
                 "127.0.0.1:8043", "MXPROXY_STORE_KEY", "MXPROXY_DEFAULT_DB"):
        assert text in " ".join(run.stdout.split()), text


# listed, not collected from the parser: building it at collection imports every sub-command's
# module before the other tests run (it shifted the derandomized run of tests/api/test_any_input.py)
COMMANDS = ["check", "demo", "hash-password", "healthcheck", "import-mxproxy", "serve", "simulator"]


def test_the_command_list_is_every_sub_command() -> None:
    assert sorted(commands()) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_log_level_is_accepted_after_every_sub_command(command: str) -> None:
    args = build_parser().parse_args([command, "--log-level", "DEBUG"])
    assert args.log_level == "debug"
    assert build_parser().parse_args(["--log-level", "error", command]).log_level == "error"


@pytest.mark.parametrize(("args", "env"), [
    (("serve", "--log-level", "loud"), {}),
    (("--log-level", "loud", "serve"), {}),
    (("check",), {"LOG": "loud"}),
])
def test_an_invalid_log_level_is_refused(args: tuple[str, ...], env: dict[str, str]) -> None:
    run = mxproxy(*args, env=env)
    assert run.returncode == 2
    assert "invalid log level 'loud' (choose from debug, info, warning, error)" in run.stderr


def test_hash_password_prints_a_hash_that_static_users_accept() -> None:
    from mxproxy.provisioning import parse_static

    run = mxproxy("hash-password", stdin="s3cret-pass\n")
    assert run.returncode == 0, run.stderr
    hashed = run.stdout.strip()
    assert hashed.startswith("scrypt$") and "s3cret" not in hashed
    static = parse_static({"host": "mx:7778", "users": {"a": {"password": hashed, "mxPassword": "m"}}})
    assert static.users["a"].check_password("s3cret-pass")
    assert not static.users["a"].check_password("other")


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_check_passes_on_a_sound_install(tmp_path: Path) -> None:
    config = tmp_path / "mxproxy.toml"
    config.write_text('[apps]\nc = "s"\n[server]\ndb = "store.db"\nstoreKey = "k"\n'
                      '[static]\nhost = "127.0.0.1:7778"\n[static.users.a]\npassword = "p"\nmxPassword = "m"\n')
    run = mxproxy("check", "--config", str(config))
    assert run.returncode == 0, run.stderr
    assert "ok" in run.stdout
    assert not (tmp_path / "store.db").exists()  # a check creates nothing


def test_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "mxproxy.toml"
    config.write_text(f'provisioning = "http://127.0.0.1:{_closed_port()}/config"\n[apps]\nc = "s"\n'
                      '[server]\ndb = "notes.db"\nstoreKey = "k"\n[voip.fcm]\napp = "missing.json"\n')
    (tmp_path / "notes.db").write_text("not a database\n" * 20)
    run = mxproxy("check", "--config", str(config))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    problems = [line for line in lines if line.startswith("mxproxy check: ")]
    assert any("not an SQLite database" in p for p in problems), lines
    assert any('voip.fcm."app"' in p and "missing.json" in p for p in problems), lines
    assert any("provisioning: http://127.0.0.1:" in p and "cannot be reached" in p for p in problems), lines
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(("text", "problem"), [
    ('[apps]\nc = "s"\n[jwt]\ntokenTTl = "1h"\n', "jwt.tokenTTl: unknown key (did you mean tokenTTL?)"),
    ('[apps]\nc = "s"\n[server]\ndb = "postgresql://u@127.0.0.1/test"\n', "server.storeKey: required"),
])
def test_check_reports_config_errors(tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "mxproxy.toml"
    config.write_text(text)
    run = mxproxy("check", "--config", str(config))
    assert run.returncode == 2
    assert f"mxproxy check: {problem}" in run.stderr

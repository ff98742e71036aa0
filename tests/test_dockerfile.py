"""The Dockerfile, checked without a Docker engine: what it copies exists and is everything the
package needs, it runs as a non-root user with the documented volumes, and its CMD, HEALTHCHECK
and environment are valid for our own command line and listen-address parsers."""

from __future__ import annotations

import json
import shlex
import tomllib
from pathlib import Path

import pytest

from mxproxy.cli import build_parser
from mxproxy.config import DEFAULT_DB_ENV, load_config
from mxproxy.server import admin_listen, apply_overrides, parse_listen

ROOT = Path(__file__).resolve().parent.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    current = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            joined.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in joined]


def of(name: str) -> list[str]:
    return [args for instruction, args in instructions() if instruction == name]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_everything_copied_exists_and_covers_the_packages() -> None:
    copied: set[str] = set()
    for args in of("COPY"):
        *sources, _dest = shlex.split(args)
        for source in sources:
            matches = list(ROOT.glob(source))
            assert matches or source.endswith("*"), f"COPY {source}: not in the repository"
            copied.update(m.name for m in matches)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= copied
    assert "pyproject.toml" in copied


def test_it_runs_as_the_non_root_user_it_creates_with_config_and_db_volumes() -> None:
    [user] = of("USER")
    assert user not in ("root", "0")
    assert any("useradd" in run and f" {user}" in run for run in of("RUN"))
    assert any(f"chown {user}:{user} /db" in run for run in of("RUN"))
    [volumes] = of("VOLUME")
    assert set(exec_form(volumes)) == {"/config", "/db"}


def test_cmd_and_healthcheck_are_valid_mxproxy_command_lines() -> None:
    [entrypoint] = of("ENTRYPOINT")
    [cmd] = of("CMD")
    program, *head = exec_form(entrypoint)
    assert program == "mxproxy"
    args = build_parser().parse_args(head + exec_form(cmd))
    assert (args.command, args.config) == ("serve", "/config/mxproxy.toml")
    [health] = of("HEALTHCHECK")
    command = exec_form(health.split("CMD", 1)[1].strip())
    assert command[0] == "mxproxy"
    assert build_parser().parse_args(command[1:]).command == "healthcheck"


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in of("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_the_environment_is_what_serve_accepts() -> None:
    env = image_env()
    assert parse_listen(env["PORT"], 8000).port == 8000
    admin = admin_listen(env["ADMIN"], None)  # loopback: allowed without an admin token
    assert admin is not None and admin.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("run_env", "config_db", "store"),
    [
        ({}, None, "/db/mxproxy.db"),  # the image's default: the /db volume
        ({"DB": "postgresql://mx@db.example/mxproxy"}, None, "postgresql://mx@db.example/mxproxy"),
        ({}, "postgresql://mx@pg.example/prod", "postgresql://mx@pg.example/prod"),
        ({"DB": "postgresql://mx@env.example/a"}, "postgresql://mx@file.example/b", "postgresql://mx@env.example/a"),
    ],
)
def test_the_images_command_picks_the_store_by_the_servers_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_env: dict[str, str], config_db: str | None, store: str
) -> None:
    """`docker run -e DB=...` and `[server] db` must reach the server through the image's CMD."""
    for name in ("PORT", "ADMIN", "DB", "MXPROXY_CONFIG", DEFAULT_DB_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**image_env(), **run_env}.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "mxproxy.toml"
    config.write_text('[apps]\nc = "s"\n' + (f'[server]\ndb = "{config_db}"\n' if config_db else ""))
    [entrypoint], [cmd] = of("ENTRYPOINT"), of("CMD")
    args = build_parser().parse_args(exec_form(entrypoint)[1:] + exec_form(cmd))
    args.config = str(config)  # the /config volume, here
    assert apply_overrides(load_config(args.config), args.port, args.admin, args.db).server.db == store

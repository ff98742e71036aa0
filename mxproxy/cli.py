"""The ``mxproxy`` command and its sub-commands.

Subcommands import their modules lazily so ``mxproxy simulator`` does not pay for the web stack.
Help texts are plain text (no reST): they are what an operator reads in a terminal.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from mxproxy import __version__
from mxproxy.logs import redact_every_handler

DESCRIPTION = "mxproxy: a drop-in replacement for MX Proxy 2.3 (OAuth2 / VoIP-push proxy for Zultys MX)."
LOG_LEVELS = ("debug", "info", "warning", "error")

SERVE_ENVIRONMENT = """\
environment:
  MXPROXY_CONFIG      config file, when --config is not given
  PORT, ADMIN, DB     listen addresses and store, when the flags are not given (they win over [server])
  LOG                 log level, when --log-level is not given
  MXPROXY_STORE_KEY   the store key, when [server] storeKey is not set
  MXPROXY_DEFAULT_DB  the store when neither --db, DB nor [server] db names one (Docker: /db/mxproxy.db)

A flag wins over the environment, which wins over the config file."""


def log_level(text: str) -> str:
    """``--log-level`` / ``LOG``: one of LOG_LEVELS, any case; anything else is refused."""
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"invalid log level {text!r} (choose from {', '.join(LOG_LEVELS)})")
    return level


def _simulator_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="CSTA listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7778, help="CSTA TLS port (default 7778)")
    p.add_argument("--fixture", help="fixture file (JSON or TOML); default: the built-in demo fixture")
    p.add_argument("--control", default="127.0.0.1:7780", help="control HTTP API host:port ('' to disable)")
    p.add_argument("--cert", help="TLS certificate (PEM); a self-signed one is generated when omitted")
    p.add_argument("--key", help="TLS private key (PEM) for --cert")
    p.add_argument(
        "--quirk", action="append", default=[], metavar="NAME=VALUE",
        help="protocol quirk switch (see docs/simulator.md); may repeat",
    )
    p.add_argument("--profile", default="spec",
                   help="named set of quirks: spec, name-matched, strict-order, mixed, dialect (docs/simulator.md)")
    p.add_argument("--replay", metavar="TRACE",
                   help="answer from a recorded CSTA trace (JSON lines) instead of the fixture (docs/simulator.md)")


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=os.environ.get("MXPROXY_CONFIG", "mxproxy.toml"),
                   help="TOML config file (env MXPROXY_CONFIG; default mxproxy.toml)")
    p.add_argument("--port", default=os.environ.get("PORT"),
                   help="public API port or host:port (env PORT; default [server] port, else 8000 on all interfaces)")
    p.add_argument("--admin", default=os.environ.get("ADMIN"),
                   help="admin API host:port, 'off' disables it (env ADMIN; default [server] admin, else 127.0.0.1:8043)")
    p.add_argument("--db", default=os.environ.get("DB"),
                   help="SQLite file or postgresql:// URL (env DB; default [server] db, else MXPROXY_DEFAULT_DB, "
                        "else mxproxy.db beside the config file)")


def _log_level_arg(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--log-level", type=log_level, default=default, metavar="LEVEL",
                   help=f"{', '.join(LOG_LEVELS)} (env LOG; default info)")


def _command(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, help: str,
             **kwargs: object) -> argparse.ArgumentParser:
    """A sub-command that also takes ``--log-level`` after its name (``mxproxy serve --log-level debug``)."""
    p = sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".", **kwargs)  # type: ignore[arg-type]
    _log_level_arg(p, argparse.SUPPRESS)  # given here, it wins over the one before the sub-command
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mxproxy", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"mxproxy {__version__}")
    _log_level_arg(parser, os.environ.get("LOG", "info"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands (mxproxy COMMAND --help for each)")
    _serve_args(_command(sub, "serve", "run the proxy (public API + admin API)", epilog=SERVE_ENVIRONMENT,
                         formatter_class=argparse.RawDescriptionHelpFormatter))
    _serve_args(_command(sub, "check", "check the config, push credentials, store and provisioning service "
                                       "without serving; exit 0, or 2 with the list of problems"))
    _command(sub, "hash-password", "print an scrypt hash for a [static.users] password "
                                   "(asks twice on a terminal, else reads one line from stdin)")
    _simulator_args(_command(sub, "simulator", "run the MX simulator (CSTA over TLS + control API)"))
    demo = _command(sub, "demo", "run the simulator and the proxy together on the demo data")
    demo.add_argument("--port", default="8000", help="public API port (default 8000)")
    demo.add_argument("--admin", default="127.0.0.1:8043", help="admin API host:port")
    demo.add_argument("--mx-port", type=int, default=7778, help="simulator CSTA port")
    demo.add_argument("--control", default="127.0.0.1:7780", help="simulator control API host:port")
    demo.add_argument("--db", default=None, help="store (default: a fresh file in a temporary folder)")
    from mxproxy.upgrade.command import add_arguments as import_arguments

    import_arguments(
        _command(sub, "import-mxproxy", "import an MX Proxy 2.3 store (bbolt users and device tokens)"),
        os.environ.get("MXPROXY_CONFIG", "mxproxy.toml"), os.environ.get("DB"),
    )
    health = _command(sub, "healthcheck", "exit 0 if a running proxy's admin /healthz answers (containers)")
    health.add_argument("--admin", default=os.environ.get("ADMIN"), help="admin API host:port (env ADMIN)")
    health.add_argument("--timeout", type=float, default=4.0, help="seconds (default 4)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact_every_handler()
    if args.command == "simulator":
        from mxproxy.simulator.cli import run as run_simulator

        sys.exit(run_simulator(args))
    if args.command == "serve":
        from mxproxy.server import run as run_server

        sys.exit(run_server(args))
    if args.command == "demo":
        from mxproxy.demo import run as run_demo

        sys.exit(run_demo(args))
    if args.command == "check":
        from mxproxy.check import run as run_check

        sys.exit(run_check(args))
    if args.command == "hash-password":
        from mxproxy.provisioning import main as hash_password

        sys.exit(hash_password([]))
    if args.command == "import-mxproxy":
        from mxproxy.upgrade.command import run as run_import

        sys.exit(run_import(args))
    if args.command == "healthcheck":
        from admin.healthcheck import check

        alive, seen = check(args.admin, args.timeout)
        print(seen, file=sys.stdout if alive else sys.stderr)
        sys.exit(0 if alive else 1)


if __name__ == "__main__":  # pragma: no cover
    main()

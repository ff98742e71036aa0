"""The ``mxproxy`` command: ``serve``, ``simulator``, ``demo``, ``import-mxproxy``.

Subcommands import their modules lazily so ``mxproxy simulator`` does not pay for the web stack.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence


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


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=os.environ.get("MXPROXY_CONFIG", "mxproxy.toml"), help="TOML config file")
    p.add_argument("--port", default=os.environ.get("PORT"), help="public API port or host:port (env PORT)")
    p.add_argument("--admin", default=os.environ.get("ADMIN"), help="admin API host:port (env ADMIN)")
    p.add_argument("--db", default=os.environ.get("DB"), help="SQLite file or postgresql:// URL (env DB)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mxproxy", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default=os.environ.get("LOG", "info"), help="debug, info, warning, error")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_args(sub.add_parser("serve", help="run the proxy (public API + admin API)"))
    _simulator_args(sub.add_parser("simulator", help="run the MX simulator (CSTA over TLS + control API)"))
    demo = sub.add_parser("demo", help="run the simulator and the proxy together on the demo data")
    demo.add_argument("--port", default="8000", help="public API port (default 8000)")
    demo.add_argument("--admin", default="127.0.0.1:8043", help="admin API host:port")
    demo.add_argument("--mx-port", type=int, default=7778, help="simulator CSTA port")
    demo.add_argument("--control", default="127.0.0.1:7780", help="simulator control API host:port")
    demo.add_argument("--db", default=None, help="store (default: a fresh file in a temporary folder)")
    from mxproxy.upgrade.command import add_arguments as import_arguments

    import_arguments(
        sub.add_parser("import-mxproxy", help="import an MX Proxy 2.3 store (bbolt users and device tokens)"),
        os.environ.get("MXPROXY_CONFIG", "mxproxy.toml"), os.environ.get("DB"),
    )
    health = sub.add_parser("healthcheck", help="exit 0 if a running proxy's admin /healthz answers (containers)")
    health.add_argument("--admin", default=os.environ.get("ADMIN"), help="admin API host:port (env ADMIN)")
    health.add_argument("--timeout", type=float, default=4.0, help="seconds (default 4)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "simulator":
        from mxproxy.simulator.cli import run as run_simulator

        sys.exit(run_simulator(args))
    if args.command == "serve":
        from mxproxy.server import run as run_server

        sys.exit(run_server(args))
    if args.command == "demo":
        from mxproxy.demo import run as run_demo

        sys.exit(run_demo(args))
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

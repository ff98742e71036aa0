"""``mxproxy import-mxproxy``: import an MX Proxy 2.3 store (bbolt) into our store, on demand.

Which files: ``--from-db`` is the original's bbolt file; without it, the store the config names
(``--db`` / ``DB`` / ``[server] db``) when that is a bbolt file (the original's folder taken as
is), else ``mxproxy.db`` beside the config file or in the working directory. The target is ``--db`` / ``DB`` / ``[server] db``; when that path is itself the bbolt file,
the SQLite file beside it that ``mxproxy serve`` would use (docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from mxproxy.config import Config, ConfigError, load_config
from mxproxy.store import StoreError, create_store
from mxproxy.upgrade.bbolt import BoltError, looks_like_bolt_file
from mxproxy.upgrade.importer import configured_topics, import_legacy_store, summary_lines
from mxproxy.upgrade.takeover import sqlite_beside, sqlite_path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
PROG = "mxproxy import-mxproxy"
ORIGINAL_DB = "mxproxy.db"  # MX Proxy 2.3's -db default


def add_arguments(p: argparse.ArgumentParser, config_default: str, db_default: str | None) -> None:
    p.add_argument("--from-db", help="MX Proxy 2.3's bbolt file (default: the configured store path, if it is one)")
    p.add_argument("--config", default=config_default, help="TOML config file (the original's is accepted as is)")
    p.add_argument("--db", default=db_default, help="target: SQLite file or postgresql:// URL (env DB)")
    p.add_argument("--dry-run", action="store_true", help="read and report, write nothing")


def plan(config: Config, from_db: str | None) -> tuple[Path, str]:
    """(bbolt file to read, target ``db``) for a config whose ``server.db`` already holds --db."""
    target = config.server.db
    target_path = sqlite_path(target, config.base_dir)
    if from_db:
        source = Path(from_db).expanduser()
        source = source if source.is_absolute() else Path.cwd() / source
    else:
        # the configured store itself, else the original's default file beside the config or here
        candidates = [target_path, config.base_dir / ORIGINAL_DB, Path.cwd() / ORIGINAL_DB]
        found = [p for p in candidates if p is not None and looks_like_bolt_file(p)]
        if not found:
            raise ConfigError(f"--from-db: not given, and neither the configured store {target} nor "
                              f"{ORIGINAL_DB} beside the config is an MX Proxy 2.3 bbolt file")
        source = found[0]
    if target_path is not None and (target_path == source or looks_like_bolt_file(target_path)):
        target = str(sqlite_beside(target_path))
    return source, target


async def _import(config: Config, source: Path, target: str, dry_run: bool) -> list[str]:
    store = create_store(target, config.server.store_key, base_dir=config.base_dir)
    await store.open()
    try:
        report = await import_legacy_store(store, source, configured_topics(config), target=target, dry_run=dry_run)
    finally:
        await store.close()
    return summary_lines(report)


def run(args: argparse.Namespace) -> int:
    from mxproxy.server import apply_overrides

    try:
        config = apply_overrides(load_config(args.config), None, None, args.db)
        source, target = plan(config, args.from_db)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not source.is_file():
        print(f"{PROG}: {source}: no such file", file=sys.stderr)
        return EXIT_FAILED
    try:
        lines = asyncio.run(_import(config, source, target, args.dry_run))
    except (BoltError, StoreError) as exc:
        print(f"{PROG}: {exc}; nothing was imported", file=sys.stderr)
        return EXIT_FAILED
    print("\n".join(lines))
    return EXIT_OK

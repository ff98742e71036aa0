"""``mxproxy check``: what ``serve`` would trip over, found without serving.

Loads the config (every mistake ``serve`` refuses), the push credentials, opens the store and asks
the provisioning service, then lists every problem at once so an operator fixes them in one go
instead of one start-up failure at a time. Nothing is changed: a missing SQLite file is not created.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import httpx

from mxproxy.config import Config, ConfigError, load_config

EXIT_OK = 0
EXIT_PROBLEMS = 2

log = logging.getLogger("mxproxy.check")


async def _push_problems(config: Config) -> list[str]:
    """Credentials the push senders could not load (.p12, .p8, service-account JSON)."""
    from mxproxy.push.apns import ApnsSender
    from mxproxy.push.fcm import FcmSender

    problems: list[str] = []
    for sender_class in (ApnsSender, FcmSender):
        try:
            sender = sender_class(config.voip, config.push, config.base_dir)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        problems += [f"push: {p}" for p in sender.problems]
        closer = getattr(sender, "aclose", None)
        if closer is not None:
            await closer()
    return problems


async def _store_problem(config: Config) -> str | None:
    """Open the store as ``serve`` would (connect, key check, schema), unless that would create it."""
    from mxproxy.store import StoreError, create_store, is_postgres_url
    from mxproxy.store.sqlite import MEMORY

    db = config.server.db
    if is_postgres_url(db) and not config.server.store_key:
        return None  # a config error, reported with the others
    if not is_postgres_url(db) and db != MEMORY:
        path = config.resolve_path(db)
        if not path.exists():
            folder = path.parent
            if not folder.is_dir():
                return f"server.db: folder {folder} does not exist"
            if not os.access(folder, os.W_OK):
                return f"server.db: {path} does not exist and folder {folder} is not writable"
            return None  # serve creates it
    try:
        store = create_store(db, config.server.store_key, base_dir=config.base_dir)
        await store.open()
    except StoreError as exc:
        return f"store: {exc}"
    try:
        await store.ping()
    except StoreError as exc:
        return f"store: {exc}"
    finally:
        await store.close()
    return None


async def _provisioning_problem(config: Config) -> str | None:
    """The provisioning URL answers HTTP at all (any status: without credentials it refuses)."""
    if config.static:
        from mxproxy.provisioning import parse_static

        try:
            parse_static(config.static, config.base_dir)
        except ConfigError as exc:
            return str(exc)
        return None
    try:
        async with httpx.AsyncClient(timeout=config.mx.provisioning_timeout) as http:
            await http.get(config.provisioning, headers={"User-Agent": "MXProxy/2.3"})
    except httpx.HTTPError as exc:
        return f"provisioning: {config.provisioning} cannot be reached: {exc or type(exc).__name__}"
    return None


async def find_problems(config: Config) -> list[str]:
    """Every problem of a loaded config's surroundings, in the order ``serve`` would meet them."""
    from mxproxy.connectors.registry import create_connector
    from mxproxy.server import ProxyServer

    problems: list[str] = []
    try:
        ProxyServer(config)  # listen addresses, PostgreSQL without a key
        create_connector(config.mx)
    except ConfigError as exc:
        problems.append(str(exc))
    for problem in (await _store_problem(config), *await _push_problems(config),
                    await _provisioning_problem(config)):
        if problem:
            problems.append(problem)
    return problems


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mxproxy check``: prints each problem on its own line; exit 0 or 2."""
    from mxproxy.server import apply_overrides

    try:
        config = apply_overrides(load_config(args.config), getattr(args, "port", None),
                                 getattr(args, "admin", None), getattr(args, "db", None))
    except ConfigError as exc:
        problems = [str(exc)]
    else:
        logging.getLogger("mxproxy.push").setLevel(logging.CRITICAL)  # listed below, not logged twice
        problems = asyncio.run(find_problems(config))
    if problems:
        for problem in problems:
            print(f"mxproxy check: {problem}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"mxproxy check: {Path(args.config).resolve()}: ok (config, push credentials, store, provisioning)")
    return EXIT_OK

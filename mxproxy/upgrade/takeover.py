"""``mxproxy serve`` on an MX Proxy 2.3 folder: the configured store path holds the original's
bbolt file (``mxproxy.db``, Docker's ``/db/mxproxy.db``), which mxproxy would otherwise open as
SQLite.

The bbolt file is imported once into a new SQLite file beside it, named by ``sqlite_beside``
(``mxproxy.db`` → ``mxproxy.sqlite``), and that file is the store from then on. The bbolt file is
never written: it stays as the backup. The import is recorded in the new store, so a later start
(or ``mxproxy import-mxproxy`` run before it) does not import again — users who signed out since
stay signed out.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mxproxy.config import Config
from mxproxy.store import StoreError, create_store, is_postgres_url
from mxproxy.store.sqlite import MEMORY
from mxproxy.upgrade.bbolt import BoltError, looks_like_bolt_file
from mxproxy.upgrade.importer import configured_topics, import_legacy_store, summary_lines

log = logging.getLogger(__name__)

SQLITE_SUFFIX = ".sqlite"
#: at most this many lines of an import summary go to the log (the CLI's --dry-run lists all)
LOGGED_LINES = 40


def sqlite_path(db: str, base_dir: Path) -> Path | None:
    """The file a ``server.db`` value names, as the store resolves it; None for PostgreSQL."""
    if not db or is_postgres_url(db) or db == MEMORY:
        return None
    path = Path(db).expanduser()
    return path if path.is_absolute() else base_dir / path


def sqlite_beside(bolt_path: Path) -> Path:
    """Where the SQLite store taken over from ``bolt_path`` lives: same folder, ``.sqlite``."""
    target = bolt_path.with_suffix(SQLITE_SUFFIX)
    return target if target != bolt_path else bolt_path.with_name(bolt_path.name + SQLITE_SUFFIX)


async def take_over_bolt_store(db: str, config: Config) -> str:
    """``db`` unchanged, or — when it names MX Proxy 2.3's bbolt file — the SQLite file beside it,
    imported first if that has not happened yet. Raises StoreError when the file cannot be read."""
    path = sqlite_path(db, config.base_dir)
    if path is None or not looks_like_bolt_file(path):
        return db
    target = sqlite_beside(path)
    store = create_store(str(target), config.server.store_key)
    await store.open()
    try:
        done = await store.import_source()
        if done is not None:
            log.info("store: %s is MX Proxy 2.3's bbolt file, already imported into %s: using that "
                     "(the bbolt file is kept unchanged)", path, target)
            return str(target)
        log.info("store: %s is MX Proxy 2.3's bbolt file; importing it into %s", path, target)
        try:
            report = await import_legacy_store(store, path, configured_topics(config, quiet=True), target=str(target))
        except BoltError as exc:
            raise StoreError(f"{exc}; nothing was imported (the bbolt file is unchanged)") from None
    finally:
        await store.close()
    lines = summary_lines(report)
    for line in lines[:LOGGED_LINES]:
        log.info("store: %s", line.strip())
    if len(lines) > LOGGED_LINES:
        log.info("store: … %d more lines (mxproxy import-mxproxy --dry-run lists them all)", len(lines) - LOGGED_LINES)
    log.info("store: using %s from now on; %s is kept unchanged as the backup", target, path)
    return str(target)


__all__ = ["SQLITE_SUFFIX", "sqlite_beside", "sqlite_path", "take_over_bolt_store"]

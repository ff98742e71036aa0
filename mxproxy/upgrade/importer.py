"""MX Proxy 2.3's users and device tokens (its bbolt store, spec §7.8) as our store's records.

The original kept bucket ``users`` (key: MX login; value: JSON ``{"host", "login", "password"}``,
the password in clear) and bucket ``tokens`` (key ``apn:<topic>[~]:<token>`` — ``~`` marks the
APNs sandbox — or ``fcm:<appId>:<token>``; value: the MX login). Everything that cannot become a
record we can use is listed with its reason instead of being imported half-way: malformed JSON,
a user without host or password, a token whose user is missing, a token for a topic no
credentials are configured for, a token the API would refuse. Writes go through the store's
``import_records`` (one transaction, idempotent).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, TypeVar

from mxproxy.config import Config
from mxproxy.provisioning import split_host
from mxproxy.push.topics import PushTopics, token_shape_ok
from mxproxy.store import validation
from mxproxy.store.base import DeviceToken, ImportOutcome, InvalidRecord, Store, UserRecord
from mxproxy.upgrade.bbolt import BoltError, BoltFile, Bucket, read_bolt_file

log = logging.getLogger(__name__)

USERS = b"users"
TOKENS = b"tokens"
SANDBOX_MARK = "~"
EXAMPLES = 3  # skipped records named per reason in a summary
_R = TypeVar("_R", UserRecord, DeviceToken)


class NotAnMXProxyStore(BoltError):
    """A bbolt file, but not one MX Proxy 2.3 wrote (neither a ``users`` nor a ``tokens`` bucket)."""


@dataclass(frozen=True)
class Skipped:
    what: str  # 'user "alice"', 'token apn:com.example.app:1a2b3c4d…'
    reason: str


@dataclass(frozen=True)
class LegacyStore:
    """What an MX Proxy 2.3 store holds that we can take over, and what we cannot (with why)."""

    source: str
    bolt: BoltFile
    users: tuple[UserRecord, ...]
    tokens: tuple[DeviceToken, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True)
class ImportReport:
    legacy: LegacyStore
    outcome: ImportOutcome
    target: str
    dry_run: bool


def configured_topics(config: Config, *, quiet: bool = False) -> PushTopics:
    """The push topics the config has credentials for, as ``mxproxy serve`` would load them:
    APNs certificates (their bundle id and gateways), ``[voip.apnToken]`` topics, and every
    ``[voip.fcm]`` app id (a legacy server key included: its tokens are kept, see docs/push.md)."""
    from mxproxy.push.apns import ApnsSender

    push_log = logging.getLogger("mxproxy.push")
    level = push_log.level
    if quiet:  # the dispatcher loads (and reports) the same credentials moments later
        push_log.setLevel(logging.CRITICAL)
    try:
        apns = ApnsSender(config.voip, config.push, config.base_dir)
    finally:
        push_log.setLevel(level)
    return PushTopics.of(apn=apns.topics, fcm=config.voip.fcm.keys())


def _short_token(key: str) -> str:
    """A token key fit for output: kind, topic and the token's first 8 characters."""
    parts = key.split(":", 2)
    return f"{parts[0]}:{parts[1]}:{parts[2][:8]}…" if len(parts) == 3 else key[:40]


def _text(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text and "\x00" not in text else None


def _user(key: bytes, value: bytes) -> UserRecord | Skipped:
    login = _text(key)
    if login is None:
        return Skipped(f"user {key[:40]!r}", "the login is not UTF-8 text")
    what = f'user "{login}"'
    try:
        data = json.loads(value)
    except (ValueError, RecursionError) as exc:
        return Skipped(what, f"malformed JSON ({exc})")
    if not isinstance(data, dict):
        return Skipped(what, "malformed JSON (not an object)")
    host, mx_login, password = data.get("host"), data.get("login") or login, data.get("password")
    if not isinstance(host, str) or not host:
        return Skipped(what, "no MX host in the stored JSON")
    try:
        split_host(host)
    except ValueError as exc:
        return Skipped(what, f"bad MX host: {exc}")
    if not isinstance(mx_login, str) or not isinstance(password, str) or not password:
        return Skipped(what, "no MX login or password in the stored JSON")
    # 2.3 keys users by MX login (== "login"); the README's sample keys them by the name typed at
    # sign-in: then the MX login is ours too (the JWT "sub") and the key the sign-in name
    record = UserRecord(login=mx_login, host=host, mx_login=mx_login, password=password,
                        sign_in_name="" if mx_login == login else login)
    return _valid(what, record, validation.user)


def _token(key: bytes, value: bytes, topics: PushTopics, logins: Mapping[str, str]) -> DeviceToken | Skipped:
    text = _text(key)
    if text is None:
        return Skipped(f"token {key[:40]!r}", "the key is not UTF-8 text")
    what = f"token {_short_token(text)}"
    kind, sep, rest = text.partition(":")
    if not sep:
        return Skipped(what, 'not a "<kind>:<topic>:<token>" key')
    if kind == "apn":
        topic, sep, token = rest.partition(":")
        sandbox = topic.endswith(SANDBOX_MARK)
        topic = topic.removesuffix(SANDBOX_MARK)
        if not sep or not topic:
            return Skipped(what, 'not an "apn:<topic>[~]:<token>" key')
        if not topics.apn_ok(topic, sandbox):
            env = "sandbox" if sandbox else "production"
            return Skipped(what, f"no APNs certificate or key configured for topic {topic} ({env})")
    elif kind == "fcm":
        # app ids may hold ':' and so do FCM tokens: match the configured ids, as the original did
        known = sorted((a for a in topics.fcm if rest.startswith(a + ":")), key=len, reverse=True)
        topic, sep, token = (known[0], ":", rest[len(known[0]) + 1:]) if known else rest.partition(":")
        sandbox = False
        if not sep or not topic:
            return Skipped(what, 'not an "fcm:<appId>:<token>" key')
        if not known:
            return Skipped(what, f"no [voip.fcm] entry for FCM app {topic}")
    else:
        return Skipped(what, f'unknown push type "{kind}"')
    if not token_shape_ok(kind, token):
        return Skipped(what, "not a device token the API would accept (bad push token)")
    login = _text(value)
    if login is None:
        return Skipped(what, "the owner's login is empty or not UTF-8 text")
    if login not in logins:
        return Skipped(what, f'its user "{login}" is not in the users bucket')
    record = DeviceToken(kind=kind, topic=topic, token=token, login=logins[login], sandbox=sandbox)
    return _valid(what, record, validation.device_token)


def _valid(what: str, record: _R, check: Callable[[_R], object]) -> _R | Skipped:
    """The record, or why the store would refuse it (so one bad record never fails the import)."""
    try:
        check(record)
    except InvalidRecord as exc:
        return Skipped(what, str(exc))
    return record


def legacy_records(bolt: BoltFile, topics: PushTopics, *, stored_logins: frozenset[str] = frozenset()) -> LegacyStore:
    """Turn a bbolt file MX Proxy 2.3 wrote into records; ``stored_logins`` are users the target
    store already holds (their tokens are not orphans)."""
    users_bucket, tokens_bucket = bolt.bucket(USERS), bolt.bucket(TOKENS)
    if users_bucket is None and tokens_bucket is None and bolt.root.buckets:
        names = ", ".join(sorted(repr(n.decode("utf-8", "replace")) for n in bolt.root.buckets))
        raise NotAnMXProxyStore(f"{bolt.path}: a bbolt file, but not MX Proxy 2.3's (buckets: {names})")
    skipped: list[Skipped] = []
    for name in sorted(bolt.root.buckets):
        if name not in (USERS, TOKENS):
            skipped.append(Skipped(f"bucket {name.decode('utf-8', 'replace')!r}", "not MX Proxy 2.3's; ignored"))
    users: list[UserRecord] = []
    for bucket, label in ((users_bucket, "user"), (tokens_bucket, "token")):
        for name in sorted((bucket or Bucket()).buckets):
            skipped.append(Skipped(f"{label} {name.decode('utf-8', 'replace')!r}", "a nested bucket, not a record"))
    for key, value in sorted((users_bucket or Bucket()).items.items()):
        record = _user(key, value)
        (skipped if isinstance(record, Skipped) else users).append(record)  # type: ignore[arg-type]
    # a token's owner is a users key: the key itself, or the sign-in name of a user keyed that way
    logins = {login: login for login in stored_logins} | {u.login: u.login for u in users}
    logins |= {u.sign_in_name: u.login for u in users if u.sign_in_name}
    tokens: list[DeviceToken] = []
    for key, value in sorted((tokens_bucket or Bucket()).items.items()):
        record = _token(key, value, topics, logins)
        (skipped if isinstance(record, Skipped) else tokens).append(record)  # type: ignore[arg-type]
    return LegacyStore(bolt.path, bolt, tuple(users), tuple(tokens), tuple(skipped))


async def import_legacy_store(store: Store, path: str | Path, topics: PushTopics, *, target: str,
                              dry_run: bool = False) -> ImportReport:
    """Read ``path`` (read-only) and import it into the open ``store`` in one transaction.
    Raises :class:`BoltError` before anything is written when the file cannot be read."""
    bolt = read_bolt_file(path)
    stored = frozenset(u.login for u in await store.list_users())
    legacy = legacy_records(bolt, topics, stored_logins=stored)
    outcome = await store.import_records(legacy.users, legacy.tokens, source=str(path), dry_run=dry_run)
    return ImportReport(legacy=legacy, outcome=outcome, target=target, dry_run=dry_run)


def _by_topic(tokens: tuple[DeviceToken, ...]) -> str:
    counts = Counter((t.kind, t.topic, t.sandbox) for t in tokens)
    return ", ".join(f"{kind} {topic}{' (sandbox)' if sandbox else ''}: {n}"
                     for (kind, topic, sandbox), n in sorted(counts.items()))


def summary_lines(report: ImportReport) -> list[str]:
    """What was read, written and skipped (never a password; device tokens by 8 characters)."""
    legacy, out = report.legacy, report.outcome
    bolt = legacy.bolt
    lines = [
        f"{'dry run: would import' if report.dry_run else 'imported'} MX Proxy 2.3 store {legacy.source} "
        f"(bbolt, page size {bolt.page_size}, transaction {bolt.txid}) into {report.target}",
        f"  users: {len(out.users_added)} added, {len(out.users_unchanged)} already there, "
        f"{len(out.users_kept)} kept as stored (the store holds other values for them)",
        f"  tokens: {len(out.tokens_added)} added, {len(out.tokens_unchanged)} already there, "
        f"{len(out.tokens_kept)} kept as stored (registered to another user)",
    ]
    if out.tokens_added:
        lines.append(f"    added by topic: {_by_topic(out.tokens_added)}")
    for login in out.users_kept:
        lines.append(f'  kept: user "{login}": already stored with another host, MX login or password')
    for token in out.tokens_kept:
        lines.append(f"  kept: token {token.kind}:{token.topic}:{token.token[:8]}…: registered to another user")
    skipped = list(legacy.skipped) + [
        Skipped(f"token {t.kind}:{t.topic}:{t.token[:8]}…", f'its user "{t.login}" is not stored')
        for t in out.tokens_without_user
    ]
    lines.append(f"  skipped: {len(skipped)}")
    by_reason: dict[str, list[str]] = {}
    for skip in skipped:
        by_reason.setdefault(skip.reason, []).append(skip.what)
    for reason, whats in by_reason.items():
        if len(whats) == 1:
            lines.append(f"    {whats[0]}: {reason}")
        else:
            shown = ", ".join(whats[:EXAMPLES]) + (", …" if len(whats) > EXAMPLES else "")
            lines.append(f"    {len(whats)} × {reason}: {shown}")
    if report.dry_run:
        lines.append("dry run: nothing was written")
    elif not out.changed:
        lines.append("nothing changed: everything in it was imported already")
    return lines


__all__ = [
    "ImportReport", "LegacyStore", "NotAnMXProxyStore", "Skipped", "configured_topics",
    "import_legacy_store", "legacy_records", "summary_lines",
]

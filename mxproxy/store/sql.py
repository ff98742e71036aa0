"""The store contract implemented once over SQL, for both dialects.

Validation, row mapping, sealing of secrets and the token-takeover rule live here; SQLite and
PostgreSQL only say how to run a statement (``_one``, ``_all``, ``_run``, ``_transaction``) and
name their tables. Statements use ``?`` placeholders; the PostgreSQL store turns them into
``$1``, ``$2``, … (see ``dollar_params``).
"""

from __future__ import annotations

import abc
import re
from contextlib import AbstractAsyncContextManager
from functools import lru_cache
from typing import Any, Sequence

from mxproxy.store import rows, validation
from mxproxy.store.base import (
    DeviceToken,
    ImportOutcome,
    InvalidRecord,
    SigningKey,
    Store,
    StoreError,
    UserRecord,
)
from mxproxy.store.cluster import ClusterStatements
from mxproxy.store.crypto import SecretBox
from mxproxy.store.outbox import WebhookStatements

#: How often put_token retries when a concurrent registration of the same token won the insert.
PUT_TOKEN_ATTEMPTS = 5

TOKEN_KEY = "kind = ? AND topic = ? AND token = ?"
#: store_meta row naming the last committed bulk import
IMPORT_SOURCE = "import_source"


@lru_cache(maxsize=256)
def dollar_params(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1``, ``$2``, … (no statement here has a literal ``?``)."""
    counter = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


class Transaction(abc.ABC):
    """Statements inside one open transaction."""

    @abc.abstractmethod
    async def one(self, sql: str, *params: Any) -> rows.Row | None: ...

    @abc.abstractmethod
    async def run(self, sql: str, *params: Any) -> int:
        """Execute; the number of rows touched."""

    @abc.abstractmethod
    async def all(self, sql: str, *params: Any) -> list[rows.Row]: ...

    @abc.abstractmethod
    async def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """Execute one statement once per parameter row (the driver's executemany)."""


class _DryRun(Exception):
    """Raised inside a dry-run import so its transaction rolls back; carries the outcome."""

    def __init__(self, outcome: ImportOutcome) -> None:
        self.outcome = outcome


#: ``store_meta`` name prefix of an MX certificate fingerprint (no ``_``: LIKE reads it as a wildcard).
MX_CERT = "mxcert:"


class SQLStore(WebhookStatements, ClusterStatements, Store):
    """Every Store operation, written once; subclasses supply the dialect's plumbing."""

    #: Table names as the dialect spells them (PostgreSQL qualifies them with the schema).
    _users = "users"
    _tokens = "device_tokens"
    _keys = "signing_keys"
    _meta = "store_meta"
    _generations = "token_generations"
    #: Appended to the SELECT that reads a token's owner before changing it.
    _lock_row = ""
    #: What the driver raises when a device token names a user that is not stored.
    _foreign_key_errors: tuple[type[BaseException], ...] = ()

    _box: SecretBox | None = None

    # the dialect's plumbing ---------------------------------------------------------------
    @abc.abstractmethod
    async def _one(self, sql: str, *params: Any) -> rows.Row | None: ...

    @abc.abstractmethod
    async def _all(self, sql: str, *params: Any) -> list[rows.Row]: ...

    @abc.abstractmethod
    async def _run(self, sql: str, *params: Any) -> int:
        """Execute one write; the number of rows touched."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """One write transaction, rolled back on any error (including cancellation)."""

    # shared plumbing ----------------------------------------------------------------------
    async def ping(self) -> None:
        await self._one("SELECT 1")

    def _secrets(self) -> SecretBox:
        if self._box is None:
            raise StoreError("the store is not open")
        return self._box

    async def _get_meta(self, name: str) -> str | None:
        row = await self._one(f"SELECT value FROM {self._meta} WHERE name = ?", name)
        return None if row is None else str(row["value"])

    async def _add_meta(self, name: str, value: str) -> None:
        await self._run(
            f"INSERT INTO {self._meta} (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", name, value
        )

    # users ---------------------------------------------------------------------------------
    async def get_user(self, login: str) -> UserRecord | None:
        validation.text("login", login)
        row = await self._one(f"SELECT {rows.USER_COLUMNS} FROM {self._users} WHERE login = ?", login)
        return None if row is None else rows.user_from_row(self._secrets(), row)

    async def put_user(self, user: UserRecord) -> None:
        validation.user(user)
        await self._run(
            f"""INSERT INTO {self._users} ({rows.USER_COLUMNS}) VALUES ({rows.placeholders(rows.USER_COLUMNS)})
            ON CONFLICT (login) DO UPDATE SET host = excluded.host, mx_login = excluded.mx_login,
                password_enc = excluded.password_enc, needs_reauth = excluded.needs_reauth,
                updated_at = excluded.updated_at,
                sign_in_name = CASE WHEN excluded.sign_in_name = '' THEN {self._users}.sign_in_name
                                    ELSE excluded.sign_in_name END""",
            *rows.user_values(self._secrets(), user, rows.now()),
        )

    async def find_user(self, name: str) -> UserRecord | None:
        validation.text("login", name)
        row = await self._one(
            f"""SELECT {rows.USER_COLUMNS} FROM {self._users} WHERE login = ?
            UNION ALL
            SELECT * FROM (SELECT {rows.USER_COLUMNS} FROM {self._users}
                           WHERE sign_in_name <> '' AND lower(sign_in_name) = lower(?)
                           ORDER BY updated_at DESC LIMIT 1) AS named
            LIMIT 1""",
            name, name,
        )
        return None if row is None else rows.user_from_row(self._secrets(), row)

    async def set_user_needs_reauth(self, login: str, needs_reauth: bool) -> bool:
        validation.text("login", login)
        touched = await self._run(
            f"UPDATE {self._users} SET needs_reauth = ?, updated_at = ? WHERE login = ?",
            bool(needs_reauth), rows.now(), login,
        )
        return touched > 0

    async def delete_user(self, login: str) -> bool:
        validation.text("login", login)
        async with self._transaction() as tx:
            await tx.run(f"DELETE FROM {self._tokens} WHERE login = ?", login)
            await tx.run(f"DELETE FROM {self._leases} WHERE login = ?", login)
            await tx.run(f"DELETE FROM {self._claims} WHERE login = ?", login)
            return await tx.run(f"DELETE FROM {self._users} WHERE login = ?", login) > 0

    async def list_users(self) -> list[UserRecord]:
        found = await self._all(f"SELECT {rows.USER_COLUMNS} FROM {self._users} ORDER BY login")
        box = self._secrets()
        return [rows.user_from_row(box, row) for row in found]

    # JWT revocation ----------------------------------------------------------------------------
    async def token_generation(self, login: str) -> int:
        validation.text("login", login)
        row = await self._one(f"SELECT generation FROM {self._generations} WHERE login = ?", login)
        return 0 if row is None else int(row["generation"])

    async def revoke_tokens(self, login: str) -> int:
        validation.text("login", login)
        async with self._transaction() as tx:
            await tx.run(
                f"""INSERT INTO {self._generations} (login, generation, revoked_at) VALUES (?, 1, ?)
                ON CONFLICT (login) DO UPDATE SET generation = {self._generations}.generation + 1,
                    revoked_at = excluded.revoked_at""",
                login, rows.now(),
            )
            row = await tx.one(f"SELECT generation FROM {self._generations} WHERE login = ?", login)
        assert row is not None
        return int(row["generation"])

    # device tokens ---------------------------------------------------------------------------
    async def put_token(self, token: DeviceToken) -> str | None:
        validation.device_token(token)
        key = (token.kind, token.topic, token.token)
        stamp = float(token.created_at or rows.now())
        # Lock the row if it exists; if it does not, insert without overwriting a concurrent
        # insert and try again, so the previous owner is always reported.
        for _ in range(PUT_TOKEN_ATTEMPTS):
            async with self._transaction() as tx:
                try:
                    row = await tx.one(f"SELECT login FROM {self._tokens} WHERE {TOKEN_KEY}{self._lock_row}", *key)
                    if row is None:
                        inserted = await tx.run(
                            f"""INSERT INTO {self._tokens} ({rows.TOKEN_COLUMNS})
                            VALUES ({rows.placeholders(rows.TOKEN_COLUMNS)}) ON CONFLICT DO NOTHING""",
                            *rows.token_values(token, stamp),
                        )
                        if inserted == 1:
                            return None
                        continue
                    if row["login"] == token.login:
                        await tx.run(f"UPDATE {self._tokens} SET sandbox = ? WHERE {TOKEN_KEY}", token.sandbox, *key)
                        return None
                    await tx.run(
                        f"""UPDATE {self._tokens} SET login = ?, sandbox = ?, created_at = ?,
                            last_result = NULL, last_result_at = NULL WHERE {TOKEN_KEY}""",
                        token.login, token.sandbox, stamp, *key,
                    )
                    return str(row["login"])
                except self._foreign_key_errors:
                    raise InvalidRecord(f"device token for {token.login!r}: that user is not stored") from None
        raise StoreError("device token: registration kept racing with concurrent changes; try again")

    async def get_token(self, kind: str, topic: str, token: str) -> DeviceToken | None:
        key = validation.token_key(kind, topic, token)
        row = await self._one(f"SELECT {rows.TOKEN_COLUMNS} FROM {self._tokens} WHERE {TOKEN_KEY}", *key)
        return None if row is None else rows.token_from_row(row)

    async def delete_token(self, kind: str, topic: str, token: str, login: str | None = None) -> bool:
        key = validation.token_key(kind, topic, token)
        if login is None:
            return await self._run(f"DELETE FROM {self._tokens} WHERE {TOKEN_KEY}", *key) > 0
        validation.text("login", login)
        return await self._run(f"DELETE FROM {self._tokens} WHERE {TOKEN_KEY} AND login = ?", *key, login) > 0

    @property
    def _tokens_of_user(self) -> str:
        return (f"SELECT {rows.TOKEN_COLUMNS} FROM {self._tokens} WHERE login = ? "
                "ORDER BY created_at, kind, topic, token")

    async def tokens_for_user(self, login: str) -> list[DeviceToken]:
        validation.text("login", login)
        found = await self._all(self._tokens_of_user, login)
        return [rows.token_from_row(row) for row in found]

    async def list_tokens(self) -> list[DeviceToken]:
        found = await self._all(
            f"SELECT {rows.TOKEN_COLUMNS} FROM {self._tokens} ORDER BY login, created_at, kind, topic, token"
        )
        return [rows.token_from_row(row) for row in found]

    async def set_token_result(self, kind: str, topic: str, token: str, result: str, at: float) -> None:
        key = validation.token_key(kind, topic, token)
        validation.text("result", result, allow_empty=True)
        validation.timestamp("at", at)
        await self._run(
            f"UPDATE {self._tokens} SET last_result = ?, last_result_at = ? WHERE {TOKEN_KEY}", result, float(at), *key
        )

    # bulk import ------------------------------------------------------------------------------
    async def import_records(self, users: Sequence[UserRecord], tokens: Sequence[DeviceToken], *,
                             source: str, dry_run: bool = False) -> ImportOutcome:
        for user in users:
            validation.user(user)
        for token in tokens:
            validation.device_token(token)
        validation.text("source", source)
        box = self._secrets()
        try:
            async with self._transaction() as tx:
                outcome = await self._import(tx, box, users, tokens)
                await tx.run(
                    f"""INSERT INTO {self._meta} (name, value) VALUES (?, ?)
                    ON CONFLICT (name) DO UPDATE SET value = excluded.value""", IMPORT_SOURCE, source,
                )
                if dry_run:
                    raise _DryRun(outcome)
        except _DryRun as rolled_back:
            return rolled_back.outcome
        return outcome

    async def _import(self, tx: Transaction, box: SecretBox, users: Sequence[UserRecord],
                      tokens: Sequence[DeviceToken]) -> ImportOutcome:
        stored = {row["login"]: rows.user_from_row(box, row)
                  for row in await tx.all(f"SELECT {rows.USER_COLUMNS} FROM {self._users}")}
        added, unchanged, kept = [], [], []
        new_users: dict[str, UserRecord] = {}
        for user in users:
            old = stored.get(user.login) or new_users.get(user.login)
            if old is None:
                new_users[user.login] = user
                added.append(user.login)
            elif (old.host, old.mx_login, old.password) == (user.host, user.mx_login, user.password):
                unchanged.append(user.login)
            else:
                kept.append(user.login)
        stamp = rows.now()
        await tx.many(
            f"""INSERT INTO {self._users} ({rows.USER_COLUMNS}) VALUES ({rows.placeholders(rows.USER_COLUMNS)})
            ON CONFLICT DO NOTHING""",
            [rows.user_values(box, u, stamp) for u in new_users.values()],
        )
        owners = {(row["kind"], row["topic"], row["token"]): row["login"]
                  for row in await tx.all(f"SELECT kind, topic, token, login FROM {self._tokens}")}
        known = stored.keys() | new_users.keys()
        t_added, t_unchanged, t_kept, t_orphans = [], [], [], []
        for token in tokens:
            key = (token.kind, token.topic, token.token)
            owner = owners.get(key)
            if owner is None and token.login not in known:
                t_orphans.append(token)
            elif owner is None:
                owners[key] = token.login
                t_added.append(token)
            elif owner == token.login:
                t_unchanged.append(token)
            else:
                t_kept.append(token)
        await tx.many(
            f"""INSERT INTO {self._tokens} ({rows.TOKEN_COLUMNS}) VALUES ({rows.placeholders(rows.TOKEN_COLUMNS)})
            ON CONFLICT DO NOTHING""",
            [rows.token_values(t, stamp) for t in t_added],
        )
        return ImportOutcome(
            users_added=tuple(added), users_unchanged=tuple(unchanged), users_kept=tuple(kept),
            tokens_added=tuple(t_added), tokens_unchanged=tuple(t_unchanged), tokens_kept=tuple(t_kept),
            tokens_without_user=tuple(t_orphans),
        )

    async def import_source(self) -> str | None:
        return await self._get_meta(IMPORT_SOURCE)

    # signing keys ----------------------------------------------------------------------------
    async def put_signing_key(self, key: SigningKey) -> None:
        validation.signing_key(key)
        sealed = rows.seal_private_key(self._secrets(), key)
        await self._run(
            f"""INSERT INTO {self._keys} ({rows.KEY_COLUMNS}) VALUES (?, ?, ?)
            ON CONFLICT (kid) DO UPDATE SET private_pem_enc = excluded.private_pem_enc,
                created_at = excluded.created_at""",
            key.kid, sealed, float(key.created_at or rows.now()),
        )

    async def list_signing_keys(self) -> list[SigningKey]:
        found = await self._all(f"SELECT {rows.KEY_COLUMNS} FROM {self._keys} ORDER BY created_at, kid")
        box = self._secrets()
        return [rows.key_from_row(box, row) for row in found]

    async def delete_signing_key(self, kid: str) -> None:
        validation.text("kid", kid)
        await self._run(f"DELETE FROM {self._keys} WHERE kid = ?", kid)

    # MX certificates (rows of store_meta named MX_CERT + address) -------------------------------
    async def mx_certificates(self) -> dict[str, str]:
        found = await self._all(f"SELECT name, value FROM {self._meta} WHERE name LIKE ? ORDER BY name",
                                MX_CERT + "%")
        return {str(row["name"])[len(MX_CERT):]: str(row["value"]) for row in found}

    async def trust_mx_certificate(self, address: str, fingerprint: str) -> str:
        validation.text("address", address)
        await self._add_meta(MX_CERT + address, fingerprint)
        kept = await self._get_meta(MX_CERT + address)
        return kept if kept is not None else fingerprint

    async def forget_mx_certificates(self, address: str | None = None) -> int:
        if address is None:
            return await self._run(f"DELETE FROM {self._meta} WHERE name LIKE ?", MX_CERT + "%")
        return await self._run(f"DELETE FROM {self._meta} WHERE name = ?", MX_CERT + address)

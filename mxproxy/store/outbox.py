"""Webhook subscriptions and the outbox of their deliveries, over SQL for both dialects.

A delivery row is written before anything is sent (at-least-once) and moves
``pending → delivering → delivered | failed``: ``delivering`` is a claim with an owner and an
expiry on the database clock, so a crashed instance's claims are taken over once they lapse, and
with PostgreSQL several instances share the work (``FOR UPDATE SKIP LOCKED``). A row is claimable
only while no earlier row of its ordering key (the call, or the user for other events) is still
open, which keeps one call's events in order at the receiver.

Duplicates are refused by two unique keys: (webhook, user, event id), and for the call
transitions that happen once per call (webhook, user, type, call UUID): after a cluster handover
the new owner may describe the same ringing call again under a new event id.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Sequence

from mxproxy.store import rows, validation
from mxproxy.store.base import InvalidRecord, StoreError

STATES = ("pending", "delivering", "delivered", "failed")
OPEN_STATES = ("pending", "delivering")
#: how a retry or park was decided (``finish_delivery``)
OUTCOMES = ("delivered", "retry", "failed")

WEBHOOK_COLUMNS = (
    "id, url, events, users, secret_enc, enabled, disabled_reason, disabled_at, consecutive_failures, "
    "total_failures, total_delivered, last_success_at, last_failure_at, created_at, updated_at"
)
DELIVERY_COLUMNS = (
    "id, webhook_id, login, event_id, event_type, transition, ordering_key, message_id, payload, state, "
    "attempts, next_attempt_at, retry_from, claimed_by, claim_expires_at, last_status, last_error, "
    "event_time, created_at, delivered_at"
)
#: the columns of a delivery listing (everything but the payload)
DELIVERY_SUMMARY = DELIVERY_COLUMNS.replace(" payload,", "")
MAX_URL = 2048


def webhook_secret_aad(webhook_id: str) -> str:
    return f"webhooks.secret:{webhook_id}"


def new_webhook_id() -> str:
    return "wh_" + secrets.token_hex(8)


def new_message_id() -> str:
    """The ``webhook-id`` header: the same on every attempt of one delivery (receivers dedupe)."""
    return "msg_" + secrets.token_hex(12)


@dataclass(frozen=True)
class WebhookRecord:
    id: str
    url: str
    events: tuple[str, ...]  # type patterns as given ("call.*", "voicemail.new")
    users: tuple[str, ...] | None  # None: every user
    secret: str = field(repr=False)  # "whsec_…", clear (encrypted in the store)
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: float | None = None
    consecutive_failures: int = 0  # parked deliveries since the last success
    total_failures: int = 0
    total_delivered: int = 0
    last_success_at: float | None = None
    last_failure_at: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True)
class NewDelivery:
    """One (event, subscription) the outbox writer stores."""

    webhook_id: str
    login: str
    event_id: int
    event_type: str
    ordering_key: str
    payload: bytes = field(repr=False)
    event_time: float
    transition: str | None = None  # the call UUID for once-per-call transitions
    message_id: str = field(default_factory=new_message_id)


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    webhook_id: str
    login: str
    event_id: int
    event_type: str
    transition: str | None
    ordering_key: str
    message_id: str
    state: str
    attempts: int
    next_attempt_at: float
    retry_from: float
    claimed_by: str | None
    claim_expires_at: float | None
    last_status: int | None
    last_error: str | None
    event_time: float
    created_at: float
    delivered_at: float | None
    payload: bytes | None = field(default=None, repr=False)  # None in listings


@dataclass(frozen=True)
class Finished:
    """One attempt's outcome, for ``finish_deliveries``."""

    delivery_id: int
    outcome: str  # delivered | retry | failed
    status: int | None = None
    error: str | None = None
    retry_in: float = 0.0


@dataclass(frozen=True)
class FinishResult:
    recorded: bool  # False: our claim had lapsed and another instance holds the row now
    disabled: bool = False  # this result disabled the endpoint (threshold reached)


_UNSET: Any = object()


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _webhook(box: Any, row: rows.Row) -> WebhookRecord:
    webhook_id = row["id"]
    users = row["users"]
    return WebhookRecord(
        id=webhook_id,
        url=row["url"],
        events=tuple(json.loads(row["events"])),
        users=None if users is None else tuple(json.loads(users)),
        secret=box.decrypt(row["secret_enc"], webhook_secret_aad(webhook_id)).decode("utf-8"),
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        disabled_at=_opt_float(row["disabled_at"]),
        consecutive_failures=int(row["consecutive_failures"]),
        total_failures=int(row["total_failures"]),
        total_delivered=int(row["total_delivered"]),
        last_success_at=_opt_float(row["last_success_at"]),
        last_failure_at=_opt_float(row["last_failure_at"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def _delivery(row: rows.Row, *, payload: bool) -> DeliveryRecord:
    return DeliveryRecord(
        id=int(row["id"]),
        webhook_id=row["webhook_id"],
        login=row["login"],
        event_id=int(row["event_id"]),
        event_type=row["event_type"],
        transition=row["transition"],
        ordering_key=row["ordering_key"],
        message_id=row["message_id"],
        state=row["state"],
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        retry_from=float(row["retry_from"]),
        claimed_by=row["claimed_by"],
        claim_expires_at=_opt_float(row["claim_expires_at"]),
        last_status=None if row["last_status"] is None else int(row["last_status"]),
        last_error=row["last_error"],
        event_time=float(row["event_time"]),
        created_at=float(row["created_at"]),
        delivered_at=_opt_float(row["delivered_at"]),
        payload=bytes(row["payload"]) if payload else None,
    )


def _texts(name: str, values: Sequence[str]) -> list[str]:
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise InvalidRecord(f"{name}: expected a list of strings")
    return [validation.text(name, v) for v in values]


def _url(url: str) -> str:
    validation.text("url", url)
    if len(url) > MAX_URL:
        raise InvalidRecord(f"url: longer than {MAX_URL} characters")
    return url


class WebhookStatements:
    """Mixed into ``SQLStore`` (``_one``, ``_all``, ``_run``, ``_transaction``, ``_now``, ``_secrets``)."""

    _webhooks = "webhooks"
    _deliveries = "webhook_deliveries"
    #: appended to the claim's inner SELECT (PostgreSQL: skip rows another instance is claiming)
    _skip_locked = ""
    #: rows (id, status) of a JSON array of ``[id, status]`` pairs given as one parameter
    _json_id_status = ("SELECT json_extract(j.value, '$[0]') AS id, json_extract(j.value, '$[1]') AS status "
                       "FROM json_each(?) AS j")
    #: delivered rows and their endpoints' counters in one statement (``{d}``, ``{w}``, ``{now}``,
    #: ``{pairs}``; parameters: the pairs, the owner), for a dialect with data-modifying CTEs
    _delivered_cte: str | None = None

    # subscriptions ------------------------------------------------------------------------
    async def create_webhook(self, url: str, events: Sequence[str], users: Sequence[str] | None,
                             secret: str) -> WebhookRecord:
        _url(url)
        patterns = _texts("events", events)
        if not patterns:
            raise InvalidRecord("events: must not be empty")
        who = None if users is None else _texts("users", users)
        validation.text("secret", secret)
        webhook_id = new_webhook_id()
        sealed = self._secrets().encrypt(secret.encode("utf-8"), webhook_secret_aad(webhook_id))  # type: ignore[attr-defined]
        stamp = rows.now()
        await self._run(  # type: ignore[attr-defined]
            f"""INSERT INTO {self._webhooks} (id, url, events, users, secret_enc, enabled, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
            webhook_id, url, json.dumps(patterns), None if who is None else json.dumps(who), sealed, True,
            stamp, stamp,
        )
        found = await self.get_webhook(webhook_id)
        assert found is not None
        return found

    async def get_webhook(self, webhook_id: str) -> WebhookRecord | None:
        validation.text("webhook id", webhook_id)
        row = await self._one(f"SELECT {WEBHOOK_COLUMNS} FROM {self._webhooks} WHERE id = ?", webhook_id)  # type: ignore[attr-defined]
        return None if row is None else _webhook(self._secrets(), row)  # type: ignore[attr-defined]

    async def list_webhooks(self) -> list[WebhookRecord]:
        found = await self._all(f"SELECT {WEBHOOK_COLUMNS} FROM {self._webhooks} ORDER BY created_at, id")  # type: ignore[attr-defined]
        box = self._secrets()  # type: ignore[attr-defined]
        return [_webhook(box, row) for row in found]

    async def update_webhook(self, webhook_id: str, *, url: str = _UNSET, events: Sequence[str] = _UNSET,
                             users: Sequence[str] | None = _UNSET, enabled: bool = _UNSET) -> WebhookRecord | None:
        """Change what is given; enabling an endpoint clears its disabled reason and failure run."""
        validation.text("webhook id", webhook_id)
        sets: list[str] = []
        params: list[Any] = []
        if url is not _UNSET:
            sets.append("url = ?")
            params.append(_url(url))
        if events is not _UNSET:
            patterns = _texts("events", events)
            if not patterns:
                raise InvalidRecord("events: must not be empty")
            sets.append("events = ?")
            params.append(json.dumps(patterns))
        if users is not _UNSET:
            sets.append("users = ?")
            params.append(None if users is None else json.dumps(_texts("users", users)))
        if enabled is not _UNSET:
            if not isinstance(enabled, bool):
                raise InvalidRecord("enabled: expected true or false")
            sets.append("enabled = ?")
            params.append(enabled)
            if enabled:
                sets.append("disabled_reason = NULL, disabled_at = NULL, consecutive_failures = 0")
            else:
                sets.append("disabled_reason = 'disabled by an operator', disabled_at = ?")
                params.append(rows.now())
        sets.append("updated_at = ?")
        params.append(rows.now())
        touched = await self._run(  # type: ignore[attr-defined]
            f"UPDATE {self._webhooks} SET {', '.join(sets)} WHERE id = ?", *params, webhook_id)
        return await self.get_webhook(webhook_id) if touched else None

    async def delete_webhook(self, webhook_id: str) -> bool:
        """The subscription and every delivery of it."""
        validation.text("webhook id", webhook_id)
        async with self._transaction() as tx:  # type: ignore[attr-defined]
            await tx.run(f"DELETE FROM {self._deliveries} WHERE webhook_id = ?", webhook_id)
            return await tx.run(f"DELETE FROM {self._webhooks} WHERE id = ?", webhook_id) > 0

    # the outbox ---------------------------------------------------------------------------
    async def enqueue_deliveries(self, items: Sequence[NewDelivery]) -> None:
        """Store a batch in one transaction; rows the unique keys say exist already are skipped,
        as are rows of a subscription deleted meanwhile."""
        if not items:
            return
        now = self._now  # type: ignore[attr-defined]
        params = [
            (d.webhook_id, d.login, int(d.event_id), d.event_type, d.transition, d.ordering_key, d.message_id,
             bytes(d.payload), float(d.event_time), d.webhook_id)
            for d in items
        ]
        await self._atomic_many(
            f"""INSERT INTO {self._deliveries} (webhook_id, login, event_id, event_type, transition,
                ordering_key, message_id, payload, state, attempts, next_attempt_at, retry_from, event_time,
                created_at)
            SELECT ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, {now}, {now}, ?, {now}
            WHERE EXISTS (SELECT 1 FROM {self._webhooks} WHERE id = ?)
            ON CONFLICT DO NOTHING""",
            params,
        )

    async def _atomic_many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """One statement once per parameter row, all or nothing (a transaction; PostgreSQL's
        executemany is atomic by itself and saves the BEGIN/COMMIT round trips)."""
        async with self._transaction() as tx:  # type: ignore[attr-defined]
            await tx.many(sql, params)

    async def claim_deliveries(self, owner: str, limit: int, claim_ttl: float) -> list[DeliveryRecord]:
        """Claim up to ``limit`` due rows of enabled endpoints for ``claim_ttl`` seconds, each the
        oldest open row of its ordering key; a lapsed claim of another owner is due too."""
        validation.text("claim owner", owner)
        now = self._now  # type: ignore[attr-defined]
        d = self._deliveries
        found = await self._all(  # type: ignore[attr-defined]
            f"""UPDATE {d} SET state = 'delivering', claimed_by = ?, claim_expires_at = {now} + ?
            WHERE id IN (
                SELECT c.id FROM {d} c JOIN {self._webhooks} w ON w.id = c.webhook_id
                WHERE w.enabled AND ((c.state = 'pending' AND c.next_attempt_at <= {now})
                                     OR (c.state = 'delivering' AND c.claim_expires_at <= {now}))
                  AND NOT EXISTS (
                    SELECT 1 FROM {d} p WHERE p.webhook_id = c.webhook_id AND p.ordering_key = c.ordering_key
                      AND p.state IN ('pending', 'delivering')
                      AND (p.event_id < c.event_id OR (p.event_id = c.event_id AND p.id < c.id)))
                ORDER BY c.next_attempt_at, c.id LIMIT ?{self._skip_locked})
              AND (state = 'pending' OR claim_expires_at <= {now})
            RETURNING {DELIVERY_COLUMNS}""",
            owner, float(claim_ttl), int(limit),
        )
        return sorted((_delivery(row, payload=True) for row in found), key=lambda r: (r.next_attempt_at, r.id))

    async def finish_delivery(self, delivery_id: int, owner: str, outcome: str, *, status: int | None = None,
                              error: str | None = None, retry_in: float = 0.0,
                              disable_after: int = 0) -> FinishResult:
        """Record an attempt of a row we claimed: ``delivered``, ``retry`` in ``retry_in`` s, or
        ``failed`` (parked). A parked row counts against its endpoint: ``disable_after`` parked in
        a row (0: never) disable it. Nothing changes when the claim is no longer ours."""
        [result] = await self.finish_deliveries(
            owner, [Finished(delivery_id, outcome, status, error, retry_in)], disable_after=disable_after)
        return result

    async def finish_deliveries(self, owner: str, finished: Sequence["Finished"], *,
                                disable_after: int = 0) -> list[FinishResult]:
        """``finish_delivery`` for many rows in one transaction (results in the same order); the
        delivered ones, the usual case, in one statement."""
        for item in finished:
            if item.outcome not in OUTCOMES:
                raise InvalidRecord(f"outcome: expected one of {', '.join(OUTCOMES)}")
        if not finished:
            return []
        results: dict[int, FinishResult] = {}
        if self._delivered_cte is not None and all(item.outcome == "delivered" for item in finished):
            # the usual round, in one statement (and one round trip) where the dialect can
            found = await self._all(  # type: ignore[attr-defined]
                self._delivered_cte.format(d=self._deliveries, w=self._webhooks, now=self._now,  # type: ignore[attr-defined]
                                           pairs=self._json_id_status),
                json.dumps([[int(item.delivery_id), item.status] for item in finished]), owner)
            recorded = {int(row["id"]) for row in found}
            return [FinishResult(recorded=item.delivery_id in recorded) for item in finished]
        async with self._transaction() as tx:  # type: ignore[attr-defined]
            delivered = [item for item in finished if item.outcome == "delivered"]
            if delivered:
                results.update(await self._finish_delivered(tx, owner, delivered))
            for item in finished:
                if item.outcome != "delivered":
                    results[item.delivery_id] = await self._finish_one(
                        tx, item.delivery_id, owner, item.outcome, status=item.status, error=item.error,
                        retry_in=item.retry_in, disable_after=disable_after)
        return [results.get(item.delivery_id, FinishResult(recorded=False)) for item in finished]

    async def _finish_delivered(self, tx: Any, owner: str, delivered: Sequence["Finished"]) -> dict[int, FinishResult]:
        now = self._now  # type: ignore[attr-defined]
        d = self._deliveries
        pairs = json.dumps([[int(item.delivery_id), item.status] for item in delivered])
        found = await tx.all(
            f"""UPDATE {d} SET state = 'delivered', attempts = attempts + 1, last_status = r.status,
                last_error = NULL, claimed_by = NULL, claim_expires_at = NULL, delivered_at = {now}
            FROM ({self._json_id_status}) AS r
            WHERE {d}.id = r.id AND {d}.claimed_by = ? AND {d}.state = 'delivering'
            RETURNING {d}.id AS id, {d}.webhook_id AS webhook_id""",
            pairs, owner,
        )
        per_webhook: dict[str, int] = {}
        for row in found:
            per_webhook[row["webhook_id"]] = per_webhook.get(row["webhook_id"], 0) + 1
        for webhook_id, count in sorted(per_webhook.items()):
            await tx.run(
                f"""UPDATE {self._webhooks} SET consecutive_failures = 0, total_delivered = total_delivered + ?,
                    last_success_at = {now} WHERE id = ?""", count, webhook_id)
        return {int(row["id"]): FinishResult(recorded=True) for row in found}

    async def _finish_one(self, tx: Any, delivery_id: int, owner: str, outcome: str, *, status: int | None,
                          error: str | None, retry_in: float, disable_after: int) -> FinishResult:
        """A retry or a parked row (the rare outcomes), with the endpoint's failure run."""
        now = self._now  # type: ignore[attr-defined]
        error = None if error is None else error[:500]
        state = "pending" if outcome == "retry" else "failed"
        row = await tx.one(
            f"""UPDATE {self._deliveries} SET state = ?, attempts = attempts + 1, last_status = ?, last_error = ?,
                next_attempt_at = {now} + ?, claimed_by = NULL, claim_expires_at = NULL
            WHERE id = ? AND claimed_by = ? AND state = 'delivering'
            RETURNING webhook_id""",
            state, status, error, float(retry_in), int(delivery_id), owner,
        )
        if row is None:
            return FinishResult(recorded=False)
        webhook_id = row["webhook_id"]
        w = self._webhooks
        if outcome == "retry":
            await tx.run(f"UPDATE {w} SET last_failure_at = {now} WHERE id = ?", webhook_id)
            return FinishResult(recorded=True)
        counted = await tx.one(
            f"""UPDATE {w} SET consecutive_failures = consecutive_failures + 1, total_failures = total_failures + 1,
                last_failure_at = {now} WHERE id = ? RETURNING consecutive_failures""", webhook_id)
        disabled = False
        if counted is not None and disable_after > 0 and int(counted["consecutive_failures"]) >= disable_after:
            disabled = await tx.run(
                f"""UPDATE {w} SET enabled = ?, disabled_reason = ?, disabled_at = {now}, updated_at = {now}
                WHERE id = ? AND enabled""",
                False, f"{disable_after} deliveries in a row failed", webhook_id) > 0
        return FinishResult(recorded=True, disabled=disabled)

    async def release_claims(self, owner: str | None) -> int:
        """Give back the rows ``owner`` still holds (a clean stop, or a restart under the same
        name): due again at once. None: every claim (a single-instance store at start, where
        any claim is a crashed predecessor's)."""
        if owner is None:
            return await self._run(  # type: ignore[attr-defined]
                f"""UPDATE {self._deliveries} SET state = 'pending', claimed_by = NULL, claim_expires_at = NULL
                WHERE state = 'delivering'""")
        return await self._run(  # type: ignore[attr-defined]
            f"""UPDATE {self._deliveries} SET state = 'pending', claimed_by = NULL, claim_expires_at = NULL
            WHERE claimed_by = ? AND state = 'delivering'""", owner)

    async def disabled_webhooks(self) -> int:
        row = await self._one(f"SELECT COUNT(*) AS n FROM {self._webhooks} WHERE NOT enabled")  # type: ignore[attr-defined]
        return 0 if row is None else int(row["n"])

    async def list_deliveries(self, webhook_id: str, *, state: str | None = None, before: int | None = None,
                              limit: int = 50) -> list[DeliveryRecord]:
        """Newest first; ``before`` a delivery id (the page after the one that ended there)."""
        validation.text("webhook id", webhook_id)
        where, params = ["webhook_id = ?"], [webhook_id]
        if state is not None:
            if state not in STATES:
                raise InvalidRecord(f"state: expected one of {', '.join(STATES)}")
            where.append("state = ?")
            params.append(state)
        if before is not None:
            where.append("id < ?")
            params.append(int(before))
        found = await self._all(  # type: ignore[attr-defined]
            f"SELECT {DELIVERY_SUMMARY} FROM {self._deliveries} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
            *params, int(limit))
        return [_delivery(row, payload=False) for row in found]

    async def get_delivery(self, webhook_id: str, delivery_id: int) -> DeliveryRecord | None:
        row = await self._one(  # type: ignore[attr-defined]
            f"SELECT {DELIVERY_COLUMNS} FROM {self._deliveries} WHERE id = ? AND webhook_id = ?",
            int(delivery_id), webhook_id)
        return None if row is None else _delivery(row, payload=True)

    async def redeliver(self, webhook_id: str, delivery_id: int) -> DeliveryRecord | None:
        """Send a delivered or parked row again: pending now, with a fresh retry period. An open
        row (pending, delivering) is left as it is. None when there is no such row."""
        now = self._now  # type: ignore[attr-defined]
        await self._run(  # type: ignore[attr-defined]
            f"""UPDATE {self._deliveries} SET state = 'pending', attempts = 0, next_attempt_at = {now},
                retry_from = {now}, delivered_at = NULL
            WHERE id = ? AND webhook_id = ? AND state IN ('delivered', 'failed')""",
            int(delivery_id), webhook_id)
        return await self.get_delivery(webhook_id, delivery_id)

    async def outbox_depth(self) -> int:
        """Open rows (pending or being delivered), every endpoint."""
        row = await self._one(  # type: ignore[attr-defined]
            f"SELECT COUNT(*) AS n FROM {self._deliveries} WHERE state IN ('pending', 'delivering')")
        return 0 if row is None else int(row["n"])

    async def prune_deliveries(self, older_than: float) -> int:
        """Forget delivered and parked rows created more than ``older_than`` s ago."""
        now = self._now  # type: ignore[attr-defined]
        return await self._run(  # type: ignore[attr-defined]
            f"""DELETE FROM {self._deliveries} WHERE state IN ('delivered', 'failed')
            AND created_at <= {now} - ?""", float(older_than))


__all__ = [
    "DeliveryRecord", "FinishResult", "Finished", "NewDelivery", "OPEN_STATES", "STATES", "StoreError", "WebhookRecord",
    "WebhookStatements", "new_message_id",
]

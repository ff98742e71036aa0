"""The cluster statements over SQL: membership rows, per-user leases, cluster-wide push claims.

Times are the database's clock (``_now``), never the callers': instances on different machines
compare ages and expiries on one clock, so a skewed host cannot steal a lease early. A renewal
round is one statement whatever the number of users (the logins travel as one JSON array).
"""

from __future__ import annotations

import json
from typing import Iterable, Mapping

from mxproxy.store import rows, validation
from mxproxy.store.base import Lease, Member, Placement


def _lease(row: rows.Row) -> Lease:
    return Lease(
        login=row["login"],
        instance=row["instance"],
        epoch=int(row["epoch"]),
        expires_in=float(row["expires_in"]),
        successor=row["successor"] or None,
    )


def _member(row: rows.Row) -> Member:
    return Member(id=row["id"], url=row["url"], started_at=float(row["started_at"]),
                  heartbeat_age=float(row["age"]), leaving=bool(row["leaving"]), holder=row["holder"] or "")


class ClusterStatements:
    """Mixed into ``SQLStore`` (which supplies ``_one``, ``_all``, ``_run``, ``_transaction`` and
    ``_users``); the dialect says how to read the clock and a JSON array."""

    _instances = "cluster_instances"
    _leases = "user_leases"
    _claims = "push_claims"
    #: The database clock in seconds since the epoch.
    _now = "((julianday('now') - 2440587.5) * 86400.0)"
    #: Rows (login, successor) of a JSON array of ``[login, successor]`` pairs given as one parameter.
    _json_pairs = (
        "SELECT json_extract(j.value, '$[0]') AS login, json_extract(j.value, '$[1]') AS successor "
        "FROM json_each(?) AS j"
    )
    #: Rows (value) of a JSON array of strings given as one parameter.
    _json_texts = "SELECT j.value AS value FROM json_each(?) AS j"

    _lease_columns = "login, instance, epoch, expires_at - {now} AS expires_in, successor"

    def _lease_select(self) -> str:
        return self._lease_columns.replace("{now}", self._now)

    # membership ---------------------------------------------------------------------------
    async def heartbeat(self, instance_id: str, url: str, *, leaving: bool = False,
                        holder: str | None = None) -> bool:
        validation.text("instance id", instance_id)
        now = self._now
        if holder is None:
            await self._run(
                f"""INSERT INTO {self._instances} (id, url, started_at, heartbeat_at, leaving)
                VALUES (?, ?, {now}, {now}, ?)
                ON CONFLICT (id) DO UPDATE SET url = excluded.url, heartbeat_at = excluded.heartbeat_at,
                    leaving = excluded.leaving""",
                instance_id, url, bool(leaving),
            )
            return True
        row = await self._one(
            f"""INSERT INTO {self._instances} AS i (id, url, started_at, heartbeat_at, leaving, holder)
            VALUES (?, ?, {now}, {now}, ?, ?)
            ON CONFLICT (id) DO UPDATE SET url = excluded.url, heartbeat_at = excluded.heartbeat_at,
                leaving = excluded.leaving
            WHERE i.holder = excluded.holder
            RETURNING id""",
            instance_id, url, bool(leaving), holder,
        )
        return row is not None

    async def join_cluster(self, instance_id: str, url: str, holder: str, *, ttl: float,
                           dead_holder: str | None = None) -> Member | None:
        validation.text("instance id", instance_id)
        now = self._now
        async with self._transaction() as tx:
            row = await tx.one(
                f"""INSERT INTO {self._instances} AS i (id, url, started_at, heartbeat_at, leaving, holder)
                VALUES (?, ?, {now}, {now}, ?, ?)
                ON CONFLICT (id) DO UPDATE SET url = excluded.url, started_at = excluded.started_at,
                    heartbeat_at = excluded.heartbeat_at, leaving = excluded.leaving, holder = excluded.holder
                WHERE i.holder = excluded.holder OR i.heartbeat_at <= {now} - ? OR i.holder = ?
                RETURNING id""",
                instance_id, url, False, holder, float(ttl), dead_holder or "",
            )
            if row is not None:
                await tx.run(f"UPDATE {self._leases} SET epoch = epoch + 1 WHERE instance = ?", instance_id)
                return None
            found = await tx.one(
                f"SELECT id, url, started_at, {now} - heartbeat_at AS age, leaving, holder "
                f"FROM {self._instances} WHERE id = ?", instance_id)
        if found is None:  # deleted in between: whoever held it left; try once more
            return await self.join_cluster(instance_id, url, holder, ttl=ttl, dead_holder=dead_holder)
        return _member(found)

    async def members(self) -> list[Member]:
        found = await self._all(
            f"SELECT id, url, started_at, {self._now} - heartbeat_at AS age, leaving, holder "
            f"FROM {self._instances} ORDER BY id"
        )
        return [_member(r) for r in found]

    async def leave_cluster(self, instance_id: str, holder: str | None = None) -> None:
        async with self._transaction() as tx:
            if holder is not None:  # only while the id is still this process's
                row = await tx.one(f"SELECT holder FROM {self._instances} WHERE id = ?", instance_id)
                if row is not None and row["holder"] != holder:
                    return
            await tx.run(f"UPDATE {self._leases} SET expires_at = {self._now} WHERE instance = ?", instance_id)
            await tx.run(f"DELETE FROM {self._instances} WHERE id = ?", instance_id)

    # leases -------------------------------------------------------------------------------
    async def placements(self) -> list[Placement]:
        found = await self._all(
            f"""SELECT u.login AS login, l.instance AS instance, l.epoch AS epoch,
                l.expires_at - {self._now} AS expires_in, l.successor AS successor
            FROM {self._users} u LEFT JOIN {self._leases} l ON l.login = u.login
            WHERE NOT u.needs_reauth ORDER BY u.login"""
        )
        return [Placement(r["login"], None if r["instance"] is None else _lease(r)) for r in found]

    async def renew_leases(self, instance_id: str, wanted: Mapping[str, str | None], ttl: float) -> dict[str, Lease]:
        validation.text("instance id", instance_id)
        if not wanted:
            return {}
        pairs = json.dumps([[login, successor] for login, successor in wanted.items()])
        now = self._now
        found = await self._all(
            f"""INSERT INTO {self._leases} AS l (login, instance, epoch, expires_at, successor, previous, changed_at)
            SELECT w.login, ?, 1, {now} + ?, w.successor, NULL, {now} FROM ({self._json_pairs}) AS w
            WHERE w.login IS NOT NULL
            ON CONFLICT (login) DO UPDATE SET
                epoch = CASE WHEN l.instance = excluded.instance THEN l.epoch ELSE l.epoch + 1 END,
                previous = CASE WHEN l.instance = excluded.instance THEN l.previous ELSE l.instance END,
                changed_at = CASE WHEN l.instance = excluded.instance THEN l.changed_at ELSE excluded.changed_at END,
                instance = excluded.instance,
                expires_at = excluded.expires_at,
                successor = CASE WHEN l.instance = excluded.instance THEN excluded.successor ELSE NULL END
            WHERE l.instance = excluded.instance OR l.expires_at <= {now} OR l.successor = excluded.instance
            RETURNING {self._lease_select()}""",
            instance_id, float(ttl), pairs,
        )
        return {r["login"]: _lease(r) for r in found}

    async def lease_of(self, login: str) -> Lease | None:
        row = await self._one(f"SELECT {self._lease_select()} FROM {self._leases} WHERE login = ?", login)
        return None if row is None else _lease(row)

    async def release_leases(self, instance_id: str, logins: Iterable[str]) -> None:
        names = json.dumps(sorted(set(logins)))
        await self._run(
            f"""UPDATE {self._leases} SET expires_at = {self._now}
            WHERE instance = ? AND login IN ({self._json_texts})""",
            instance_id, names,
        )

    # pushes -------------------------------------------------------------------------------
    async def claim_push(self, login: str, item: str, fingerprint: str, *, instance_id: str, epoch: int,
                         window: float, grace: float = 0.0, message: str | None = None) -> bool:
        now = self._now
        row = await self._one(
            f"""INSERT INTO {self._claims} AS c (login, item, fingerprint, claimed_at, instance, epoch, message, sent_at)
            SELECT l.login, ?, ?, {now}, ?, ?, ?, NULL FROM {self._leases} l
            WHERE l.login = ? AND (
                (l.instance = ? AND l.epoch = ? AND l.expires_at > {now})
                OR (l.previous = ? AND l.epoch = ? + 1 AND l.changed_at > {now} - ?))
            ON CONFLICT (login, item) DO UPDATE SET fingerprint = excluded.fingerprint,
                claimed_at = excluded.claimed_at, instance = excluded.instance, epoch = excluded.epoch,
                message = excluded.message, sent_at = NULL
            WHERE c.fingerprint <> excluded.fingerprint OR c.claimed_at <= excluded.claimed_at - ?
            RETURNING login""",
            item, fingerprint, instance_id, int(epoch), message, login, instance_id, int(epoch), instance_id,
            int(epoch), float(grace), float(window),
        )
        return row is not None

    async def push_sent(self, login: str, item: str, *, instance_id: str, epoch: int) -> None:
        await self._run(
            f"""UPDATE {self._claims} SET sent_at = {self._now}
            WHERE login = ? AND item = ? AND instance = ? AND epoch = ? AND sent_at IS NULL""",
            login, item, instance_id, int(epoch),
        )

    async def reclaim_unsent_pushes(self, instance_id: str, *, ttl: float, window: float) -> list[tuple[str, str, str]]:
        now = self._now
        found = await self._all(
            f"""UPDATE {self._claims} AS c SET instance = ?, claimed_at = {now},
                epoch = (SELECT l.epoch FROM {self._leases} l WHERE l.login = c.login)
            WHERE c.sent_at IS NULL AND c.message IS NOT NULL AND c.claimed_at > {now} - ?
                AND c.claimed_at <= {now} - ?
                AND EXISTS (SELECT 1 FROM {self._leases} l WHERE l.login = c.login AND l.instance = ?
                    AND l.expires_at > {now} AND c.epoch < l.epoch)
                AND (c.instance = ? OR NOT EXISTS (
                    SELECT 1 FROM {self._instances} i WHERE i.id = c.instance AND i.heartbeat_at > {now} - ?))
            RETURNING login, item, message""",
            instance_id, float(window), float(ttl) / 2, instance_id, instance_id, float(ttl),
        )
        return [(r["login"], r["item"], r["message"]) for r in found]

    async def cluster_housekeeping(self, *, dead_after: float, claims_after: float) -> None:
        now = self._now
        async with self._transaction() as tx:
            await tx.run(f"DELETE FROM {self._instances} WHERE heartbeat_at <= {now} - ?", float(dead_after))
            await tx.run(f"DELETE FROM {self._claims} WHERE claimed_at <= {now} - ?", float(claims_after))
            await tx.run(f"DELETE FROM {self._leases} WHERE login NOT IN (SELECT login FROM {self._users})")

"""The storage contract: users, device tokens and signing keys.

Implementations keep secrets (MX passwords, private signing keys) encrypted at rest; callers
always see clear values. SQL lives only in this package.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence


class StoreError(Exception):
    """The store is unreachable or refused an operation."""


class InvalidRecord(StoreError, ValueError):
    """A value the store refuses (empty login, unknown token kind, a token for a user that is not
    stored, ...). Nothing was written."""


@dataclass(frozen=True)
class UserRecord:
    """A signed-in user: where their MX is and how to log in to it again after a restart."""

    login: str  # MX login (account_name); the JWT "sub"
    host: str  # "address:port"
    mx_login: str  # login sent to the MX (normally == login)
    password: str = field(repr=False)  # clear MX password (encrypted in the store)
    needs_reauth: bool = False  # MX rejected the stored password; tokens stop working
    created_at: float = 0.0
    updated_at: float = 0.0
    sign_in_name: str = ""  # what the user typed at POST /auth (e.g. an e-mail); "" = unknown


@dataclass(frozen=True)
class DeviceToken:
    kind: str  # "apn" | "fcm"
    topic: str  # APNs bundle/topic or FCM app id (no "~" sandbox suffix)
    token: str
    login: str
    sandbox: bool = False
    created_at: float = 0.0
    last_result: str | None = None  # "ok", "BadDeviceToken", "transport: …", …
    last_result_at: float | None = None


@dataclass(frozen=True)
class Member:
    """One instance of a cluster as its membership row says (ages are by the store's clock)."""

    id: str
    url: str  # base URL peers reach its public API at (``[cluster] advertise``)
    started_at: float
    heartbeat_age: float  # seconds since its last heartbeat
    leaving: bool = False  # handing its users over before it stops
    holder: str = ""  # the process running under this id ("host:pid:token"; "" before schema 6)


@dataclass(frozen=True)
class Lease:
    """Who owns a user's MX session. ``epoch`` grows by one whenever the owner changes, so an
    instance that lost the lease (paused, partitioned) is fenced off by comparing it."""

    login: str
    instance: str
    epoch: int
    expires_in: float  # seconds until it lapses (negative: lapsed), by the store's clock
    successor: str | None = None  # the instance the holder hands the user over to


@dataclass(frozen=True)
class Placement:
    """A stored user that wants a session (not ``needs_reauth``) and its lease, if any."""

    login: str
    lease: Lease | None


class ClusterUnsupported(StoreError):
    """This store cannot coordinate several instances (SQLite is single-instance)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_pem: bytes = field(repr=False)  # PKCS#8 PEM, clear (encrypted in the store)
    created_at: float = 0.0


@dataclass(frozen=True)
class ImportOutcome:
    """What ``import_records`` did with each record (or, in a dry run, would have done)."""

    users_added: tuple[str, ...] = ()
    users_unchanged: tuple[str, ...] = ()  # stored already with the same host, MX login, password
    users_kept: tuple[str, ...] = ()  # stored already with other values: the store's are newer, kept
    tokens_added: tuple[DeviceToken, ...] = ()
    tokens_unchanged: tuple[DeviceToken, ...] = ()
    tokens_kept: tuple[DeviceToken, ...] = ()  # registered to another user in the store: kept
    tokens_without_user: tuple[DeviceToken, ...] = ()  # owner neither stored nor imported: skipped

    @property
    def changed(self) -> bool:
        return bool(self.users_added or self.tokens_added)


class Store(abc.ABC):
    """Async storage. Opened once per process; safe for concurrent use by many tasks."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and migrate the schema to the current version."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreError if the store cannot be reached (used by /readyz)."""

    # users ---------------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_user(self, login: str) -> UserRecord | None: ...

    async def find_user(self, name: str) -> UserRecord | None:
        """The user whose MX login is ``name``, else the one who last signed in as ``name``
        (case-insensitive): the admin API accepts either (README's ``dmitrys@xyzrd.com``)."""
        user = await self.get_user(name)
        if user is not None:
            return user
        folded = name.casefold()
        named = [u for u in await self.list_users() if u.sign_in_name and u.sign_in_name.casefold() == folded]
        return max(named, key=lambda u: u.updated_at, default=None)

    @abc.abstractmethod
    async def put_user(self, user: UserRecord) -> None:
        """Insert or replace; keeps created_at of an existing row (and its sign-in name when
        the new record has none)."""

    @abc.abstractmethod
    async def set_user_needs_reauth(self, login: str, needs_reauth: bool) -> bool:
        """Returns False when the user does not exist."""

    @abc.abstractmethod
    async def delete_user(self, login: str) -> bool:
        """Remove the user **and their device tokens**; False when the user did not exist."""

    @abc.abstractmethod
    async def list_users(self) -> list[UserRecord]: ...

    # JWT revocation ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def token_generation(self, login: str) -> int:
        """The user's current JWT generation: 0 until their tokens are first revoked. Kept when
        the user is deleted, so a token from before a sign-out stays dead after a new sign-in."""

    @abc.abstractmethod
    async def revoke_tokens(self, login: str) -> int:
        """Bump the user's JWT generation (every token issued before stops working); returns the
        new generation. Atomic: concurrent revocations each add one."""

    # device tokens ---------------------------------------------------------------------------
    @abc.abstractmethod
    async def put_token(self, token: DeviceToken) -> str | None:
        """Register (kind, topic, token) for token.login. A token belongs to one user at a
        time: returns the previous owner's login when it moved, else None."""

    @abc.abstractmethod
    async def get_token(self, kind: str, topic: str, token: str) -> DeviceToken | None: ...

    @abc.abstractmethod
    async def delete_token(self, kind: str, topic: str, token: str, login: str | None = None) -> bool:
        """Delete; with ``login`` only if owned by that user. False when nothing matched."""

    @abc.abstractmethod
    async def tokens_for_user(self, login: str) -> list[DeviceToken]: ...

    @abc.abstractmethod
    async def list_tokens(self) -> list[DeviceToken]: ...

    @abc.abstractmethod
    async def set_token_result(self, kind: str, topic: str, token: str, result: str, at: float) -> None: ...

    # bulk import (MX Proxy 2.3's store, mxproxy/upgrade/) -------------------------------------
    @abc.abstractmethod
    async def import_records(self, users: Sequence[UserRecord], tokens: Sequence[DeviceToken], *,
                             source: str, dry_run: bool = False) -> ImportOutcome:
        """Add users and device tokens the store does not hold yet, all in one transaction, and
        record ``source`` as imported (``import_source``). Records already stored are left as
        they are, so a second run changes nothing. ``dry_run`` reports and rolls back."""

    @abc.abstractmethod
    async def import_source(self) -> str | None:
        """What the last committed ``import_records`` recorded as its source, or None."""

    # signing keys ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def put_signing_key(self, key: SigningKey) -> None: ...

    @abc.abstractmethod
    async def list_signing_keys(self) -> list[SigningKey]:
        """All keys, oldest first."""

    @abc.abstractmethod
    async def delete_signing_key(self, kid: str) -> None: ...

    # MX certificates trusted on first use ([mx] tlsTrustOnFirstUse) -------------------------
    async def mx_certificates(self) -> dict[str, str]:
        """Trusted SHA-256 fingerprints by MX address (``host:port``)."""
        raise StoreError("this store cannot keep MX certificate fingerprints")

    async def trust_mx_certificate(self, address: str, fingerprint: str) -> str:
        """Keep ``fingerprint`` for ``address`` unless one is kept already; the kept one (so of
        two instances meeting a new MX at once, the first to write wins for both)."""
        raise StoreError("this store cannot keep MX certificate fingerprints")

    async def forget_mx_certificates(self, address: str | None = None) -> int:
        """Forget the fingerprint of ``address`` (None: of every MX); how many were forgotten."""
        raise StoreError("this store cannot keep MX certificate fingerprints")

    # single instance or cluster ------------------------------------------------------------------
    #: True when several processes may share this store as one service (PostgreSQL).
    shared = False

    async def claim_exclusive_use(self) -> None:
        """Called once by ``mxproxy serve``: a store that serves a single instance refuses a
        second process (StoreError naming the holder); a shared store accepts any number."""

    # The cluster statements (implemented over SQL for both dialects; see store/cluster.py).
    async def heartbeat(self, instance_id: str, url: str, *, leaving: bool = False,
                        holder: str | None = None) -> bool:
        """Register or renew ``instance_id``. With ``holder``, only while the row is that
        process's: False when another process took the id over (this one must stop acting)."""
        raise ClusterUnsupported("this store does not keep cluster membership")

    async def join_cluster(self, instance_id: str, url: str, holder: str, *, ttl: float,
                           dead_holder: str | None = None) -> Member | None:
        """Take ``instance_id`` for the process ``holder``: None when it is ours now (free, ours,
        its heartbeat older than ``ttl``, or held by ``dead_holder``, a process known to be gone),
        else the live member that holds it. Taking it raises the epoch of every lease under the
        id, so pushes claimed by a previous process of that id count as another owner's."""
        raise ClusterUnsupported("this store does not keep cluster membership")

    async def members(self) -> list[Member]:
        raise ClusterUnsupported("this store does not keep cluster membership")

    async def leave_cluster(self, instance_id: str, holder: str | None = None) -> None:
        raise ClusterUnsupported("this store does not keep cluster membership")

    async def placements(self) -> list[Placement]:
        raise ClusterUnsupported("this store does not keep leases")

    async def renew_leases(self, instance_id: str, wanted: Mapping[str, str | None], ttl: float) -> dict[str, Lease]:
        """One statement for a whole round: take or renew the lease of every login in ``wanted``
        (value: the successor to hand it to, or None) where it is free, lapsed, already ours or
        handed to us. Returns the leases held afterwards; a login missing is owned by another."""
        raise ClusterUnsupported("this store does not keep leases")

    async def lease_of(self, login: str) -> Lease | None:
        raise ClusterUnsupported("this store does not keep leases")

    async def release_leases(self, instance_id: str, logins: Iterable[str]) -> None:
        """Let our leases of ``logins`` lapse now (another instance may take them at once)."""
        raise ClusterUnsupported("this store does not keep leases")

    async def claim_push(self, login: str, item: str, fingerprint: str, *, instance_id: str, epoch: int,
                         window: float, grace: float = 0.0, message: str | None = None) -> bool:
        """Fenced, cluster-wide duplicate filter: True when this instance, holding ``login``'s
        lease at ``epoch``, is the first to push ``fingerprint`` for ``item`` (a call or mail)
        within ``window`` seconds; False for a repeat or a lost (or lapsed) lease. The holder
        of the previous epoch may still claim for ``grace`` seconds after the lease moved (its
        session covers the new owner's MX login; the claim keeps it to one push).

        The claim is phase one of two: it records the claimer, its epoch and ``message`` (the
        push, JSON) as not sent; ``push_sent`` is phase two. A claim whose claimer died before
        phase two is sent again by the user's next owner (``reclaim_unsent_pushes``)."""
        raise ClusterUnsupported("this store does not keep push claims")

    async def push_sent(self, login: str, item: str, *, instance_id: str, epoch: int) -> None:
        """Phase two of a claim: its sends were made (whatever the providers answered)."""
        raise ClusterUnsupported("this store does not keep push claims")

    async def reclaim_unsent_pushes(self, instance_id: str, *, ttl: float, window: float) -> list[tuple[str, str, str]]:
        """Claims, younger than ``window`` s, of users whose lease ``instance_id`` now holds,
        made at an older epoch by a claimer that is gone (no heartbeat for ``ttl`` s, or a
        previous process of this very id) and never marked sent: they become this instance's
        (a claim younger than ``ttl / 2`` is left alone: a claimer that died made its last claims
        at least 2/3 TTL before its heartbeat lapsed, one that just left gracefully is still
        finishing its sends)
        claims at its epoch (one statement, so two survivors never both get one), returned as
        (login, item, message) for sending."""
        raise ClusterUnsupported("this store does not keep push claims")

    async def cluster_housekeeping(self, *, dead_after: float, claims_after: float) -> None:
        """Forget instances silent for ``dead_after`` s, push claims older than ``claims_after``
        s and leases of users no longer stored."""
        raise ClusterUnsupported("this store does not keep cluster membership")

"""The ES256 signing-key ring: rotation, persistence, discovery of other instances' keys, pruning.

The original kept keys in memory (a restart logged everybody out) and pruned them by comparing
base-36 strings (§9.22). Here every key is written to the store (which encrypts the private PEM),
so a restart or a second instance sharing the store still verifies every token it issued, and
pruning compares numeric creation times.

Key ids. ``kid = base36(creation second) + "-" + 4 random base-36 characters``, e.g.
``ovte4e-k3q9``. The time part keeps the original's meaning (clients treat ``kid`` as opaque) and
never decreases within one instance, even if the wall clock steps back; the random part keeps two
instances that rotate in the same second from writing the same kid to the shared store. Keys sort
by ``(time part, kid)`` — see :func:`kid_sort_key` — never by raw string comparison.

Life of a key. The current key signs while it is younger than ``sign_key_ttl``; the first token
issued after that makes (or adopts from the store) a new one. So the last token a key signs
expires before ``created_at + sign_key_ttl + token_ttl``; the key is kept for verification until
that moment plus ``skew`` (clock differences between instances) and then pruned from the ring and
the store.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mxproxy.config import JWTConfig
from mxproxy.store.base import SigningKey, Store, StoreError

log = logging.getLogger(__name__)

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_KID_RE = re.compile(r"^([0-9a-z]{1,13})(?:-([0-9a-z]{4}))?$")
KID_SUFFIX_LEN = 4


def base36(n: int) -> str:
    """Lower-case base-36 of a non-negative integer, as Go's ``strconv.FormatInt(n, 36)``."""
    if n < 0:
        raise ValueError("base36 of a negative number")
    digits = []
    while True:
        n, r = divmod(n, 36)
        digits.append(_BASE36[r])
        if n == 0:
            return "".join(reversed(digits))


def kid_time(kid: str) -> int | None:
    """The creation second encoded in a kid (ours or the original's plain form), else None."""
    m = _KID_RE.match(kid)
    return int(m.group(1), 36) if m else None


def kid_sort_key(kid: str) -> tuple[int, str]:
    """Numeric ordering of kids: by creation second, then by the kid itself."""
    t = kid_time(kid)
    return (t if t is not None else -1, kid)


@dataclass(frozen=True)
class RingKey:
    kid: str
    created_at: float
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    public_key: ec.EllipticCurvePublicKey = field(repr=False)


@dataclass
class KeyRingStats:
    created: int = 0  # keys this instance generated
    adopted: int = 0  # fresh stored keys taken up as the signing key (a peer's, or ours before a restart)
    demand_reloads: int = 0  # store reloads triggered by an unknown kid
    pruned: int = 0


class KeyRing:
    """ES256 keys for our access tokens. ``store=None`` keeps keys in memory only (tests, tools)."""

    def __init__(
        self,
        store: Store | None,
        jwt: JWTConfig,
        clock: Callable[[], float] = time.time,
        *,
        skew: float = 60.0,
        reload_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.jwt = jwt
        self.clock = clock
        self.skew = skew
        self.reload_interval = reload_interval
        self.stats = KeyRingStats()
        self._keys: dict[str, RingKey] = {}
        self._current: RingKey | None = None
        self._lock = asyncio.Lock()
        self._reload_generation = 0
        self._last_demand_reload = -math.inf

    # -- reading ------------------------------------------------------------------------------
    @property
    def retention(self) -> float:
        """How long after its creation a key may still have live tokens."""
        return self.jwt.sign_key_ttl + self.jwt.token_ttl + self.skew

    def get(self, kid: str) -> RingKey | None:
        """A key already in memory (no store access)."""
        return self._keys.get(kid)

    def keys(self) -> list[RingKey]:
        """Every key held, oldest first."""
        return sorted(self._keys.values(), key=lambda k: (k.created_at, kid_sort_key(k.kid)))

    @property
    def current(self) -> RingKey | None:
        return self._current

    # -- lifecycle ----------------------------------------------------------------------------
    async def load(self) -> None:
        """Read the stored keys at start and drop those whose tokens have all expired."""
        async with self._lock:
            if self.store is not None:
                await self._reload_locked()
            await self._prune_locked(self.clock())

    async def prune(self) -> list[str]:
        """Drop keys whose tokens have all expired (from memory and store); their kids."""
        async with self._lock:
            return await self._prune_locked(self.clock())

    # -- signing ------------------------------------------------------------------------------
    async def signing_key(self) -> RingKey:
        """The key to sign a token with now, rotating when the current one is too old.

        A store failure while making a new key propagates as ``StoreError``: signing with a key
        nobody else can ever learn would issue tokens that die on restart or on a peer.
        """
        key = self._current
        if key is not None and self._fresh(key, self.clock()):
            return key
        async with self._lock:
            now = self.clock()
            key = self._current
            if key is not None and self._fresh(key, now):
                return key  # another task rotated while we waited
            if self.store is not None:
                await self._reload_locked()  # maybe a peer instance already made a fresh key
                key = self._current
                if key is not None and self._fresh(key, now):
                    return key
            key = await self._create_locked(now)
            await self._prune_locked(now)
            return key

    async def _create_locked(self, now: float) -> RingKey:
        private = ec.generate_private_key(ec.SECP256R1())
        kid = self._new_kid(now)
        key = RingKey(kid=kid, created_at=now, private_key=private, public_key=private.public_key())
        if self.store is not None:
            pem = private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            await self.store.put_signing_key(SigningKey(kid=kid, private_pem=pem, created_at=now))
        self._keys[kid] = key
        self._current = key
        self.stats.created += 1
        log.info("jwt: new signing key %s", kid)
        return key

    def _new_kid(self, now: float) -> str:
        seconds = max(int(now), 0)
        for known in self._keys:
            t = kid_time(known)
            if t is not None and t > seconds:
                seconds = t  # never mint a kid that sorts before one we already have
        prefix = base36(seconds)
        while True:
            kid = prefix + "-" + "".join(secrets.choice(_BASE36) for _ in range(KID_SUFFIX_LEN))
            if kid not in self._keys:
                return kid

    def _fresh(self, key: RingKey, now: float) -> bool:
        return now - key.created_at < self.jwt.sign_key_ttl

    # -- verification ---------------------------------------------------------------------------
    async def find(self, kid: str) -> RingKey | None:
        """The key for ``kid``; when unknown, reload the store once (rate-limited, coalesced
        with concurrent callers) so a key made by another instance is learnt before rejecting.
        Kids that cannot be ours or that are too old to matter never touch the store."""
        key = self._keys.get(kid)
        if key is not None or self.store is None or not self._plausible(kid):
            return key
        generation = self._reload_generation
        async with self._lock:
            key = self._keys.get(kid)
            if key is not None or self._reload_generation != generation:
                return key  # someone reloaded while we waited: that answer is ours too
            now = self.clock()
            if now - self._last_demand_reload < self.reload_interval:
                return None
            self._last_demand_reload = now
            self.stats.demand_reloads += 1
            try:
                await self._reload_locked()
            except StoreError as exc:
                log.warning("jwt: cannot reload signing keys for kid %s: %s", kid, exc)
                return None
            return self._keys.get(kid)

    def _plausible(self, kid: str) -> bool:
        t = kid_time(kid)
        if t is None:
            return False
        now = self.clock()
        return now - self.retention - 1 <= t <= now + self.skew

    # -- store sync -----------------------------------------------------------------------------
    async def _reload_locked(self) -> None:
        assert self.store is not None
        records = await self.store.list_signing_keys()
        self._reload_generation += 1
        for record in records:
            if record.kid in self._keys:
                continue
            key = _load_key(record)
            if key is not None:
                self._keys[key.kid] = key
        now = self.clock()
        current = self._current
        if current is None or not self._fresh(current, now):
            newest = max(
                (k for k in self._keys.values() if self._fresh(k, now)),
                key=lambda k: (k.created_at, kid_sort_key(k.kid)),
                default=None,
            )
            if newest is not None:
                self._current = newest
                self.stats.adopted += 1

    async def _prune_locked(self, now: float) -> list[str]:
        doomed = [k for k in self._keys.values() if k.created_at + self.retention < now]
        for key in doomed:
            del self._keys[key.kid]
            if self._current is key:
                self._current = None
            if self.store is not None:
                try:
                    await self.store.delete_signing_key(key.kid)
                except StoreError as exc:  # harmless: the next prune (any instance) retries
                    log.warning("jwt: cannot delete signing key %s: %s", key.kid, exc)
        if doomed:
            self.stats.pruned += len(doomed)
            log.info("jwt: pruned signing keys %s", ", ".join(k.kid for k in doomed))
        return [k.kid for k in doomed]


def _load_key(record: SigningKey) -> RingKey | None:
    """Parse a stored key; a damaged or foreign one is skipped (logged), never fatal."""
    try:
        private = serialization.load_pem_private_key(record.private_pem, password=None)
    except (ValueError, TypeError) as exc:
        log.warning("jwt: stored signing key %s is unreadable (%s); ignored", record.kid, exc)
        return None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(private.curve, ec.SECP256R1):
        log.warning("jwt: stored signing key %s is not a P-256 key; ignored", record.kid)
        return None
    return RingKey(
        kid=record.kid, created_at=record.created_at, private_key=private, public_key=private.public_key()
    )

"""ES256 key ring: kid scheme, rotation, numeric pruning, persistence, peers sharing a store."""

from __future__ import annotations

import asyncio
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mxproxy.auth.errors import InvalidToken
from mxproxy.auth.keyring import KeyRing, base36, kid_sort_key, kid_time
from mxproxy.auth.tokens import TokenService
from mxproxy.config import JWTConfig
from mxproxy.store.base import SigningKey, Store

from .conftest import FakeClock, StoreFactory

JWT = JWTConfig(token_ttl=300.0, sign_key_ttl=60.0)
SKEW = 5.0
KID_RE = re.compile(r"^[0-9a-z]+-[0-9a-z]{4}$")


def ring(store: Store | None, clock: FakeClock, jwt: JWTConfig = JWT) -> KeyRing:
    return KeyRing(store, jwt, clock, skew=SKEW)


def test_base36_matches_go_format_int() -> None:
    assert base36(0) == "0"
    assert base36(35) == "z"
    assert base36(36) == "10"
    assert base36(1_700_000_000) == "s44we8"
    assert int("s44we8", 36) == 1_700_000_000
    assert base36(int("ovte4e", 36)) == "ovte4e"  # the spec's example kid
    assert kid_time("s44we8") == 1_700_000_000  # the original's plain form parses too
    assert kid_time("s44we8-ab12") == 1_700_000_000
    assert kid_time("S41A0W") is None
    assert kid_time("1_0") is None
    assert kid_time("") is None


def test_kid_order_is_numeric_not_lexicographic() -> None:
    assert "z-aaaa" > "10-aaaa"  # what a string comparison would believe
    assert kid_sort_key("z-aaaa") < kid_sort_key("10-aaaa")


async def test_first_key_is_created_lazily_and_persisted_as_pkcs8(store: Store, clock: FakeClock) -> None:
    keys = ring(store, clock)
    await keys.load()
    assert keys.current is None and await store.list_signing_keys() == []
    key = await keys.signing_key()
    assert KID_RE.match(key.kid)
    assert kid_time(key.kid) == int(clock.now)
    [stored] = await store.list_signing_keys()
    assert stored.kid == key.kid and stored.created_at == clock.now
    assert stored.private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(stored.private_pem, password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey) and isinstance(loaded.curve, ec.SECP256R1)
    assert loaded.public_key().public_numbers() == key.public_key.public_numbers()


async def test_key_is_reused_until_sign_key_ttl_then_rotated(store: Store, clock: FakeClock) -> None:
    keys = ring(store, clock)
    first = await keys.signing_key()
    clock.advance(59)
    assert (await keys.signing_key()).kid == first.kid
    clock.advance(1)
    second = await keys.signing_key()
    assert second.kid != first.kid
    assert kid_sort_key(second.kid) > kid_sort_key(first.kid)
    assert keys.get(first.kid) is not None  # kept for its tokens
    assert [k.kid for k in await store.list_signing_keys()] == [first.kid, second.kid]
    assert keys.stats.created == 2


async def test_concurrent_rotation_in_one_instance_makes_one_key(store: Store, clock: FakeClock) -> None:
    keys = ring(store, clock)
    got = await asyncio.gather(*(keys.signing_key() for _ in range(10)))
    assert len({k.kid for k in got}) == 1
    assert keys.stats.created == 1


async def test_keys_made_in_the_same_second_get_distinct_ordered_kids(clock: FakeClock) -> None:
    keys = ring(None, clock, JWTConfig(token_ttl=300.0, sign_key_ttl=0.25))
    kids = []
    for _ in range(3):
        kids.append((await keys.signing_key()).kid)
        clock.advance(0.3)
    assert len(set(kids)) == 3
    assert len({kid_time(k) for k in kids}) == 1
    assert [k.kid for k in keys.keys()] == kids


async def test_old_key_is_pruned_only_after_all_its_tokens_expired(store: Store, clock: FakeClock) -> None:
    keys = ring(store, clock)
    old = await keys.signing_key()
    retention = JWT.sign_key_ttl + JWT.token_ttl + SKEW
    clock.advance(JWT.sign_key_ttl)
    new = await keys.signing_key()
    clock.now = old.created_at + retention - 1
    assert await keys.prune() == []
    assert keys.get(old.kid) is not None
    clock.now = old.created_at + retention + 1
    assert await keys.prune() == [old.kid]
    assert keys.get(old.kid) is None and keys.get(new.kid) is not None
    assert [k.kid for k in await store.list_signing_keys()] == [new.kid]


async def test_pruning_compares_times_numerically_across_a_kid_length_change(clock: FakeClock) -> None:
    # base36(1290) == "zu", base36(1300) == "104": the original's string compare would prune the
    # newer "104…" key as "older" than "zu…".
    jwt = JWTConfig(token_ttl=10.0, sign_key_ttl=10.0)
    clock.now = 1290.0
    keys = KeyRing(None, jwt, clock, skew=0.0)
    old = await keys.signing_key()
    clock.now = 1300.0
    new = await keys.signing_key()
    assert old.kid.startswith("zu-") and new.kid.startswith("104-")
    clock.now = 1311.0
    assert await keys.prune() == [old.kid]
    assert keys.get(new.kid) is not None


async def test_load_prunes_keys_left_in_the_store_by_a_long_stopped_instance(
    store: Store, clock: FakeClock
) -> None:
    first = ring(store, clock)
    stale = await first.signing_key()
    clock.advance(10_000)
    second = ring(store, clock)
    await second.load()
    assert second.get(stale.kid) is None
    assert await store.list_signing_keys() == []


async def test_restart_keeps_issued_tokens_valid(shared_store: StoreFactory, clock: FakeClock) -> None:
    before = ring(await shared_store(), clock)
    await before.load()
    token = await TokenService(before, JWT).issue("alice")

    after = ring(await shared_store(), clock)  # a new process: new connection, empty memory
    await after.load()
    claims = await TokenService(after, JWT).verify(token.access_token)
    assert claims.sub == "alice"
    assert after.stats.demand_reloads == 0  # known from load(), no lookup needed
    # the restarted instance keeps signing with the still-fresh key instead of making another
    assert (await after.signing_key()).kid == claims.kid
    assert after.stats.created == 0


async def test_second_instance_learns_a_peer_key_on_unknown_kid(shared_store: StoreFactory, clock: FakeClock) -> None:
    a = ring(await shared_store(), clock)
    b = ring(await shared_store(), clock)
    await a.load()
    await b.load()
    token = await TokenService(a, JWT).issue("alice")
    assert b.get(token_kid(token.access_token)) is None
    claims = await TokenService(b, JWT).verify(token.access_token)
    assert claims.sub == "alice"
    assert b.stats.demand_reloads == 1
    # and B signs with A's fresh key rather than minting its own
    assert (await b.signing_key()).kid == claims.kid


async def test_two_instances_rotating_at_once_both_stay_verifiable(
    shared_store: StoreFactory, clock: FakeClock
) -> None:
    a = ring(await shared_store(), clock)
    b = ring(await shared_store(), clock)
    await asyncio.gather(a.load(), b.load())
    ta, tb = await asyncio.gather(TokenService(a, JWT).issue("alice"), TokenService(b, JWT).issue("bob"))
    clock.advance(2)  # past the reload rate limit of either side
    for keys in (a, b):
        service = TokenService(keys, JWT)
        assert (await service.verify(ta.access_token)).sub == "alice"
        clock.advance(2)
        assert (await service.verify(tb.access_token)).sub == "bob"
    stored = {k.kid for k in await (await shared_store()).list_signing_keys()}
    assert {token_kid(ta.access_token), token_kid(tb.access_token)} <= stored


async def test_unknown_kid_reloads_the_store_at_most_once_per_interval(
    open_store: StoreFactory, clock: FakeClock
) -> None:
    foreign = ring(None, clock)  # keys that never reach the shared store
    token = (await TokenService(foreign, JWT).issue("mallory")).access_token
    b = ring(await open_store(), clock)
    await b.load()
    service = TokenService(b, JWT)
    for _ in range(3):
        try:
            await service.verify(token)
        except InvalidToken as exc:
            assert exc.reason == "unknown or obsolete signing key"
        else:
            raise AssertionError("a token from a key outside the store verified")
    assert b.stats.demand_reloads == 1
    clock.advance(b.reload_interval)
    await _rejected(service, token)
    assert b.stats.demand_reloads == 2


async def test_kid_that_cannot_be_ours_never_reaches_the_store(store: Store, clock: FakeClock) -> None:
    keys = ring(store, clock)
    await keys.load()
    assert await keys.find("not-a-kid!") is None
    assert await keys.find(base36(int(clock.now) - 100_000) + "-abcd") is None  # long obsolete
    assert await keys.find(base36(int(clock.now) + 3600) + "-abcd") is None  # from the future
    assert keys.stats.demand_reloads == 0


async def test_damaged_stored_key_is_skipped_not_fatal(store: Store, clock: FakeClock) -> None:
    await store.put_signing_key(SigningKey(kid=base36(int(clock.now)) + "-bad0", private_pem=b"garbage", created_at=clock.now))
    rsa_pem = b"-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n"
    await store.put_signing_key(SigningKey(kid=base36(int(clock.now)) + "-bad1", private_pem=rsa_pem, created_at=clock.now))
    keys = ring(store, clock)
    await keys.load()
    assert keys.keys() == []
    assert KID_RE.match((await keys.signing_key()).kid)


async def test_in_memory_ring_works_without_a_store(clock: FakeClock) -> None:
    keys = ring(None, clock)
    await keys.load()
    service = TokenService(keys, JWT)
    token = await service.issue("alice")
    assert (await TokenService(keys, JWT).verify(token.access_token)).sub == "alice"
    assert await keys.find("zzzzzz-zzzz") is None


def token_kid(token: str) -> str:
    import jwt

    return jwt.get_unverified_header(token)["kid"]


async def _rejected(service: TokenService, token: str) -> None:
    try:
        await service.verify(token)
    except InvalidToken:
        return
    raise AssertionError("token unexpectedly verified")

"""Every store behaviour, run on both SQLite and PostgreSQL (see conftest.backend)."""

from __future__ import annotations

import asyncio

import pytest

from mxproxy.store import (
    CorruptRecord,
    DeviceToken,
    InvalidRecord,
    SigningKey,
    Store,
    StoreError,
    StoreKeyError,
    UserRecord,
)
from mxproxy.store.migrations import LATEST_VERSION, MIGRATIONS

from .conftest import Backend

PASSWORD = "Secr3t-MX-pässword"
PEM = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"


def user(login: str = "alice", password: str = PASSWORD, **kw: object) -> UserRecord:
    return UserRecord(login=login, host="mx.example.com:7778", mx_login=login, password=password, **kw)  # type: ignore[arg-type]


def token(tok: str = "a" * 64, login: str = "alice", kind: str = "apn", topic: str = "com.example.app", **kw: object) -> DeviceToken:
    return DeviceToken(kind=kind, topic=topic, token=tok, login=login, **kw)  # type: ignore[arg-type]


# users -------------------------------------------------------------------------------------------
async def test_put_and_get_user_round_trips_clear_password(store: Store) -> None:
    await store.put_user(user())
    got = await store.get_user("alice")
    assert got is not None
    assert (got.login, got.host, got.mx_login, got.password, got.needs_reauth) == (
        "alice", "mx.example.com:7778", "alice", PASSWORD, False,
    )
    assert isinstance(got.created_at, float) and got.created_at > 1e9
    assert got.updated_at >= got.created_at


async def test_unknown_user_reads_as_none_and_deletes_as_false(store: Store) -> None:
    assert await store.get_user("nobody") is None
    assert await store.delete_user("nobody") is False
    assert await store.set_user_needs_reauth("nobody", True) is False


async def test_put_user_replaces_fields_but_keeps_created_at(store: Store) -> None:
    await store.put_user(user(created_at=1000.0, updated_at=1000.0))
    await store.put_user(UserRecord("alice", "other:7778", "alice2", "new-pw", created_at=5000.0, updated_at=5000.0))
    got = await store.get_user("alice")
    assert got is not None
    assert (got.host, got.mx_login, got.password) == ("other:7778", "alice2", "new-pw")
    assert got.created_at == 1000.0
    assert got.updated_at == 5000.0


async def test_find_user_by_mx_login_or_by_sign_in_name_case_insensitively(store: Store) -> None:
    await store.put_user(user("dmitrys", sign_in_name="dmitrys@xyzrd.com"))
    await store.put_user(user("peterh"))
    for name in ("dmitrys", "dmitrys@xyzrd.com", "DMITRYS@xyzrd.COM"):
        found = await store.find_user(name)
        assert found is not None and found.login == "dmitrys", name
        assert found.sign_in_name == "dmitrys@xyzrd.com"
    assert (await store.find_user("peterh")).login == "peterh"  # type: ignore[union-attr]
    assert await store.find_user("nobody@xyzrd.com") is None
    # a later put without a sign-in name (e.g. a re-login after a restart) keeps the known one
    await store.put_user(user("dmitrys"))
    assert (await store.get_user("dmitrys")).sign_in_name == "dmitrys@xyzrd.com"  # type: ignore[union-attr]


async def test_list_users_returns_all_sorted_by_login(store: Store) -> None:
    for login in ("carol", "alice", "bob"):
        await store.put_user(user(login, password=f"pw-{login}"))
    users = await store.list_users()
    assert [u.login for u in users] == ["alice", "bob", "carol"]
    assert [u.password for u in users] == ["pw-alice", "pw-bob", "pw-carol"]


async def test_needs_reauth_flag_is_set_cleared_and_cleared_again_by_a_fresh_put(backend: Backend) -> None:
    store = await backend.open_store()
    await store.put_user(user())
    assert await store.set_user_needs_reauth("alice", True) is True
    await store.close()
    store = await backend.open_store()
    got = await store.get_user("alice")
    assert got is not None and got.needs_reauth is True
    assert await store.set_user_needs_reauth("alice", False) is True
    assert (await store.get_user("alice")).needs_reauth is False  # type: ignore[union-attr]
    await store.set_user_needs_reauth("alice", True)
    await store.put_user(user())  # a successful sign-in writes the record again
    assert (await store.get_user("alice")).needs_reauth is False  # type: ignore[union-attr]


async def test_empty_password_is_stored_and_returned(store: Store) -> None:
    await store.put_user(user(password=""))
    assert (await store.get_user("alice")).password == ""  # type: ignore[union-attr]


# device tokens -----------------------------------------------------------------------------------
async def test_token_crud(store: Store) -> None:
    await store.put_user(user())
    assert await store.put_token(token(sandbox=True)) is None
    got = await store.get_token("apn", "com.example.app", "a" * 64)
    assert got is not None
    assert (got.kind, got.topic, got.token, got.login, got.sandbox) == ("apn", "com.example.app", "a" * 64, "alice", True)
    assert isinstance(got.created_at, float) and got.created_at > 1e9
    assert got.last_result is None and got.last_result_at is None

    await store.put_token(token("f" * 40, kind="fcm", topic="app-id"))
    assert [t.token for t in await store.tokens_for_user("alice")] == ["a" * 64, "f" * 40]
    assert len(await store.list_tokens()) == 2

    assert await store.delete_token("apn", "com.example.app", "a" * 64) is True
    assert await store.get_token("apn", "com.example.app", "a" * 64) is None
    assert await store.delete_token("apn", "com.example.app", "a" * 64) is False
    assert [t.kind for t in await store.list_tokens()] == ["fcm"]


async def test_same_token_under_another_topic_or_kind_is_a_different_token(store: Store) -> None:
    await store.put_user(user())
    await store.put_user(user("bob"))
    assert await store.put_token(token("x" * 32, login="alice", topic="one")) is None
    assert await store.put_token(token("x" * 32, login="bob", topic="two")) is None
    assert await store.put_token(token("x" * 32, login="bob", kind="fcm", topic="one")) is None
    assert len(await store.list_tokens()) == 3


async def test_token_takeover_moves_it_and_reports_the_previous_owner(store: Store) -> None:
    await store.put_user(user("alice"))
    await store.put_user(user("bob"))
    await store.put_token(token(login="alice"))
    await store.set_token_result("apn", "com.example.app", "a" * 64, "BadDeviceToken", 1234.5)

    assert await store.put_token(token(login="bob", sandbox=True)) == "alice"
    got = await store.get_token("apn", "com.example.app", "a" * 64)
    assert got is not None and got.login == "bob" and got.sandbox is True
    assert got.last_result is None  # a new owner starts with a clean delivery history
    assert await store.tokens_for_user("alice") == []
    assert [t.login for t in await store.list_tokens()] == ["bob"]


async def test_reregistering_by_the_same_owner_keeps_history_and_reports_no_move(store: Store) -> None:
    await store.put_user(user())
    await store.put_token(token(created_at=1000.0))
    await store.set_token_result("apn", "com.example.app", "a" * 64, "ok", 2000.0)
    assert await store.put_token(token(sandbox=True, created_at=3000.0)) is None
    got = await store.get_token("apn", "com.example.app", "a" * 64)
    assert got is not None
    assert (got.created_at, got.sandbox, got.last_result, got.last_result_at) == (1000.0, True, "ok", 2000.0)


async def test_delete_token_with_login_only_deletes_the_owners_token(store: Store) -> None:
    await store.put_user(user("alice"))
    await store.put_user(user("bob"))
    await store.put_token(token(login="alice"))
    assert await store.delete_token("apn", "com.example.app", "a" * 64, login="bob") is False
    assert await store.get_token("apn", "com.example.app", "a" * 64) is not None
    assert await store.delete_token("apn", "com.example.app", "a" * 64, login="alice") is True
    assert await store.get_token("apn", "com.example.app", "a" * 64) is None


async def test_token_result_is_kept_across_reopen(backend: Backend) -> None:
    store = await backend.open_store()
    await store.put_user(user())
    await store.put_token(token())
    await store.set_token_result("apn", "com.example.app", "a" * 64, "transport: timed out", 1700000000.25)
    await store.set_token_result("apn", "com.example.app", "unknown", "ok", 1.0)  # no such token: no-op
    await store.close()
    store = await backend.open_store()
    got = await store.get_token("apn", "com.example.app", "a" * 64)
    assert got is not None
    assert (got.last_result, got.last_result_at) == ("transport: timed out", 1700000000.25)
    assert len(await store.list_tokens()) == 1


async def test_delete_user_deletes_their_tokens_and_only_theirs(store: Store) -> None:
    await store.put_user(user("alice"))
    await store.put_user(user("bob"))
    await store.put_token(token("a" * 64, login="alice"))
    await store.put_token(token("f" * 40, login="alice", kind="fcm", topic="app"))
    await store.put_token(token("b" * 64, login="bob"))
    assert await store.delete_user("alice") is True
    assert await store.get_user("alice") is None
    assert await store.tokens_for_user("alice") == []
    assert [(t.login, t.token) for t in await store.list_tokens()] == [("bob", "b" * 64)]


async def test_token_for_a_user_that_is_not_stored_is_refused(store: Store) -> None:
    with pytest.raises(InvalidRecord, match="not stored"):
        await store.put_token(token(login="ghost"))
    assert await store.list_tokens() == []
    await store.put_user(user())
    await store.put_token(token(login="alice"))
    with pytest.raises(InvalidRecord, match="not stored"):  # also when taking over a token
        await store.put_token(token(login="ghost"))
    assert [t.login for t in await store.list_tokens()] == ["alice"]


# signing keys ------------------------------------------------------------------------------------
async def test_signing_keys_listed_oldest_first_and_deleted(store: Store) -> None:
    await store.put_signing_key(SigningKey("k-new", PEM + b"3", created_at=3000.0))
    await store.put_signing_key(SigningKey("k-old", PEM + b"1", created_at=1000.0))
    await store.put_signing_key(SigningKey("k-mid", PEM + b"2", created_at=2000.0))
    keys = await store.list_signing_keys()
    assert [k.kid for k in keys] == ["k-old", "k-mid", "k-new"]
    assert [k.private_pem for k in keys] == [PEM + b"1", PEM + b"2", PEM + b"3"]
    assert all(isinstance(k.created_at, float) for k in keys)
    await store.delete_signing_key("k-mid")
    await store.delete_signing_key("never-existed")
    assert [k.kid for k in await store.list_signing_keys()] == ["k-old", "k-new"]


async def test_signing_key_without_created_at_gets_now(store: Store) -> None:
    await store.put_signing_key(SigningKey("k1", PEM))
    (key,) = await store.list_signing_keys()
    assert key.created_at > 1e9


# encryption at rest ------------------------------------------------------------------------------
async def test_password_and_private_key_are_encrypted_in_the_raw_rows(backend: Backend) -> None:
    store = await backend.open_store()
    await store.put_user(user())
    await store.put_signing_key(SigningKey("k1", PEM))
    ((password_enc,),) = await backend.raw("SELECT password_enc FROM users WHERE login = ?", "alice")
    ((pem_enc,),) = await backend.raw("SELECT private_pem_enc FROM signing_keys WHERE kid = ?", "k1")
    assert password_enc.startswith("v1:") and PASSWORD not in password_enc
    assert pem_enc.startswith("v1:") and "PRIVATE KEY" not in pem_enc and "MIGHAgEAMBMG" not in pem_enc
    # Equal passwords do not produce equal ciphertexts (random nonces).
    await store.put_user(user("bob"))
    ((bob_enc,),) = await backend.raw("SELECT password_enc FROM users WHERE login = ?", "bob")
    assert bob_enc != password_enc


async def test_wrong_store_key_is_refused_at_open(backend: Backend) -> None:
    store = await backend.open_store("the right key")
    await store.put_user(user())
    await store.close()
    with pytest.raises(StoreKeyError, match="does not match"):
        await backend.open_store("a wrong key")
    store = await backend.open_store("the right key")
    assert (await store.get_user("alice")).password == PASSWORD  # type: ignore[union-attr]


async def test_password_ciphertext_swapped_between_users_is_refused(backend: Backend) -> None:
    store = await backend.open_store()
    await store.put_user(user("alice", password="alice-pw"))
    await store.put_user(user("mallory", password="mallory-pw"))
    ((alice_enc,),) = await backend.raw("SELECT password_enc FROM users WHERE login = ?", "alice")
    await backend.raw("UPDATE users SET password_enc = ? WHERE login = ?", alice_enc, "mallory")
    with pytest.raises(CorruptRecord, match="users.password:mallory") as info:
        await store.get_user("mallory")
    assert "alice-pw" not in str(info.value)
    assert (await store.get_user("alice")).password == "alice-pw"  # type: ignore[union-attr]


async def test_private_key_ciphertext_moved_to_another_kid_is_refused(backend: Backend) -> None:
    store = await backend.open_store()
    await store.put_signing_key(SigningKey("k1", PEM, created_at=1.0))
    await store.put_signing_key(SigningKey("k2", PEM + b"x", created_at=2.0))
    ((k1_enc,),) = await backend.raw("SELECT private_pem_enc FROM signing_keys WHERE kid = ?", "k1")
    await backend.raw("UPDATE signing_keys SET private_pem_enc = ? WHERE kid = ?", k1_enc, "k2")
    with pytest.raises(CorruptRecord, match="signing_keys.private_pem:k2"):
        await store.list_signing_keys()


async def test_tampered_ciphertext_is_refused(backend: Backend) -> None:
    store = await backend.open_store()
    await store.put_user(user())
    ((enc,),) = await backend.raw("SELECT password_enc FROM users WHERE login = ?", "alice")
    flipped = enc[:-6] + ("A" if enc[-6] != "A" else "B") + enc[-5:]
    await backend.raw("UPDATE users SET password_enc = ? WHERE login = ?", flipped, "alice")
    with pytest.raises(CorruptRecord):
        await store.get_user("alice")


# migrations, persistence, lifecycle --------------------------------------------------------------
async def test_migrations_are_recorded_and_reopening_applies_nothing_twice(backend: Backend) -> None:
    store = await backend.open_store()
    await store.put_user(user())
    await store.close()
    await backend.open_store()
    await backend.open_store()
    versions = await backend.raw("SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in versions] == [m.version for m in MIGRATIONS]
    assert LATEST_VERSION == MIGRATIONS[-1].version


async def test_concurrent_first_opens_agree_on_schema_and_key(backend: Backend) -> None:
    stores = await asyncio.gather(*(backend.open_store() for _ in range(5)))
    versions = await backend.raw("SELECT version FROM schema_version")
    assert len(versions) == len(MIGRATIONS)
    assert len(await backend.raw("SELECT name FROM store_meta")) == 2  # one salt, one check value
    await stores[0].put_user(user())
    for other in stores[1:]:
        assert (await other.get_user("alice")).password == PASSWORD  # type: ignore[union-attr]


async def test_schema_newer_than_this_code_is_refused(backend: Backend) -> None:
    store = await backend.open_store()
    await store.close()
    await backend.raw(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
        LATEST_VERSION + 1, "from the future", 0.0,
    )
    with pytest.raises(StoreError, match="newer than this mxproxy supports"):
        await backend.open_store()


async def test_everything_persists_across_reopen(backend: Backend) -> None:
    store = await backend.open_store()
    await store.put_user(user(needs_reauth=True))
    await store.put_token(token(sandbox=True))
    await store.put_signing_key(SigningKey("k1", PEM, created_at=42.5))
    before = (await store.list_users(), await store.list_tokens(), await store.list_signing_keys())
    await store.close()
    store = await backend.open_store()
    after = (await store.list_users(), await store.list_tokens(), await store.list_signing_keys())
    assert after == before
    assert after[0][0].password == PASSWORD and after[2][0].private_pem == PEM


async def test_ping_works_while_open_and_fails_clearly_after_close(backend: Backend) -> None:
    store = await backend.open_store()
    await store.ping()
    await store.close()
    with pytest.raises(StoreError, match="not open"):
        await store.ping()
    with pytest.raises(StoreError, match="not open"):
        await store.get_user("alice")


# concurrency -------------------------------------------------------------------------------------
async def test_many_concurrent_writers_all_land(store: Store) -> None:
    logins = [f"user{i:02d}" for i in range(40)]

    async def sign_in(login: str) -> None:
        await store.put_user(user(login, password=f"pw-{login}"))
        await store.put_token(token(f"tok-{login}", login=login))
        await store.set_token_result("apn", "com.example.app", f"tok-{login}", "ok", 1.0)
        await store.set_user_needs_reauth(login, True)

    await asyncio.gather(*(sign_in(login) for login in logins))
    users = await store.list_users()
    assert [u.login for u in users] == logins
    assert all(u.password == f"pw-{u.login}" and u.needs_reauth for u in users)
    tokens = await store.list_tokens()
    assert sorted(t.login for t in tokens) == logins
    assert all(t.last_result == "ok" for t in tokens)


async def test_concurrent_takeovers_of_one_token_form_a_single_chain(store: Store) -> None:
    """Each put sees exactly the owner before it: one registration reports nobody, every other one
    reports a distinct earlier owner, and the final owner is the one nobody reported."""
    logins = [f"user{i:02d}" for i in range(20)]
    for login in logins:
        await store.put_user(user(login))
    previous = await asyncio.gather(*(store.put_token(token("shared" * 8, login=login)) for login in logins))
    assert previous.count(None) == 1
    reported = [p for p in previous if p is not None]
    assert len(set(reported)) == len(reported) == len(logins) - 1
    final = await store.get_token("apn", "com.example.app", "shared" * 8)
    assert final is not None
    assert set(logins) - set(reported) == {final.login}


async def test_concurrent_deletes_and_token_puts_leave_no_orphans(store: Store) -> None:
    logins = [f"user{i:02d}" for i in range(15)]
    for login in logins:
        await store.put_user(user(login))

    async def register(login: str) -> None:
        try:
            await store.put_token(token(f"tok-{login}", login=login))
        except InvalidRecord:
            pass  # the user was deleted first: refused, as it should be

    await asyncio.gather(*(register(l) for l in logins), *(store.delete_user(l) for l in logins))
    assert await store.list_users() == []
    assert await store.list_tokens() == []


# bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        UserRecord("", "h:1", "x", "pw"),
        UserRecord("alice", "", "alice", "pw"),
        UserRecord("alice", "h:1", "", "pw"),
        UserRecord("al\x00ice", "h:1", "alice", "pw"),
        UserRecord("alice", "h:1", "alice", None),  # type: ignore[arg-type]
        UserRecord(123, "h:1", "alice", "pw"),  # type: ignore[arg-type]
        UserRecord("alice", "h:1", "alice", "pw", created_at=float("nan")),
        UserRecord("alice", "h:1", "alice", "pw", needs_reauth="yes"),  # type: ignore[arg-type]
    ],
    ids=["empty-login", "empty-host", "empty-mx-login", "nul", "no-password", "int-login", "nan-time", "str-flag"],
)
async def test_bad_user_is_refused_and_changes_nothing(store: Store, bad: UserRecord) -> None:
    await store.put_user(user())
    with pytest.raises(InvalidRecord):
        await store.put_user(bad)
    assert [(u.login, u.password) for u in await store.list_users()] == [("alice", PASSWORD)]


@pytest.mark.parametrize(
    "bad",
    [
        token(login=""),
        token(tok=""),
        token(topic=""),
        token(kind="gcm"),
        token(tok="a\x00b"),
        token(sandbox="false"),  # type: ignore[arg-type]
    ],
    ids=["empty-login", "empty-token", "empty-topic", "unknown-kind", "nul", "str-sandbox"],
)
async def test_bad_token_is_refused_and_changes_nothing(store: Store, bad: DeviceToken) -> None:
    await store.put_user(user())
    await store.put_token(token())
    with pytest.raises(InvalidRecord):
        await store.put_token(bad)
    assert [(t.login, t.token) for t in await store.list_tokens()] == [("alice", "a" * 64)]


async def test_bad_lookups_and_keys_get_clear_errors(store: Store) -> None:
    with pytest.raises(InvalidRecord, match="login: must not be empty"):
        await store.get_user("")
    with pytest.raises(InvalidRecord, match="kind"):
        await store.get_token("voip", "t", "x")
    with pytest.raises(InvalidRecord, match="login"):
        await store.delete_token("apn", "t", "x", login="")
    with pytest.raises(InvalidRecord, match="kid"):
        await store.put_signing_key(SigningKey("", PEM))
    with pytest.raises(InvalidRecord, match="private_pem"):
        await store.put_signing_key(SigningKey("k1", "not bytes"))  # type: ignore[arg-type]
    with pytest.raises(InvalidRecord, match="at"):
        await store.set_token_result("apn", "t", "x", "ok", float("inf"))
    assert await store.list_signing_keys() == []


# bulk import ------------------------------------------------------------------------------------
async def test_import_records_adds_only_what_is_missing_in_one_go(store: Store) -> None:
    await store.put_user(user("bob"))
    outcome = await store.import_records(
        [user("alice"), user("bob"), user("alice")],
        [token("a" * 64), token("b" * 64, login="bob"), token("c" * 64, login="ghost")],
        source="/old/mxproxy.db",
    )
    assert (outcome.users_added, outcome.users_unchanged) == (("alice",), ("bob", "alice"))
    assert [t.token[0] for t in outcome.tokens_added] == ["a", "b"]
    assert [t.login for t in outcome.tokens_without_user] == ["ghost"]  # skipped, no foreign-key failure
    assert (await store.get_user("alice")).password == PASSWORD
    assert await store.import_source() == "/old/mxproxy.db"


async def test_import_records_refuses_a_bad_record_before_writing_anything(store: Store) -> None:
    with pytest.raises(InvalidRecord):
        await store.import_records([user("alice"), user("")], [], source="x")
    assert await store.list_users() == [] and await store.import_source() is None


async def test_token_generation_starts_at_zero_and_each_revocation_adds_one(store: Store) -> None:
    assert await store.token_generation("alice") == 0
    assert await store.revoke_tokens("alice") == 1
    assert await store.revoke_tokens("alice") == 2
    assert (await store.token_generation("alice"), await store.token_generation("bob")) == (2, 0)


async def test_token_generation_outlives_the_users_deletion(store: Store) -> None:
    await store.put_user(user())
    await store.revoke_tokens("alice")
    assert await store.delete_user("alice")
    await store.put_user(user())  # signs in again
    assert await store.token_generation("alice") == 1


async def test_concurrent_revocations_from_two_instances_each_count(backend: Backend) -> None:
    one, two = await backend.open_store(), await backend.open_store()
    results = await asyncio.gather(*(s.revoke_tokens("alice") for s in (one, two) for _ in range(5)))
    assert sorted(results) == list(range(1, 11))
    assert await two.token_generation("alice") == 10

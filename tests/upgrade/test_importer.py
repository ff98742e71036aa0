"""Importing MX Proxy 2.3's records into our store: SQLite and PostgreSQL, one transaction,
idempotent, every skip with its reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mxproxy.push.topics import PushTopics
from mxproxy.store import DeviceToken, Store, UserRecord
from mxproxy.upgrade.bbolt import CorruptBoltFile, read_bolt_file
from mxproxy.upgrade.importer import (
    NotAnMXProxyStore,
    import_legacy_store,
    legacy_records,
    summary_lines,
)
from tests.upgrade.conftest import BUNDLE, fixture_db

ALL_TOPICS = PushTopics.of(apn=[(BUNDLE, False), (BUNDLE, True)], fcm=[BUNDLE])


async def test_one_user_and_their_tokens_are_imported(store: Store) -> None:
    report = await import_legacy_store(store, fixture_db("one-user"), ALL_TOPICS, target="t")
    assert report.outcome.users_added == ("dmitrys",)
    user = await store.get_user("dmitrys")
    assert (user.host, user.mx_login, user.password, user.needs_reauth) == ("10.0.0.1:7778", "dmitrys", "pass3050", False)
    tokens = {(t.kind, t.topic, t.sandbox) for t in await store.tokens_for_user("dmitrys")}
    assert tokens == {("apn", BUNDLE, False), ("apn", BUNDLE, True), ("fcm", BUNDLE, False)}
    assert await store.import_source() == str(fixture_db("one-user"))


async def test_passwords_are_stored_encrypted(backend, store: Store) -> None:  # noqa: ANN001
    await import_legacy_store(store, fixture_db("one-user"), ALL_TOPICS, target="t")
    (sealed,) = await backend.raw("SELECT password_enc FROM users")
    assert "pass3050" not in str(sealed[0])


async def test_a_second_run_changes_nothing_and_says_so(store: Store) -> None:
    first = await import_legacy_store(store, fixture_db("many"), ALL_TOPICS, target="t")
    assert (len(first.outcome.users_added), len(first.outcome.tokens_added)) == (1000, 5000)
    again = await import_legacy_store(store, fixture_db("many"), ALL_TOPICS, target="t")
    assert not again.outcome.changed
    assert (len(again.outcome.users_unchanged), len(again.outcome.tokens_unchanged)) == (1000, 5000)
    assert "nothing changed" in summary_lines(again)[-1]
    assert len(await store.list_users()) == 1000 and len(await store.list_tokens()) == 5000


async def test_dry_run_writes_nothing(store: Store) -> None:
    report = await import_legacy_store(store, fixture_db("one-user"), ALL_TOPICS, target="t", dry_run=True)
    assert report.outcome.users_added == ("dmitrys",) and len(report.outcome.tokens_added) == 3
    assert await store.list_users() == [] and await store.list_tokens() == []
    assert await store.import_source() is None
    assert summary_lines(report)[-1] == "dry run: nothing was written"


async def test_records_already_in_the_store_are_kept(store: Store) -> None:
    await store.put_user(UserRecord("dmitrys", "10.9.9.9:7778", "dmitrys", "newer-password"))
    await store.put_user(UserRecord("other", "10.9.9.9:7778", "other", "pw"))
    token = next(t for t in legacy_records(read_bolt_file(fixture_db("one-user")), ALL_TOPICS).tokens if t.kind == "fcm")
    await store.put_token(DeviceToken("fcm", BUNDLE, token.token, "other"))
    report = await import_legacy_store(store, fixture_db("one-user"), ALL_TOPICS, target="t")
    assert report.outcome.users_kept == ("dmitrys",)
    assert (await store.get_user("dmitrys")).password == "newer-password"
    assert [t.token for t in report.outcome.tokens_kept] == [token.token]
    assert (await store.get_token("fcm", BUNDLE, token.token)).login == "other"
    assert len(report.outcome.tokens_added) == 2


def _reasons(name: str, topics: PushTopics = ALL_TOPICS) -> dict[str, str]:
    legacy = legacy_records(read_bolt_file(fixture_db(name)), topics)
    return {s.what: s.reason for s in legacy.skipped}


def test_what_cannot_be_imported_is_skipped_with_its_reason() -> None:
    reasons = _reasons("messy")
    assert reasons['user "badjson"'].startswith("malformed JSON")
    assert reasons['user "nohost"'] == "no MX host in the stored JSON"
    assert reasons['user "badhost"'].startswith("bad MX host")
    assert reasons["user b'\\xff\\xfe'"] == "the login is not UTF-8 text"
    assert reasons["user 'a-bucket-not-a-user'"] == "a nested bucket, not a record"
    by_reason = {reason: what for what, reason in reasons.items()}
    assert 'its user "ghost" is not in the users bucket' in by_reason
    assert "no APNs certificate or key configured for topic com.example.unknown (production)" in by_reason
    assert "no [voip.fcm] entry for FCM app unknown-app" in by_reason
    assert 'unknown push type "webpush"' in by_reason
    assert "not a device token the API would accept (bad push token)" in by_reason
    assert reasons["token garbage"] == 'not a "<kind>:<topic>:<token>" key'
    legacy = legacy_records(read_bolt_file(fixture_db("messy")), ALL_TOPICS)
    assert sorted(u.login for u in legacy.users) == ["good1", "good2-mx"]
    assert len(legacy.tokens) == 2


def test_a_user_keyed_by_sign_in_name_is_stored_under_its_mx_login() -> None:
    """The README's sample keys users by the name typed at sign-in ("dmitrys@xyzrd.com") with the
    MX login inside; messy.db's "good2" is keyed so ({"login": "good2-mx"})."""
    legacy = legacy_records(read_bolt_file(fixture_db("messy")), ALL_TOPICS)
    good2 = next(u for u in legacy.users if u.mx_login == "good2-mx")
    assert (good2.login, good2.sign_in_name) == ("good2-mx", "good2")
    assert [t.login for t in legacy.tokens if t.kind == "fcm"] == ["good2-mx"]  # its token follows it
    good1 = next(u for u in legacy.users if u.login == "good1")
    assert good1.sign_in_name == ""


def test_tokens_of_a_topic_without_credentials_are_skipped() -> None:
    reasons = _reasons("one-user", PushTopics.of(apn=[(BUNDLE, False)]))
    assert sorted(reasons.values()) == [
        f"no APNs certificate or key configured for topic {BUNDLE} (sandbox)",
        f"no [voip.fcm] entry for FCM app {BUNDLE}",
    ]


def test_fcm_app_ids_with_colons_are_matched_as_configured() -> None:
    legacy = legacy_records(read_bolt_file(fixture_db("one-user")), PushTopics.of(fcm=["com.example"]))
    assert [s.reason for s in legacy.skipped if "fcm" in s.what] == [f"no [voip.fcm] entry for FCM app {BUNDLE}"]
    token = legacy_records(read_bolt_file(fixture_db("one-user")), ALL_TOPICS).tokens
    fcm = next(t for t in token if t.kind == "fcm")
    assert ":" in fcm.token and fcm.topic == BUNDLE  # the FCM token itself holds a colon


def test_a_bbolt_file_of_another_program_is_refused() -> None:
    nested = read_bolt_file(fixture_db("nested"))
    foreign = replace(nested, root=nested.root.buckets[b"other"])  # buckets, but not users/tokens
    with pytest.raises(NotAnMXProxyStore, match="not MX Proxy 2.3's"):
        legacy_records(foreign, ALL_TOPICS)


async def test_a_corrupt_file_imports_nothing(store: Store, tmp_path: Path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(fixture_db("many").read_bytes()[:300_000])
    with pytest.raises(CorruptBoltFile):
        await import_legacy_store(store, broken, ALL_TOPICS, target="t")
    assert await store.list_users() == [] and await store.import_source() is None


async def test_summary_counts_tokens_by_topic_and_never_shows_a_password(store: Store) -> None:
    report = await import_legacy_store(store, fixture_db("many"), ALL_TOPICS, target="t")
    text = "\n".join(summary_lines(report))
    assert f"apn {BUNDLE}: 2000" in text and f"apn {BUNDLE} (sandbox): 1000" in text and f"fcm {BUNDLE}: 2000" in text
    assert "pw-0" not in text

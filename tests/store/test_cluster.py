"""The cluster statements on both dialects: membership, leases with epoch fencing, push claims,
and the SQLite store's refusal of a second process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mxproxy.store import StoreError
from mxproxy.store.base import DeviceToken, Store, UserRecord
from mxproxy.store.sqlite import SQLiteStore
from tests.store.conftest import Backend


async def add_users(store: Store, *logins: str) -> None:
    for login in logins:
        await store.put_user(UserRecord(login=login, host="127.0.0.1:7778", mx_login=login, password="pw"))


async def test_heartbeat_registers_and_renews_an_instance(store: Store) -> None:
    await store.heartbeat("a", "http://10.0.0.1:8000")
    await store.heartbeat("b", "http://10.0.0.2:8000")
    await store.heartbeat("a", "http://10.0.0.9:8000", leaving=True)
    members = {m.id: m for m in await store.members()}
    assert set(members) == {"a", "b"}
    assert members["a"].url == "http://10.0.0.9:8000" and members["a"].leaving
    assert not members["b"].leaving
    assert all(0 <= m.heartbeat_age < 5 for m in members.values())


async def test_one_renewal_takes_free_leases_and_leaves_held_ones_alone(store: Store) -> None:
    await add_users(store, "u1", "u2", "u3")
    held = await store.renew_leases("a", {"u1": None, "u2": None}, ttl=30)
    assert {k: (v.instance, v.epoch) for k, v in held.items()} == {"u1": ("a", 1), "u2": ("a", 1)}
    assert 25 < held["u1"].expires_in <= 30
    # b wants all three: only the free one is its
    held_b = await store.renew_leases("b", {"u1": None, "u2": None, "u3": None}, ttl=30)
    assert set(held_b) == {"u3"}
    # renewing keeps the epoch
    again = await store.renew_leases("a", {"u1": None, "u2": None}, ttl=30)
    assert {k: v.epoch for k, v in again.items()} == {"u1": 1, "u2": 1}


async def test_a_lapsed_lease_goes_to_the_next_taker_with_a_new_epoch(store: Store) -> None:
    await add_users(store, "u1")
    await store.renew_leases("a", {"u1": None}, ttl=0.0)  # lapses at once
    taken = await store.renew_leases("b", {"u1": None}, ttl=30)
    assert (taken["u1"].instance, taken["u1"].epoch) == ("b", 2)
    # the paused holder comes back: its renewal no longer holds the user, and it is fenced
    assert await store.renew_leases("a", {"u1": None}, ttl=30) == {}
    assert not await store.claim_push("u1", "call:1", "f", instance_id="a", epoch=1, window=30)
    assert await store.claim_push("u1", "call:1", "f", instance_id="b", epoch=2, window=30)


async def test_a_handover_names_the_successor_who_then_takes_the_lease(store: Store) -> None:
    await add_users(store, "u1")
    await store.renew_leases("a", {"u1": None}, ttl=30)
    assert await store.renew_leases("c", {"u1": None}, ttl=30) == {}  # not handed to c
    marked = await store.renew_leases("a", {"u1": "b"}, ttl=30)
    assert marked["u1"].successor == "b"
    taken = await store.renew_leases("b", {"u1": None}, ttl=30)
    assert (taken["u1"].instance, taken["u1"].epoch, taken["u1"].successor) == ("b", 2, None)
    assert await store.renew_leases("a", {"u1": "b"}, ttl=30) == {}
    lease = await store.lease_of("u1")
    assert lease is not None and lease.instance == "b"


async def test_placements_list_wanting_users_with_their_leases(store: Store) -> None:
    await add_users(store, "u1", "u2", "gone")
    await store.set_user_needs_reauth("gone", True)
    await store.renew_leases("a", {"u1": None}, ttl=30)
    found = {p.login: p.lease for p in await store.placements()}
    assert set(found) == {"u1", "u2"}
    assert found["u1"] is not None and found["u1"].instance == "a" and found["u2"] is None


async def test_release_and_leave_let_leases_lapse_at_once(store: Store) -> None:
    await add_users(store, "u1", "u2", "u3")
    await store.heartbeat("a", "http://a")
    await store.renew_leases("a", {"u1": None, "u2": None, "u3": None}, ttl=30)
    await store.release_leases("a", ["u1"])
    assert set(await store.renew_leases("b", {"u1": None, "u2": None}, ttl=30)) == {"u1"}
    await store.leave_cluster("a")
    assert [m.id for m in await store.members()] == []
    assert set(await store.renew_leases("b", {"u2": None, "u3": None}, ttl=30)) == {"u2", "u3"}


async def test_push_claims_are_once_per_fingerprint_within_the_window(store: Store) -> None:
    await add_users(store, "u1")
    lease = (await store.renew_leases("a", {"u1": None}, ttl=30))["u1"]
    claim = dict(instance_id="a", epoch=lease.epoch, window=30)
    assert await store.claim_push("u1", "call:7", "ringing", **claim)
    assert not await store.claim_push("u1", "call:7", "ringing", **claim)
    assert await store.claim_push("u1", "call:7", "answered", **claim)  # the call moved on
    assert await store.claim_push("u1", "call:8", "ringing", **claim)
    assert await store.claim_push("u1", "call:9", "ringing", **{**claim, "window": 0.0})
    assert await store.claim_push("u1", "call:9", "ringing", **{**claim, "window": 0.0})  # window passed


async def test_deleting_a_user_drops_their_lease_and_claims(store: Store, backend: Backend) -> None:
    await add_users(store, "u1")
    await store.put_token(DeviceToken(kind="apn", topic="t", token="x", login="u1"))
    await store.renew_leases("a", {"u1": None}, ttl=30)
    await store.claim_push("u1", "call:1", "f", instance_id="a", epoch=1, window=30)
    assert await store.delete_user("u1")
    assert await store.lease_of("u1") is None
    assert await backend.raw("SELECT login FROM push_claims") == []


async def test_housekeeping_forgets_dead_instances_and_old_claims(store: Store) -> None:
    await add_users(store, "u1")
    await store.heartbeat("dead", "http://d")
    await store.renew_leases("a", {"u1": None}, ttl=30)
    await store.claim_push("u1", "call:1", "f", instance_id="a", epoch=1, window=30)
    await store.cluster_housekeeping(dead_after=0.0, claims_after=0.0)
    assert await store.members() == []
    # the old claim is gone: the same fingerprint may be claimed again
    assert await store.claim_push("u1", "call:1", "f", instance_id="a", epoch=1, window=30)


@pytest.mark.parametrize("logins", [[], ["o'brien", 'a"b', "ü-user"]])
async def test_renewal_round_trips_any_login_text(store: Store, logins: list[str]) -> None:
    await add_users(store, *logins)
    held = await store.renew_leases("a", dict.fromkeys(logins), ttl=30)
    assert set(held) == set(logins)


async def test_a_second_process_on_one_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first = SQLiteStore(path, "k")
    await first.open()
    await first.claim_exclusive_use()
    try:
        code = textwrap.dedent(f"""
            import asyncio, sys
            from mxproxy.store.sqlite import SQLiteStore
            from mxproxy.store import StoreError
            async def main():
                s = SQLiteStore({str(path)!r}, "k")
                await s.open()
                try:
                    await s.claim_exclusive_use()
                except StoreError as exc:
                    print(exc)
                    return 3
                finally:
                    await s.close()
                return 0
            sys.exit(asyncio.run(main()))
        """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 3, done.stderr
        assert "in use by another mxproxy process" in done.stdout and "PostgreSQL" in done.stdout
    finally:
        await first.close()
    # once the first process let go, the file is free again
    second = SQLiteStore(path, "k")
    await second.open()
    await second.claim_exclusive_use()
    await second.close()


async def test_in_process_second_claim_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first, second = SQLiteStore(path, "k"), SQLiteStore(path, "k")
    await first.open()
    await second.open()
    try:
        await first.claim_exclusive_use()
        with pytest.raises(StoreError, match="in use by another mxproxy process"):
            await second.claim_exclusive_use()
    finally:
        await first.close()
        await second.close()


async def test_the_previous_holder_may_claim_only_within_the_handover_grace(store: Store) -> None:
    await add_users(store, "u1")
    await store.renew_leases("a", {"u1": "b"}, ttl=30)
    assert (await store.renew_leases("b", {"u1": None}, ttl=30))["u1"].epoch == 2
    assert await store.claim_push("u1", "call:1", "ring", instance_id="a", epoch=1, window=30, grace=30)
    assert not await store.claim_push("u1", "call:1", "ring", instance_id="b", epoch=2, window=30)  # one push
    assert not await store.claim_push("u1", "call:2", "ring", instance_id="a", epoch=1, window=30, grace=0.0)
    assert not await store.claim_push("u1", "call:3", "ring", instance_id="c", epoch=1, window=30, grace=30)
    assert await store.claim_push("u1", "call:2", "ring", instance_id="b", epoch=2, window=30)


async def test_an_instance_id_held_by_a_live_process_is_refused_to_another(store: Store) -> None:
    await add_users(store, "u1")
    assert await store.join_cluster("a", "http://one", "host:1:x", ttl=30) is None
    assert await store.join_cluster("a", "http://one", "host:1:x", ttl=30) is None  # its own again
    held = await store.join_cluster("a", "http://two", "host:2:y", ttl=30)
    assert held is not None and held.holder == "host:1:x" and held.url == "http://one" and held.heartbeat_age < 5
    # the first keeps renewing; the refused one cannot renew under that id
    assert await store.heartbeat("a", "http://one", holder="host:1:x")
    assert not await store.heartbeat("a", "http://two", holder="host:2:y")
    assert [(m.id, m.url, m.holder) for m in await store.members()] == [("a", "http://one", "host:1:x")]


@pytest.mark.parametrize("how", ["heartbeat lapsed", "holder known dead"])
async def test_an_instance_id_of_a_dead_process_is_taken_over_and_its_lease_epochs_move(store: Store,
                                                                                       how: str) -> None:
    await add_users(store, "u1")
    assert await store.join_cluster("a", "http://one", "host:1:x", ttl=30) is None
    lease = (await store.renew_leases("a", {"u1": None}, ttl=30))["u1"]
    if how == "heartbeat lapsed":
        taken = await store.join_cluster("a", "http://two", "host:2:y", ttl=0.0)
    else:
        taken = await store.join_cluster("a", "http://two", "host:2:y", ttl=30, dead_holder="host:1:x")
    assert taken is None
    assert [(m.url, m.holder) for m in await store.members()] == [("http://two", "host:2:y")]
    assert not await store.heartbeat("a", "http://one", holder="host:1:x")  # the old one is out
    after = await store.lease_of("u1")
    assert after is not None and after.instance == "a" and after.epoch == lease.epoch + 1
    # what the old process claims at its epoch is fenced
    assert not await store.claim_push("u1", "call:1", "f", instance_id="a", epoch=lease.epoch, window=30)
    # leaving under a holder that is no longer ours leaves the row alone
    await store.leave_cluster("a", holder="host:1:x")
    assert [m.holder for m in await store.members()] == ["host:2:y"]
    await store.leave_cluster("a", holder="host:2:y")
    assert await store.members() == []


async def test_a_claim_never_marked_sent_by_a_dead_claimer_is_reclaimed_once_by_the_next_owner(store: Store) -> None:
    await add_users(store, "u1", "u2")
    await store.heartbeat("a", "http://a")
    await store.heartbeat("b", "http://b")
    first = await store.renew_leases("a", {"u1": None, "u2": None}, ttl=0.2)
    for login, item in (("u1", "call:1"), ("u2", "call:2")):
        assert await store.claim_push(login, item, "ring", instance_id="a", epoch=first[login].epoch, window=30,
                                      message=f'{{"item": "{item}"}}')
    await store.push_sent("u2", "call:2", instance_id="a", epoch=first["u2"].epoch)  # this one went out
    # b takes both over after the lapse, while a still heartbeats: a is alive, nothing to resend
    import asyncio

    await asyncio.sleep(0.3)
    taken = await store.renew_leases("b", {"u1": None, "u2": None}, ttl=30)
    assert set(taken) == {"u1", "u2"}
    assert await store.reclaim_unsent_pushes("b", ttl=30, window=30) == []
    # a is dead (its heartbeat older than the TTL): the unsent claim is b's now, exactly once
    assert await store.reclaim_unsent_pushes("b", ttl=0.0, window=30) == [("u1", "call:1", '{"item": "call:1"}')]
    assert await store.reclaim_unsent_pushes("b", ttl=0.0, window=30) == []
    assert await store.reclaim_unsent_pushes("c", ttl=0.0, window=30) == []  # not c's users
    # the reclaimed claim still filters the repeat of the same event
    assert not await store.claim_push("u1", "call:1", "ring", instance_id="b", epoch=taken["u1"].epoch, window=30)
    await store.push_sent("u1", "call:1", instance_id="b", epoch=taken["u1"].epoch)
    # a claim older than the window is not sent again
    await store.claim_push("u1", "call:3", "ring", instance_id="b", epoch=taken["u1"].epoch, window=30, message="{}")
    await store.renew_leases("b", {"u1": None}, ttl=0.0)
    assert (await store.renew_leases("c", {"u1": None}, ttl=30))["u1"].epoch == taken["u1"].epoch + 1
    assert await store.reclaim_unsent_pushes("c", ttl=0.0, window=0.0) == []
    found = await store.reclaim_unsent_pushes("c", ttl=0.0, window=30)
    assert [item for _, item, _ in found] == ["call:3"], found

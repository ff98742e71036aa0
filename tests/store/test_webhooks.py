"""Webhook subscriptions and the delivery outbox on both stores: secrets sealed at rest, the two
unique keys, claims in order per ordering key, lapsed claims taken over, parking and disabling."""

from __future__ import annotations

import asyncio

import pytest

from mxproxy.store import InvalidRecord
from mxproxy.store.outbox import NewDelivery
from tests.store.conftest import Backend

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def delivery(webhook_id: str, event_id: int, *, login: str = "alice", event_type: str = "call.ringing",
             call: str | None = "call-1", transition: str | None = None) -> NewDelivery:
    return NewDelivery(
        webhook_id=webhook_id, login=login, event_id=event_id, event_type=event_type,
        ordering_key=f"call:{call}" if call else f"user:{login}", payload=b'{"id": %d}' % event_id,
        event_time=1.0, transition=transition,
    )


async def test_a_webhook_is_stored_with_its_secret_sealed_and_read_back_clear(store, backend: Backend) -> None:
    created = await store.create_webhook("https://crm.example/hook", ["call.*"], ["alice"], SECRET)
    assert created.id.startswith("wh_") and created.enabled and created.users == ("alice",)
    assert (await store.get_webhook(created.id)).secret == SECRET
    raw = await backend.raw("SELECT secret_enc FROM webhooks WHERE id = ?", created.id)
    assert SECRET not in raw[0][0] and raw[0][0].startswith("v1:")
    every = await store.create_webhook("https://crm.example/all", ["voicemail.new"], None, SECRET)
    assert [w.id for w in await store.list_webhooks()] == [created.id, every.id]
    assert every.users is None


async def test_a_secret_copied_to_another_webhook_row_does_not_decrypt(store, backend: Backend) -> None:
    from mxproxy.store import CorruptRecord

    a = await store.create_webhook("https://a.example/", ["call.*"], None, SECRET)
    b = await store.create_webhook("https://b.example/", ["call.*"], None, "whsec_other")
    sealed = (await backend.raw("SELECT secret_enc FROM webhooks WHERE id = ?", a.id))[0][0]
    await backend.raw("UPDATE webhooks SET secret_enc = ? WHERE id = ?", sealed, b.id)
    with pytest.raises(CorruptRecord):
        await store.get_webhook(b.id)


@pytest.mark.parametrize(("url", "events", "users"), [
    ("", ["call.*"], None),
    ("https://x.example/", [], None),
    ("https://x.example/", "call.*", None),
    ("https://x.example/", ["call.*"], [""]),
    ("https://x.example/\x00", ["call.*"], None),
])
async def test_invalid_webhooks_are_refused_and_nothing_is_written(store, url, events, users) -> None:
    with pytest.raises(InvalidRecord):
        await store.create_webhook(url, events, users, SECRET)
    assert await store.list_webhooks() == []


async def test_update_changes_only_what_is_given_and_enabling_clears_the_failure_run(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    changed = await store.update_webhook(hook.id, events=["call.ended"], enabled=False)
    assert changed.events == ("call.ended",) and not changed.enabled and changed.disabled_reason
    assert changed.url == hook.url and changed.secret == SECRET
    again = await store.update_webhook(hook.id, enabled=True, users=["bob"])
    assert again.enabled and again.disabled_reason is None and again.users == ("bob",)
    assert await store.update_webhook("wh_missing", enabled=True) is None


async def test_each_event_is_stored_once_per_webhook_and_user(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 1), delivery(hook.id, 1), delivery(hook.id, 2)])
    await store.enqueue_deliveries([delivery(hook.id, 2)])
    assert [d.event_id for d in await store.list_deliveries(hook.id)] == [2, 1]


async def test_a_once_per_call_transition_is_stored_once_even_under_a_new_event_id(store) -> None:
    """A cluster handover: the new owner describes the same ringing call with a new event id."""
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 10, transition="call-1")])
    await store.enqueue_deliveries([delivery(hook.id, 99, transition="call-1"),
                                    delivery(hook.id, 100, event_type="call.held"),
                                    delivery(hook.id, 101, event_type="call.held")])
    assert sorted(d.event_id for d in await store.list_deliveries(hook.id)) == [10, 100, 101]


async def test_deliveries_of_a_deleted_webhook_are_not_stored_and_deleting_removes_its_rows(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 1)])
    assert await store.delete_webhook(hook.id)
    await store.enqueue_deliveries([delivery(hook.id, 2)])
    assert await store.list_deliveries(hook.id) == [] and await store.outbox_depth() == 0
    assert not await store.delete_webhook(hook.id)


async def test_claims_take_one_row_per_ordering_key_in_event_order(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 2, call="a"), delivery(hook.id, 1, call="a"),
                                    delivery(hook.id, 3, call="b")])
    first = await store.claim_deliveries("me", 10, 30.0)
    assert sorted((d.ordering_key, d.event_id) for d in first) == [("call:a", 1), ("call:b", 3)]
    assert all(d.state == "delivering" and d.claimed_by == "me" and d.payload for d in first)
    assert await store.claim_deliveries("me", 10, 30.0) == []  # call a's next waits for event 1
    one = next(d for d in first if d.event_id == 1)
    assert (await store.finish_delivery(one.id, "me", "delivered", status=200)).recorded
    nxt = await store.claim_deliveries("me", 10, 30.0)
    assert [d.event_id for d in nxt] == [2]


async def test_a_retry_keeps_the_calls_next_row_waiting_and_a_parked_row_releases_it(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 1), delivery(hook.id, 2)])
    [first] = await store.claim_deliveries("me", 10, 30.0)
    await store.finish_delivery(first.id, "me", "retry", status=503, error="HTTP 503", retry_in=0.0)
    [again] = await store.claim_deliveries("me", 10, 30.0)
    assert again.id == first.id and again.attempts == 1 and again.last_status == 503
    await store.finish_delivery(again.id, "me", "failed", status=400, error="HTTP 400")
    [second] = await store.claim_deliveries("me", 10, 30.0)
    assert second.event_id == 2
    [parked] = await store.list_deliveries(hook.id, state="failed")
    assert (parked.id, parked.attempts, parked.last_error) == (first.id, 2, "HTTP 400")


async def test_a_future_retry_is_not_due_yet(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 1)])
    [row] = await store.claim_deliveries("me", 10, 30.0)
    await store.finish_delivery(row.id, "me", "retry", error="timed out", retry_in=60.0)
    assert await store.claim_deliveries("me", 10, 30.0) == []
    assert await store.outbox_depth() == 1


async def test_a_lapsed_claim_is_taken_over_and_the_late_owner_result_is_ignored(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 1)])
    [mine] = await store.claim_deliveries("dead", 10, 0.2)
    assert await store.claim_deliveries("alive", 10, 30.0) == []
    await asyncio.sleep(0.3)
    [taken] = await store.claim_deliveries("alive", 10, 30.0)
    assert taken.id == mine.id and taken.claimed_by == "alive"
    assert not (await store.finish_delivery(mine.id, "dead", "delivered", status=200)).recorded
    assert (await store.finish_delivery(taken.id, "alive", "delivered", status=200)).recorded
    [done] = await store.list_deliveries(hook.id)
    assert done.state == "delivered" and done.delivered_at is not None


async def test_released_claims_are_due_again_at_once(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 1)])
    await store.claim_deliveries("stopping", 10, 300.0)
    assert await store.release_claims("stopping") == 1
    assert [d.claimed_by for d in await store.claim_deliveries("other", 10, 30.0)] == ["other"]


async def test_parked_deliveries_in_a_row_disable_the_endpoint_once_and_a_success_resets_the_run(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, i, call=f"c{i}") for i in range(1, 5)])
    claimed = await store.claim_deliveries("me", 10, 30.0)
    assert len(claimed) == 4
    results = [await store.finish_delivery(claimed[0].id, "me", "failed", status=410, disable_after=2),
               await store.finish_delivery(claimed[1].id, "me", "delivered", status=200, disable_after=2),
               await store.finish_delivery(claimed[2].id, "me", "failed", status=410, disable_after=2),
               await store.finish_delivery(claimed[3].id, "me", "failed", status=410, disable_after=2)]
    assert [r.disabled for r in results] == [False, False, False, True]
    disabled = await store.get_webhook(hook.id)
    assert not disabled.enabled and "2 deliveries in a row failed" in disabled.disabled_reason
    assert (disabled.consecutive_failures, disabled.total_failures, disabled.total_delivered) == (2, 3, 1)


async def test_a_disabled_endpoint_keeps_its_rows_until_it_is_enabled_again(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 1)])
    await store.update_webhook(hook.id, enabled=False)
    assert await store.claim_deliveries("me", 10, 30.0) == []
    await store.update_webhook(hook.id, enabled=True)
    assert len(await store.claim_deliveries("me", 10, 30.0)) == 1


async def test_redeliver_reopens_a_parked_row_with_a_fresh_retry_period_and_leaves_open_rows(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 1), delivery(hook.id, 2, call="other")])
    rows = {d.event_id: d for d in await store.claim_deliveries("me", 10, 30.0)}
    await store.finish_delivery(rows[1].id, "me", "failed", status=404)
    reopened = await store.redeliver(hook.id, rows[1].id)
    assert (reopened.state, reopened.attempts) == ("pending", 0) and reopened.retry_from >= rows[1].retry_from
    still = await store.redeliver(hook.id, rows[2].id)
    assert still.state == "delivering"
    assert await store.redeliver(hook.id, 10**9) is None
    other = await store.create_webhook("https://y.example/", ["call.*"], None, SECRET)
    assert await store.redeliver(other.id, rows[1].id) is None


async def test_listing_filters_by_state_and_pages_newest_first(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, i, call=f"c{i}") for i in range(1, 6)])
    page = await store.list_deliveries(hook.id, limit=2)
    assert [d.event_id for d in page] == [5, 4] and page[0].payload is None
    rest = await store.list_deliveries(hook.id, before=page[-1].id, limit=10)
    assert [d.event_id for d in rest] == [3, 2, 1]
    assert await store.list_deliveries(hook.id, state="failed") == []
    with pytest.raises(InvalidRecord):
        await store.list_deliveries(hook.id, state="lost")


async def test_pruning_forgets_only_finished_rows_older_than_the_retention(store) -> None:
    hook = await store.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await store.enqueue_deliveries([delivery(hook.id, 1), delivery(hook.id, 2, call="b")])
    rows = await store.claim_deliveries("me", 10, 30.0)
    await store.finish_delivery(rows[0].id, "me", "delivered", status=200)
    assert await store.prune_deliveries(3600.0) == 0
    await asyncio.sleep(0.05)
    assert await store.prune_deliveries(0.01) == 1
    assert [d.state for d in await store.list_deliveries(hook.id)] == ["delivering"]


async def test_two_stores_claiming_at_once_never_claim_the_same_row(backend: Backend) -> None:
    """On PostgreSQL two instances share the outbox; on SQLite two connections to one file."""
    a, b = await backend.open_store(), await backend.open_store()
    hook = await a.create_webhook("https://x.example/", ["call.*"], None, SECRET)
    await a.enqueue_deliveries([delivery(hook.id, i, call=f"c{i}") for i in range(60)])
    claimed: list[int] = []
    for _ in range(10):
        rounds = await asyncio.gather(a.claim_deliveries("a", 7, 30.0), b.claim_deliveries("b", 7, 30.0))
        claimed += [d.id for batch in rounds for d in batch]
    assert len(claimed) == len(set(claimed)) == 60

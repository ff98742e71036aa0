"""Webhooks in a cluster: two ``mxproxy serve`` on one PostgreSQL database are one service —
each event of each user reaches a subscription exactly once, whichever instance owns the user
and whichever delivers it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tests.cluster.harness import ClusterRig, wait_for
from tests.cluster.test_cluster import sign_in_all
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_serve import WEBHOOKS


async def test_two_instances_deliver_each_event_once_per_subscription(cluster: Any) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        rig: ClusterRig = await cluster(users=10)
        rig.extra_config = WEBHOOKS
        a, b = await rig.start_all("a", "b")
        await sign_in_all(rig, devices=False)
        await wait_for(rig.one_session_each, "exactly one MX session per user")
        owners = await rig.owners()
        assert set(owners.values()) == {"a", "b"}, owners
        r = await rig.client.post(f"{a.admin}/webhooks", json={"url": receiver.url, "events": ["call.ringing", "call.ended"]})
        assert r.status_code == 201, r.text
        secret, hook = r.json()["secret"], r.json()["id"]
        await asyncio.sleep(1.0)  # b re-reads the subscriptions every pollInterval (200 ms here)
        for user in rig.users:
            call = await rig.sim.incoming_call(to_ext=user.ext, from_number="3044", from_name="Peter Hyde")
            await rig.sim.hangup(call)
        await receiver.wait_for(2 * len(rig.users), timeout=30)
        await asyncio.sleep(1.0)  # a duplicate would have arrived by now
        seen = Counter((body["user"], body["type"]) for body in (r.verified(secret) for r in receiver.received))
        assert seen == {(u.login, t): 1 for u in rig.users for t in ("call.ringing", "call.ended")}
        rows = (await rig.client.get(f"{b.admin}/webhooks/{hook}/deliveries", params={"limit": 100})).json()
        assert len(rows["deliveries"]) == 20 and {d["state"] for d in rows["deliveries"]} == {"delivered"}
    finally:
        await receiver.stop()

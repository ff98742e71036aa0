"""Cluster mode with real processes: N ``mxproxy serve`` on one PostgreSQL database are one
service — one MX session per user (counted on the simulator), any instance serves any user,
one push per device per event (counted on the local FCM), failover within the lease TTL."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

from tests.cluster.harness import LEASE_TTL, ClusterRig, terminate_backends, wait_for

#: takeover bound: the lease lapses after the TTL, a survivor's round comes within TTL/3, the MX
#: login takes a moment more on a loaded machine
TAKEOVER = LEASE_TTL + 5.0


async def sign_in_all(rig: ClusterRig, *, devices: bool = True) -> dict[str, str]:
    """Every user signs in (and registers one device) through the instances in turn."""
    instances = rig.running()
    found: dict[str, str] = {}

    async def one(i: int, user: Any) -> None:
        via = instances[i % len(instances)]
        await rig.sign_in(user.login, via)
        if devices:
            found[user.login] = await rig.register_device(user.login, instances[(i + 1) % len(instances)])

    await asyncio.gather(*(one(i, u) for i, u in enumerate(rig.users)))
    return found


async def ring(rig: ClusterRig, login: str) -> int:
    user = next(u for u in rig.users if u.login == login)
    return await rig.sim.incoming_call(to_ext=user.ext, from_number="3044", from_name="Peter Hyde")


async def test_three_instances_run_one_session_per_user_and_push_each_ring_once(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=50)
    for name in ("a", "b", "c"):
        await rig.start(name, wait=False)
    for instance in rig.running():
        await rig.wait_ready(instance)
    devices = await sign_in_all(rig)
    await wait_for(rig.one_session_each, "exactly one MX session per user")
    owners = await rig.owners()
    assert set(owners) == {u.login for u in rig.users}
    per_instance = {name: sum(1 for o in owners.values() if o == name) for name in "abc"}
    assert all(count > 0 for count in per_instance.values()), per_instance
    # any instance serves any user (forwarded to the owner), same answer
    for user in rig.users[:10]:
        answers = [await rig.who_am_i(user.login, instance) for instance in rig.running()]
        assert [r.status_code for r in answers] == [200, 200, 200], [r.text for r in answers]
        assert len({r.text for r in answers}) == 1 and answers[0].json()["ext"] == user.ext
    # one ring each: exactly one push per device, and still one MX session each
    for user in rig.users:
        await ring(rig, user.login)
    await wait_for(lambda: _true(all(rig.pushes(d) >= 1 for d in devices.values())), "every device got its push")
    await asyncio.sleep(1.0)  # a duplicate would be on its way by now
    assert {login: rig.pushes(d) for login, d in devices.items()} == {login: 1 for login in devices}
    assert await rig.one_session_each()
    r = await rig.client.get(f"{rig.instances['a'].admin}/cluster")
    body = r.json()
    assert body["mode"] == "cluster" and {i["id"] for i in body["instances"]} == {"a", "b", "c"}
    assert sum(i["users"] for i in body["instances"]) == 50


async def _true(value: bool) -> bool:
    return value

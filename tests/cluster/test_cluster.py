"""Cluster mode with real processes: N ``mxproxy serve`` on one PostgreSQL database are one
service — one MX session per user (counted on the simulator), any instance serves any user,
one push per device per event (counted on the local FCM), failover within the lease TTL."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import httpx

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
    await rig.start_all("a", "b", "c")
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
    # status, headers and streamed bodies pass through: a voicemail download, a 404
    mail = rig.sim.fixture.add_voicemail(rig.users[0].login, audio_size=300_000)
    auth = {"Authorization": f"Bearer {rig.tokens[rig.users[0].login]}"}
    downloads = [await rig.client.get(f"{i.url}/voicemails/{mail.mail_id}", headers=auth) for i in rig.running()]
    assert [r.status_code for r in downloads] == [200, 200, 200]
    assert all(r.content == downloads[0].content and len(r.content) == 300_000 for r in downloads)
    assert len({r.headers.get("content-type") for r in downloads}) == 1
    missing = [await rig.client.get(f"{i.url}/calls/987654321", headers=auth) for i in rig.running()]
    assert len({(r.status_code, r.text) for r in missing}) == 1 and missing[0].status_code == 404
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
    forwarded = 0.0
    for instance in rig.running():  # the admin API says which instance holds what
        ready = (await rig.client.get(f"{instance.admin}/readyz")).json()
        assert ready["status"] == "ok" and ready["cluster"] == {"instance": instance.name, "member": True, "members": 3}
        sessions = (await rig.client.get(f"{instance.admin}/sessions")).json()
        assert sessions["instance"] == instance.name
        assert {s["instance"] for s in sessions["sessions"]} <= {instance.name}
        metrics = (await rig.client.get(f"{instance.admin}/metrics")).text
        forwarded += sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                         if line.startswith('mxproxy_cluster_forwarded_requests_total{result="ok"}'))
        assert "mxproxy_cluster_leases_held " in metrics
    assert forwarded >= 20  # 2 of every 3 GET /auth above, and the downloads
    # a user whose stored MX password stops working needs to sign in again: 401 through every
    # instance, also once nobody holds their lease any more (never a 503 for a moving owner)
    gone = rig.users[1]
    rig.sim.fixture.user(gone.login).password = "changed-on-the-mx"
    await rig.sim.drop_session(gone.login)

    async def refused_everywhere() -> bool:
        codes = [(await rig.who_am_i(gone.login, i)).status_code for i in rig.running()]
        return codes == [401, 401, 401]

    await wait_for(refused_everywhere, "401 for the user through every instance")
    await asyncio.sleep(LEASE_TTL + 1)  # their lease has lapsed now
    assert await refused_everywhere()


async def _true(value: bool) -> bool:
    return value


async def owner_of(rig: ClusterRig, login: str) -> str | None:
    names = (await rig.live_on()).get(login, [])
    return names[0] if len(names) == 1 else None


async def test_sigkill_of_a_ringing_users_owner_hands_the_user_to_a_survivor_without_a_duplicate(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=6)
    await rig.start_all("a", "b", "c")
    devices = await sign_in_all(rig)
    await wait_for(rig.one_session_each, "one MX session per user")
    login = rig.users[0].login
    victim = await owner_of(rig, login)
    assert victim is not None
    await ring(rig, login)
    await wait_for(lambda: _true(rig.pushes(devices[login]) == 1), "the ring's push")
    await rig.kill(victim)
    killed_at = time.monotonic()
    await wait_for(lambda: _true(rig.mx_sessions().get(login) is None), "the killed owner's MX session closed")

    async def taken_over() -> bool:
        return (await owner_of(rig, login)) not in (None, victim) and rig.mx_sessions().get(login) == 1

    await wait_for(taken_over, "a survivor runs the user", TAKEOVER + 5)
    took = time.monotonic() - killed_at
    assert took < TAKEOVER, f"takeover took {took:.1f}s (lease TTL {LEASE_TTL}s)"
    await asyncio.sleep(0.5)
    assert rig.pushes(devices[login]) == 1  # the ring in progress is not pushed again
    await ring(rig, login)  # pushes resume
    await wait_for(lambda: _true(rig.pushes(devices[login]) == 2), "the next ring's push from the new owner")
    # every user of the killed instance moved; requests through any survivor work
    await wait_for(rig.settled, "every user live again, once", TAKEOVER)
    for user in rig.users:
        r = await rig.who_am_i(user.login, rig.running()[0])
        assert r.status_code == 200, r.text


async def test_an_owner_paused_past_its_lease_does_not_act_when_it_wakes_up(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=6)
    await rig.start_all("a", "b")
    devices = await sign_in_all(rig)
    await wait_for(rig.one_session_each, "one MX session per user")
    login = rig.users[0].login
    paused = await owner_of(rig, login)
    assert paused is not None
    other = next(i for i in rig.running() if i.name != paused)
    rig.signal(paused, signal.SIGSTOP)

    async def taken_over() -> bool:
        return login in await rig.connections(other)

    await wait_for(taken_over, "the other instance took the user over", TAKEOVER + 5)
    # the paused process still has its TCP session to the MX: the ring reaches both
    assert rig.mx_sessions().get(login) == 2
    await ring(rig, login)
    await wait_for(lambda: _true(rig.pushes(devices[login]) == 1), "the new owner's push")
    rig.signal(paused, signal.SIGCONT)  # it wakes up with the ring queued on its old session
    await wait_for(lambda: _true(rig.mx_sessions().get(login) == 1), "the woken instance logged its session out")
    await asyncio.sleep(1.0)
    assert rig.pushes(devices[login]) == 1
    # back as a member, it may get its share again (placement), but only through a new lease
    await wait_for(rig.settled, "every user live on one instance, with one MX session")


async def test_postgresql_connection_loss_keeps_sessions_running_and_leases_recover(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=6)
    await rig.start_all("a", "b")
    devices = await sign_in_all(rig)
    await wait_for(rig.one_session_each, "one MX session per user")
    sessions_before = {i.id for i in rig.sim.sessions() if i.active and i.logged_in}
    owners_before = await rig.owners()
    for _ in range(3):  # cut every connection of the test database, a few times in a row
        assert await terminate_backends(rig.dsn.rpartition("/")[0] + "/test", rig.database) > 0
        await asyncio.sleep(LEASE_TTL / 4)

    async def all_ready() -> bool:
        bodies = [(await rig.client.get(f"{i.admin}/cluster")).json() for i in rig.running()]
        return all(b["ready"] and b["stats"]["rounds"] > 0 for b in bodies)

    await wait_for(all_ready, "every instance renews its leases again")
    assert await rig.owners() == owners_before
    assert {i.id for i in rig.sim.sessions() if i.active and i.logged_in} == sessions_before  # no re-login
    for user in rig.users:
        await ring(rig, user.login)
    await wait_for(lambda: _true(all(rig.pushes(d) == 1 for d in devices.values())), "one push per device")


async def test_a_joining_instance_gets_its_share_and_a_leaving_one_hands_over_all(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=30)
    await rig.start_all("a", "b")
    await sign_in_all(rig, devices=False)
    await wait_for(rig.one_session_each, "one MX session per user")
    await rig.start("c")

    async def c_has_its_share() -> bool:
        if not await rig.settled(serving="c"):
            return False
        return 5 <= sum(1 for names in (await rig.live_on()).values() if names == ["c"])

    await wait_for(c_has_its_share, "the new instance runs about a third of the users")
    await wait_for(rig.settled, "settled")
    c_users = {login for login, names in (await rig.live_on()).items() if names == ["c"]}
    assert 5 <= len(c_users) <= 17, len(c_users)
    assert await rig.stop("a") == 0

    async def handed_over() -> bool:
        return await rig.settled() and all(names[0] in ("b", "c") for names in (await rig.live_on()).values())

    await wait_for(handed_over, "every user of the leaving instance runs elsewhere")
    assert {login for login, names in (await rig.live_on()).items() if names == ["c"]} >= c_users  # c kept its own


async def test_a_rolling_restart_under_traffic_fails_no_request_but_with_503_and_retry_after(cluster: Any) -> None:
    rig: ClusterRig = await cluster(users=12)
    await rig.start_all("a", "b", "c")
    devices = await sign_in_all(rig)
    await wait_for(rig.settled, "every user live on one instance")
    behind_balancer = ["a", "b", "c"]
    answers: list[tuple[Any, str | None]] = []
    done = asyncio.Event()

    async def traffic() -> None:
        i = 0
        while not done.is_set():
            targets = [rig.instances[n] for n in behind_balancer if rig.instances[n].running]
            user = rig.users[i % len(rig.users)]
            try:
                r = await rig.who_am_i(user.login, targets[i % len(targets)])
                answers.append((r.status_code, r.headers.get("retry-after")))
            except httpx.TransportError as exc:
                answers.append((type(exc).__name__, None))
            i += 1
            await asyncio.sleep(0.005)

    load = asyncio.create_task(traffic())
    try:
        for name in ("a", "b", "c"):
            behind_balancer.remove(name)  # the load balancer drains it (its /readyz would say so too)
            assert await rig.stop(name) == 0
            await rig.start(name)
            behind_balancer.append(name)

            async def back(name: str = name) -> bool:  # settled, with the restarted one's share
                return await rig.settled(serving=name)

            await wait_for(back, f"every user live once after restarting {name}")
    finally:
        done.set()
        await load
    failed = [a for a in answers if a[0] != 200]
    assert all(code == 503 and retry and retry.isdigit() for code, retry in failed), failed
    assert len(answers) - len(failed) > 100, (len(answers), failed)
    for user in rig.users:
        await ring(rig, user.login)
    await wait_for(lambda: _true(all(rig.pushes(d) >= 1 for d in devices.values())), "every device got its push")
    await asyncio.sleep(1.0)
    assert {login: rig.pushes(d) for login, d in devices.items()} == {login: 1 for login in devices}

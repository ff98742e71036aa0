"""``Idempotency-Key`` on the creating routes: a repeat within the TTL answers the first outcome
(504 "unknown outcome" included) without sending the command to the MX again."""

from __future__ import annotations

import asyncio
import pytest
from starlette.responses import Response

from mxproxy.api.idempotency import IdempotencyCache
from tests.api.conftest import ApiHarness

CALL = {"from": "79031744445", "to": "79031744437"}


def mx_commands(api: ApiHarness, name: str) -> int:
    return sum(info.commands.count(name) for info in api.sim.sessions())


def keyed(api: ApiHarness, token: str, key: str) -> dict[str, str]:
    return {**api.bearer(token), "Idempotency-Key": key}


async def test_a_repeat_with_the_same_key_answers_the_first_outcome_without_dialling_again(
        api: ApiHarness, token: str) -> None:
    first = await api.client.post("/calls", json=CALL, headers=keyed(api, token, "call-7f3a"))
    again = await api.client.post("/calls", json=CALL, headers=keyed(api, token, "call-7f3a"))
    assert first.status_code == again.status_code == 200, first.text
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert mx_commands(api, "MakeCall") == 1
    other = await api.client.post("/calls", json=CALL, headers=keyed(api, token, "call-8b4c"))
    assert other.status_code == 200 and other.json() != first.json()
    assert mx_commands(api, "MakeCall") == 2


async def test_without_a_key_every_request_dials(api: ApiHarness, token: str) -> None:
    for _ in range(2):
        assert (await api.client.post("/calls", json=CALL, headers=api.bearer(token))).status_code == 200
    assert mx_commands(api, "MakeCall") == 2


async def test_a_504_is_the_unknown_outcome_and_its_retry_does_not_dial_a_second_call(
        api: ApiHarness, token: str) -> None:
    api.sim.set_delay(1.5, "MakeCall")  # the MX answers after our 1 s response timeout...
    first = await api.client.post("/calls", json=CALL, headers=keyed(api, token, "late-1"))
    assert first.status_code == 504, first.text
    for _ in range(100):  # ... and has placed the call all the same
        if api.sim.calls():
            break
        await asyncio.sleep(0.05)
    assert len(api.sim.calls()) == 1
    api.sim.clear_delays()
    retry = await api.client.post("/calls", json=CALL, headers=keyed(api, token, "late-1"))
    assert retry.status_code == 504 and retry.json() == first.json()
    assert mx_commands(api, "MakeCall") == 1 and len(api.sim.calls()) == 1


async def test_concurrent_repeats_wait_for_the_first_and_share_its_answer(api: ApiHarness, token: str) -> None:
    api.sim.set_delay(0.3, "MakeCall")
    answers = await asyncio.gather(*(api.client.post("/calls", json=CALL, headers=keyed(api, token, "burst"))
                                     for _ in range(5)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.text for r in answers}) == 1
    assert mx_commands(api, "MakeCall") == 1


async def test_the_same_key_for_another_request_is_409(api: ApiHarness, token: str) -> None:
    assert (await api.client.post("/calls", json=CALL, headers=keyed(api, token, "k1"))).status_code == 200
    r = await api.client.post("/calls", json={**CALL, "to": "3044"}, headers=keyed(api, token, "k1"))
    assert r.status_code == 409
    assert r.json() == {"error": "Idempotency-Key was already used for a different request"}
    assert mx_commands(api, "MakeCall") == 1


async def test_keys_are_per_user(api: ApiHarness, token: str) -> None:
    peter = await api.sign_in("peterh@xyzrd.com", "peter-pw")
    for t in (token, peter):
        assert (await api.client.post("/calls", json=CALL, headers=keyed(api, t, "shared"))).status_code == 200
    assert mx_commands(api, "MakeCall") == 2


@pytest.mark.parametrize("key", [b"", b"has space", "é".encode(), b"x" * 256])
async def test_a_malformed_key_is_400(api: ApiHarness, token: str, key: bytes) -> None:
    r = await api.client.post("/calls", json=CALL, headers=[*api.bearer(token).items(), ("Idempotency-Key", key)])
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["error"]
    assert mx_commands(api, "MakeCall") == 0


async def test_an_unauthenticated_request_is_not_kept(api: ApiHarness, token: str) -> None:
    r = await api.client.post("/calls", json=CALL, headers={"Idempotency-Key": "anon"})
    assert r.status_code == 401
    assert len(api.app.state.idempotency) == 0


async def test_conference_creation_honours_the_key(api: ApiHarness, token: str) -> None:
    body = {"name": "Once only", "accessId": 4242, "type": "Once"}
    answers = [await api.client.post("/conferences", json=body, headers=keyed(api, token, "conf-1")) for _ in range(3)]
    assert {r.status_code for r in answers} == {200}
    assert len({r.json()["conference"]["Id"] for r in answers}) == 1
    assert mx_commands(api, "CreateConference") == 1


async def test_kept_answers_are_bounded_and_expire() -> None:
    now = [0.0]
    cache = IdempotencyCache(ttl=60, max_keys=3, clock=lambda: now[0])
    runs = []

    async def answer() -> Response:
        runs.append(1)
        return Response(b"x", status_code=200)

    for i in range(5):
        await cache.run("u", f"k{i}", b"f", answer)
    assert len(cache) == 3 and len(runs) == 5
    await cache.run("u", "k4", b"f", answer)  # still kept
    assert len(runs) == 5
    await cache.run("u", "k0", b"f", answer)  # dropped as the oldest: runs again
    assert len(runs) == 6
    now[0] = 61.0
    await cache.run("u", "k4", b"f", answer)  # expired: runs again
    assert len(runs) == 7 and len(cache) == 1


def test_the_ttl_and_bound_come_from_the_config() -> None:
    from mxproxy.config import parse_config

    server = parse_config({"apps": {"a": "b"}, "server": {"idempotencyTTL": "2m", "idempotencyKeys": 50}}).server
    assert (server.idempotency_ttl, server.idempotency_keys) == (120.0, 50)

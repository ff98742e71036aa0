"""The session manager against the real MX simulator, the real Zultys connector and SQLite."""

from __future__ import annotations

import asyncio
import gc
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx
import pytest

from mxproxy.config import MXConfig, parse_config
from mxproxy.connectors.base import (
    AddressBookChanged,
    Delivered,
    Event,
    MXAccount,
    SessionEnded,
)
from mxproxy.connectors.errors import MXConnectionFailed, MXLoginFailed
from mxproxy.connectors.registry import create_connector
from mxproxy.provisioning import ProvisionedAccount
from mxproxy.sessions import (
    NotSignedIn,
    SessionManager,
    SessionOptions,
    SessionUnavailable,
)
from mxproxy.sessions import gcpause
from mxproxy.simulator import Fixture, Simulator, SimUser
from mxproxy.store.base import DeviceToken, Store, UserRecord
from tests.waiting import eventually

MANY = 12  # users for the concurrent-resume test


def fast_options(**changes: Any) -> SessionOptions:
    base: dict[str, Any] = dict(
        reconnect_min=0.05, reconnect_max=0.2, jitter=0.0, forced_logout_delay=60.0,
        resume_wait=10.0, sign_in_wait=10.0, stop_timeout=5.0,
    )
    base.update(changes)
    return SessionOptions(**base)


def sim_fixture() -> Fixture:
    users = [
        SimUser(login="alice", password="pw-a", ext="201", jid=1001, first_name="Alice"),
        SimUser(login="bob", password="pw-b", ext="202", jid=1002, first_name="Bob"),
    ]
    users += [SimUser(login=f"user{i}", password=f"pw{i}", ext=str(300 + i), jid=2000 + i) for i in range(MANY)]
    return Fixture(users=users)


def sim_user(sim: Simulator, login: str) -> SimUser:
    return sim.fixture.user(login)


def sessions_of(sim: Simulator, login: str) -> list[Any]:
    """The simulator's open sessions of ``login``."""
    return [s for s in sim.sessions() if s.login == login and s.active]


def history_of(sim: Simulator, login: str) -> list[Any]:
    """Every session of ``login`` since the simulator started, closed ones too (fresh snapshots)."""
    return [s for s in sim.sessions() if s.login == login]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(sim_fixture(), host="127.0.0.1", port=0, control=None)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
def mx_config() -> MXConfig:
    return MXConfig(connect_timeout=3.0, response_timeout=3.0, keepalive=30.0, read_deadline=90.0)


@pytest.fixture
async def connector(mx_config: MXConfig) -> AsyncIterator[Any]:
    conn = create_connector(mx_config)
    try:
        yield conn
    finally:
        await conn.aclose()


Factory = Callable[..., SessionManager]


@pytest.fixture
async def make_manager(connector: Any, store: Store, mx_config: MXConfig) -> AsyncIterator[Factory]:
    made: list[SessionManager] = []
    config = parse_config({"apps": {"app": "secret"}})

    def make(**changes: Any) -> SessionManager:
        manager = SessionManager(connector, store, config, options=fast_options(**changes))
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.stop()


def account(sim: Simulator, login: str, password: str, port: int | None = None) -> ProvisionedAccount:
    return ProvisionedAccount(
        login=login,
        account=MXAccount(host="127.0.0.1", port=port or sim.port, login=login, password=password),
    )


# ------------------------------------------------------------------------------------------------


async def test_sign_in_gives_a_live_monitored_session_and_stores_the_user(
    sim: Simulator, store: Store, make_manager: Factory
) -> None:
    manager = make_manager()
    session = await manager.sign_in(account(sim, "alice", "pw-a"))
    assert session.info.extension == "201"
    assert manager.state("alice") == "live"
    assert manager.get("alice").mx is session.mx
    assert manager.live_logins() == ["alice"]
    record = await store.get_user("alice")
    assert record is not None and (record.host, record.mx_login, record.password) == (
        f"127.0.0.1:{sim.port}", "alice", "pw-a")
    (info,) = sessions_of(sim, "alice")
    assert info.monitors, "MonitorStart was not sent"
    assert manager.stats.logins_ok == 1 and manager.stats.live_sessions == 1


async def test_wrong_password_at_first_sign_in_is_login_failed_and_nothing_stored(
    sim: Simulator, store: Store, make_manager: Factory
) -> None:
    manager = make_manager()
    with pytest.raises(MXLoginFailed):
        await manager.sign_in(account(sim, "alice", "wrong"))
    assert manager.state("alice") == "absent"
    assert await store.get_user("alice") is None
    with pytest.raises(NotSignedIn):
        manager.get("alice")
    assert manager.stats.logins_failed == 1


async def test_unknown_user_is_not_signed_in(make_manager: Factory) -> None:
    with pytest.raises(NotSignedIn):
        make_manager().get("nobody")


async def test_incoming_call_is_cached_reaches_listeners_and_is_cleared_on_hangup(
    sim: Simulator, make_manager: Factory
) -> None:
    manager = make_manager()
    seen: list[tuple[str, Event]] = []
    manager.add_listener(lambda login, event: seen.append((login, event)))
    manager.add_listener(lambda login, event: 1 / 0)  # a broken listener must not stop the others
    session = await manager.sign_in(account(sim, "alice", "pw-a"))
    call_id = await sim.incoming_call(to_ext="201", from_number="3044", from_name="Peter Hyde")
    await eventually(lambda: session.calls.get(call_id) is not None, "Delivered cached")
    info = session.calls.get(call_id)
    assert info is not None and info["type"] == "Delivered" and info["callId"] == call_id
    assert any(login == "alice" and isinstance(e, Delivered) and e.call_id == call_id for login, e in seen)
    assert manager.stats.listener_errors > 0
    await sim.hangup(call_id, by="3044")
    await eventually(lambda: session.calls.get(call_id) is None, "call info cleared on ConnectionCleared")


async def test_dropped_socket_reconnects_by_itself_keeping_calls_and_recordings(
    sim: Simulator, make_manager: Factory
) -> None:
    manager = make_manager()
    session = await manager.sign_in(account(sim, "alice", "pw-a"))
    call_id = await sim.incoming_call(to_ext="201", from_number="3044", from_name="Peter Hyde")
    mail_id = await sim.leave_voicemail(ext="201", from_number="3044", from_name="Peter Hyde", duration=3,
                                        media_type="Recording")
    await eventually(lambda: session.calls.get(call_id) is not None and session.recordings.get(str(mail_id)) is not None,
                     "call and recording seen")
    first = session.mx
    await sim.drop_session("alice")
    await eventually(lambda: manager.stats.reconnects == 1 and manager.state("alice") == "live", "reconnected")
    again = manager.get("alice")
    assert again.mx is not first
    assert again.calls.get(call_id) is not None  # the call-info cache survives the reconnect
    assert again.recordings.get(str(mail_id)) is not None
    await eventually(lambda: len(sessions_of(sim, "alice")) == 1, "exactly one MX session")


async def test_reconnecting_user_gets_session_unavailable_and_sign_in_joins_the_reconnect(
    sim: Simulator, make_manager: Factory
) -> None:
    manager = make_manager(reconnect_min=60.0, reconnect_max=60.0)  # the owner would wait a minute
    await manager.sign_in(account(sim, "alice", "pw-a"))
    await sim.drop_session("alice")
    await eventually(lambda: manager.state("alice") == "reconnecting", "reconnecting")
    with pytest.raises(SessionUnavailable) as err:
        manager.get("alice")
    assert err.value.retry_after >= 1
    session = await manager.sign_in(account(sim, "alice", "pw-a"))  # wakes the owner and waits
    assert manager.state("alice") == "live" and manager.get("alice").mx is session.mx
    assert len(sessions_of(sim, "alice")) == 1
    assert manager.stats.reconnects == 1


async def test_sign_in_joining_a_failing_reconnect_reports_its_error(
    sim: Simulator, make_manager: Factory
) -> None:
    manager = make_manager(reconnect_min=60.0, reconnect_max=60.0)
    await manager.sign_in(account(sim, "alice", "pw-a"))
    port = sim.port
    await sim.stop()  # the MX goes away entirely
    await eventually(lambda: manager.state("alice") == "reconnecting", "reconnecting")
    with pytest.raises(MXConnectionFailed):
        await manager.sign_in(account(sim, "alice", "pw-a", port=port))
    assert manager.state("alice") == "reconnecting"


async def test_forced_logout_is_not_fought_until_the_user_signs_in_again(
    sim: Simulator, make_manager: Factory
) -> None:
    manager = make_manager(forced_logout_delay=60.0)
    await manager.sign_in(account(sim, "alice", "pw-a"))
    await sim.force_logout("alice", mode="forced")
    await eventually(lambda: manager.state("alice") == "forced_logout", "forced logout surfaced")
    assert manager.stats.forced_logouts == 1
    with pytest.raises(SessionUnavailable) as err:
        manager.get("alice")
    assert err.value.retry_after > 1
    await asyncio.sleep(0.3)  # several reconnect_min periods: no reconnect loop started
    assert sessions_of(sim, "alice") == [] and manager.state("alice") == "forced_logout"
    await manager.sign_in(account(sim, "alice", "pw-a"))
    assert manager.state("alice") == "live" and len(sessions_of(sim, "alice")) == 1


async def test_changed_mx_password_on_reconnect_marks_needs_reauth_not_deleted(
    sim: Simulator, store: Store, make_manager: Factory
) -> None:
    manager = make_manager()
    await manager.sign_in(account(sim, "alice", "pw-a"))
    await store.put_token(DeviceToken(kind="apn", topic="com.example.app", token="ab" * 32, login="alice"))
    sim_user(sim, "alice").password = "changed"
    await sim.drop_session("alice")
    await eventually(lambda: manager.state("alice") == "needs_reauth", "needs_reauth")
    record = await store.get_user("alice")
    assert record is not None and record.needs_reauth
    assert await store.tokens_for_user("alice")  # kept for when they sign in again
    with pytest.raises(NotSignedIn):
        manager.get("alice")
    await manager.sign_in(account(sim, "alice", "changed"))
    assert manager.state("alice") == "live"
    record = await store.get_user("alice")
    assert record is not None and not record.needs_reauth and record.password == "changed"


async def test_different_password_for_live_session_is_checked_by_a_fresh_login(
    sim: Simulator, store: Store, make_manager: Factory
) -> None:
    manager = make_manager()
    first = await manager.sign_in(account(sim, "alice", "pw-a"))
    with pytest.raises(MXLoginFailed):
        await manager.sign_in(account(sim, "alice", "not-the-password"))
    assert manager.get("alice").mx is first.mx  # the live session is untouched
    record = await store.get_user("alice")
    assert record is not None and record.password == "pw-a"

    sim_user(sim, "alice").password = "rotated"
    second = await manager.sign_in(account(sim, "alice", "rotated"))
    assert second.mx is not first.mx and manager.get("alice").mx is second.mx
    record = await store.get_user("alice")
    assert record is not None and record.password == "rotated"
    await eventually(lambda: len(sessions_of(sim, "alice")) == 1, "old MX session closed")
    assert manager.state("alice") == "live"


async def test_same_credentials_reuse_the_live_session(sim: Simulator, make_manager: Factory) -> None:
    manager = make_manager()
    first = await manager.sign_in(account(sim, "alice", "pw-a"))
    second = await manager.sign_in(account(sim, "alice", "pw-a"))
    assert second.mx is first.mx and len(sessions_of(sim, "alice")) == 1


async def test_logout_says_goodbye_and_deletes_user_and_tokens(
    sim: Simulator, store: Store, make_manager: Factory
) -> None:
    manager = make_manager()
    session = await manager.sign_in(account(sim, "alice", "pw-a"))
    await store.put_token(DeviceToken(kind="fcm", topic="app-id", token="tok-1", login="alice"))
    assert len(sessions_of(sim, "alice")) == 1
    assert await manager.logout("alice") is True
    (info,) = history_of(sim, "alice")
    assert "logout" in info.commands
    assert await store.get_user("alice") is None
    assert await store.tokens_for_user("alice") == []
    assert manager.state("alice") == "absent" and not session.mx.is_alive
    with pytest.raises(NotSignedIn):
        manager.get("alice")
    assert await manager.logout("alice") is False


async def peak_pending_logins(sim: Simulator, work: Awaitable[None]) -> int:
    """Run ``work`` and return the most MX logins the simulator had waiting for an answer at once."""
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            pending = [s for s in sim.sessions() if s.active and not s.logged_in and "loginRequest" in s.commands]
            peak = max(peak, len(pending))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        await work
    finally:
        watcher.cancel()
    return peak


async def test_start_resumes_stored_users_concurrently_despite_failures(
    sim: Simulator, store: Store, make_manager: Factory
) -> None:
    host = f"127.0.0.1:{sim.port}"
    for i in range(MANY):
        await store.put_user(UserRecord(login=f"user{i}", host=host, mx_login=f"user{i}", password=f"pw{i}"))
    await store.put_user(UserRecord(login="bob", host=host, mx_login="bob", password="stale"))  # rejected
    await store.put_user(UserRecord(login="alice", host="127.0.0.1:1", mx_login="alice", password="pw-a"))  # down
    sim.set_delay(0.3, command="loginRequest")  # logins overlap only if they run concurrently
    manager = make_manager(resume_concurrency=100)
    peak = await peak_pending_logins(sim, manager.start())
    sim.set_delay(0)
    assert manager.live_logins() == sorted(f"user{i}" for i in range(MANY))
    assert peak > 1, "stored users were resumed one by one"
    assert manager.state("bob") == "needs_reauth"
    assert manager.state("alice") == "reconnecting"
    with pytest.raises(SessionUnavailable):
        manager.get("alice")
    bob = await store.get_user("bob")
    assert bob is not None and bob.needs_reauth


async def test_resume_runs_at_most_resume_concurrency_logins_at_once(
    sim: Simulator, store: Store, make_manager: Factory
) -> None:
    host = f"127.0.0.1:{sim.port}"
    for i in range(MANY):
        await store.put_user(UserRecord(login=f"user{i}", host=host, mx_login=f"user{i}", password=f"pw{i}"))
    sim.set_delay(0.1, command="loginRequest")
    manager = make_manager(resume_concurrency=3)
    peak = await peak_pending_logins(sim, manager.start())
    sim.set_delay(0)
    assert manager.live_logins() == sorted(f"user{i}" for i in range(MANY))
    assert 1 < peak <= 3, peak


async def test_full_collections_are_held_while_stored_users_resume_and_come_back_once_all_attempted(
    sim: Simulator, store: Store, make_manager: Factory
) -> None:
    host = f"127.0.0.1:{sim.port}"
    for i in range(MANY):
        await store.put_user(UserRecord(login=f"user{i}", host=host, mx_login=f"user{i}", password=f"pw{i}"))
    await store.put_user(UserRecord(login="bob", host=host, mx_login="bob", password="stale"))  # fails: attempted too
    before = gc.get_threshold()
    sim.set_delay(0.2, command="loginRequest")
    manager = make_manager(resume_concurrency=3, resume_wait=0.01)  # start() returns while users still resume
    await manager.start()
    assert gcpause.held(), "full collections would walk the growing heap of sessions"
    assert gc.get_threshold()[:2] == before[:2]  # young collections still collect short-lived garbage
    await eventually(lambda: len(manager.live_logins()) == MANY and manager.state("bob") == "needs_reauth",
                     "every stored user attempted")
    await eventually(lambda: not gcpause.held(), "the hold released")
    assert gc.get_threshold() == before
    sim.set_delay(0)


async def test_backoff_doubles_up_to_the_cap_and_jitter_only_shortens_it(make_manager: Factory) -> None:
    manager = make_manager(reconnect_min=1.0, reconnect_max=8.0, jitter=0.2)
    for failures, base in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (4, 8.0), (50, 8.0)]:
        delays = {manager._backoff(failures) for _ in range(50)}
        assert all(base * 0.8 <= d <= base for d in delays), (failures, sorted(delays))
        assert len(delays) > 1, "no jitter: every user would retry in lockstep"


async def test_stop_logs_out_every_session(sim: Simulator, make_manager: Factory) -> None:
    manager = make_manager()
    await manager.sign_in(account(sim, "alice", "pw-a"))
    await manager.sign_in(account(sim, "bob", "pw-b"))
    await manager.stop()
    infos = history_of(sim, "alice") + history_of(sim, "bob")
    assert len(infos) == 2 and all("logout" in info.commands for info in infos)
    assert manager.live_logins() == []
    await eventually(lambda: not sessions_of(sim, "alice") and not sessions_of(sim, "bob"),
                     "simulator saw the sessions close")


async def test_directory_is_cached_per_mx_and_concurrent_misses_share_one_fetch(
    sim: Simulator, make_manager: Factory
) -> None:
    manager = make_manager(directory_ttl=60.0)
    alice = await manager.sign_in(account(sim, "alice", "pw-a"))
    bob = await manager.sign_in(account(sim, "bob", "pw-b"))
    results = await asyncio.gather(alice.directory(), bob.directory(), alice.directory())
    assert results[0] and results[0] == results[1] == results[2]
    assert alice.directory_cache is bob.directory_cache
    assert alice.directory_cache.fetches == 1
    await alice.directory()
    assert alice.directory_cache.fetches == 1
    manager.invalidate_directory()
    await bob.directory()
    assert alice.directory_cache.fetches == 2


async def test_address_book_change_on_the_mx_drops_the_cached_directory_before_its_ttl(
    make_manager: Factory
) -> None:
    sim = Simulator(sim_fixture(), host="127.0.0.1", port=0, control="127.0.0.1:0")
    other_mx = Simulator(sim_fixture(), host="127.0.0.1", port=0)
    await sim.start()
    await other_mx.start()
    try:
        manager = make_manager(directory_ttl=3600.0)
        seen: list[Event] = []
        manager.add_listener(lambda login, event: seen.append(event))
        alice = await manager.sign_in(account(sim, "alice", "pw-a"))
        bob = await manager.sign_in(account(other_mx, "bob", "pw-b"))  # another MX: its own cache
        await eventually(lambda: [s.ab_notify for s in sessions_of(sim, "alice")] == [True], "MonitorStartAb sent")
        first = await alice.directory()
        assert await alice.directory() == first and await bob.directory() == first
        assert alice.directory_cache.fetches == 1 and bob.directory_cache.fetches == 1
        async with httpx.AsyncClient(base_url=sim.control_url) as http:
            r = await http.post("/directory", json={"ext": "299", "firstName": "Dora", "lastName": "New"})
            assert r.status_code == 200, r.text
        await eventually(lambda: not alice.directory_cache.cached, "the address-book event dropped the cache")
        after = await alice.directory()
        assert alice.directory_cache.fetches == 2
        assert [c.first_name for c in after if c.ext == "299"] == ["Dora"] and len(after) == len(first) + 1
        assert bob.directory_cache.cached and bob.directory_cache.fetches == 1  # other MX untouched
        changes = [e for e in seen if isinstance(e, AddressBookChanged)]
        assert [(e.kind, e.contact.ext if e.contact else "") for e in changes] == [("add", "299")]
    finally:
        await other_mx.stop()
        await sim.stop()


async def test_session_ended_event_is_the_last_a_listener_sees_on_drop(
    sim: Simulator, make_manager: Factory
) -> None:
    manager = make_manager(reconnect_min=60.0, reconnect_max=60.0)
    ended: list[SessionEnded] = []
    manager.add_listener(lambda login, e: ended.append(e) if isinstance(e, SessionEnded) else None)
    await manager.sign_in(account(sim, "alice", "pw-a"))
    await sim.drop_session("alice")
    await eventually(lambda: bool(ended), "SessionEnded fanned out")
    assert ended[0].mode != "forced"


async def test_options_come_from_the_mx_table_and_bad_values_name_the_key() -> None:
    from mxproxy.config import ConfigError

    config = parse_config({"apps": {"a": "b"}, "mx": {"reconnectMin": "500ms", "reconnectMax": "5s",
                                                      "forcedLogoutDelay": "10m", "resumeConcurrency": 7,
                                                      "callLogTTL": "45s"}})
    options = SessionOptions.from_config(config)
    assert (options.reconnect_min, options.reconnect_max, options.forced_logout_delay,
            options.resume_concurrency, options.call_log_ttl) == (0.5, 5.0, 600.0, 7, 45.0)
    assert SessionOptions.from_config(parse_config({"apps": {"a": "b"}})).call_log_ttl == 30.0
    for mx, key in [({"reconnectMin": "soon"}, "mx.reconnectMin"), ({"resumeConcurrency": 0}, "mx.resumeConcurrency"),
                    ({"reconnectMin": "10s", "reconnectMax": "1s"}, "mx.reconnectMax")]:
        with pytest.raises(ConfigError) as err:
            SessionOptions.from_config(parse_config({"apps": {"a": "b"}, "mx": mx}))
        assert str(err.value).startswith(key + ":")


async def test_call_log_is_cached_per_user_until_the_session_reconnects(
    sim: Simulator, make_manager: Factory
) -> None:
    manager = make_manager(call_log_ttl=60.0)
    alice = await manager.sign_in(account(sim, "alice", "pw-a"))
    sim.fixture.set_call_log("alice", 3)
    assert len(await alice.call_log()) == 3
    sim.fixture.set_call_log("alice", 5)  # a change the proxy heard nothing about
    assert len(await alice.call_log()) == 3  # served from the cache
    assert alice.call_log_cache.fetches == 1
    await sim.drop_session("alice")  # while it is down, calls may end unseen
    await eventually(lambda: manager.stats.reconnects == 1 and manager.state("alice") == "live", "reconnected")
    assert len(await manager.get("alice").call_log()) == 5
    assert alice.call_log_cache.fetches == 2  # the cache is the user's, across sessions


async def test_a_hang_up_event_drops_the_cached_call_log(sim: Simulator, make_manager: Factory) -> None:
    manager = make_manager(call_log_ttl=60.0)
    alice = await manager.sign_in(account(sim, "alice", "pw-a"))
    await alice.call_log()
    call_id = await sim.incoming_call(to_ext="201", from_number="3044", from_name="Peter Hyde")
    await eventually(lambda: alice.calls.get(call_id) is not None, "Delivered seen")
    assert alice.call_log_cache.cached(None)  # ringing changes nothing in the log
    await sim.hangup(call_id, by="3044")
    await eventually(lambda: not alice.call_log_cache.cached(None), "ConnectionCleared dropped the cached log")


async def test_zero_ttls_in_the_config_mean_every_request_asks_the_mx(
    sim: Simulator, connector: Any, store: Store
) -> None:
    config = parse_config({"apps": {"app": "secret"}, "mx": {"directoryTTL": "0s", "callLogTTL": "0s"}})
    manager = SessionManager(connector, store, config)
    try:
        alice = await manager.sign_in(account(sim, "alice", "pw-a"))
        for _ in range(2):
            await alice.directory()
            await alice.call_log()
        assert (alice.directory_cache.fetches, alice.call_log_cache.fetches) == (2, 2)
    finally:
        await manager.stop()


async def test_the_live_sessions_gauge_follows_every_change_of_every_user(
    sim: Simulator, store: Store, make_manager: Factory
) -> None:
    """Counted per change (not by a recount over every user, which made resuming n users
    O(n²)): it equals the number of live logins through resume, drop, reconnect, sign-in of a
    second user, logout and stop."""
    host = f"127.0.0.1:{sim.port}"
    for i in range(MANY):
        await store.put_user(UserRecord(login=f"user{i}", host=host, mx_login=f"user{i}", password=f"pw{i}"))
    await store.put_user(UserRecord(login="bob", host=host, mx_login="bob", password="stale"))  # never live
    manager = make_manager()

    def consistent() -> bool:
        return manager.stats.live_sessions == len(manager.live_logins())

    await manager.start()
    assert manager.stats.live_sessions == MANY and consistent()
    await sim.drop_session("user0")
    await eventually(lambda: manager.state("user0") == "reconnecting" or manager.stats.reconnects == 1,
                     "user0 dropped")
    assert consistent()
    await eventually(lambda: manager.stats.reconnects == 1 and manager.state("user0") == "live", "reconnected")
    assert manager.stats.live_sessions == MANY and consistent()
    await manager.sign_in(account(sim, "alice", "pw-a"))
    assert manager.stats.live_sessions == MANY + 1 and consistent()
    assert await manager.logout("user1") is True
    assert manager.stats.live_sessions == MANY and consistent()
    await manager.stop()
    assert manager.stats.live_sessions == 0

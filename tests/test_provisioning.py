"""Provisioning: the URL service against a real local HTTP server, and the static table."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

import httpx
import pytest
import pytest_asyncio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mxproxy.config import ConfigError, parse_config
from mxproxy.provisioning import (
    MSG_NOT_CONFIGURED,
    MSG_UNPROTECTED,
    ProvisioningError,
    StaticProvisioner,
    URLProvisioner,
    create_provisioner,
    hash_password,
    main,
    parse_static,
)

# one provisioning server for the whole module (starting uvicorn per test costs more than the tests)
pytestmark = pytest.mark.asyncio(loop_scope="module")

GOOD_MX = {
    "account_name": "dmitrys",
    "account_pwd": "secret",
    "address": "10.0.0.1",
    "csta_port": "7778",
    "csta_ssl": True,
    "sn": "63022",
}


@dataclass
class Canned:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ProvisioningPeer:
    """A local provisioning service: answers what a test put in ``routes``, records requests."""

    base: str = ""
    routes: dict[str, Canned] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)

    def serve_json(self, name: str, document: Any, status: int = 200, delay: float = 0.0) -> str:
        self.routes[name] = Canned(status, json.dumps(document).encode(), delay)
        return f"{self.base}/{name}"

    def serve_raw(self, name: str, body: bytes, status: int = 200, delay: float = 0.0) -> str:
        self.routes[name] = Canned(status, body, delay)
        return f"{self.base}/{name}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def peer_server() -> AsyncIterator[ProvisioningPeer]:
    state = ProvisioningPeer()

    async def handle(request: Request) -> Response:
        state.requests.append({k.lower(): v for k, v in request.headers.items()})
        canned = state.routes.get(request.path_params["name"])
        if canned is None:
            return Response(b'{"error":"not found"}', status_code=404, media_type="application/json")
        if canned.delay:
            await asyncio.sleep(canned.delay)
        return Response(canned.body, status_code=canned.status, media_type="application/json",
                        headers=canned.headers)

    app = Starlette(routes=[Route("/{name}", handle)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    state.base = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
def peer(peer_server: ProvisioningPeer) -> ProvisioningPeer:
    peer_server.routes.clear()
    peer_server.requests.clear()
    return peer_server


async def provision(url: str, *, timeout: float = 10.0, bearer: str | None = None) -> Any:
    prov = URLProvisioner(url, timeout=timeout)
    try:
        if bearer is not None:
            return await prov.by_bearer(bearer)
        return await prov.by_password("dmitrys@xyzrd.com", "pa:ss")
    finally:
        await prov.aclose()


# -------------------------------------------------------------------------------- URL mode


async def test_ok_response_gives_account_and_sends_basic_credentials(peer: ProvisioningPeer) -> None:
    url = peer.serve_json("config", {"MX": GOOD_MX, "other": {"x": 1}})
    acct = await provision(url)
    assert acct.login == "dmitrys"
    assert acct.server_id == "63022"
    assert (acct.account.host, acct.account.port) == ("10.0.0.1", 7778)
    assert (acct.account.login, acct.account.password) == ("dmitrys", "secret")
    headers = peer.requests[-1]
    assert headers["user-agent"] == "MXProxy/2.3"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"dmitrys@xyzrd.com:pa:ss").decode()


async def test_redirects_are_followed_like_gos_http_client(peer: ProvisioningPeer) -> None:
    url = peer.serve_json("config", {"MX": GOOD_MX})
    peer.routes["old"] = Canned(308, b"", headers={"Location": url})
    acct = await provision(f"{peer.base}/old")
    assert acct.login == "dmitrys"
    # same origin: the user's credentials go along to the new location
    assert peer.requests[-1]["authorization"].startswith("Basic ")


async def test_a_redirect_loop_is_a_bad_gateway_not_a_hang(peer: ProvisioningPeer) -> None:
    peer.routes["loop"] = Canned(302, b"", headers={"Location": f"{peer.base}/loop"})
    with pytest.raises(ProvisioningError) as err:
        await provision(f"{peer.base}/loop")
    assert err.value.status == 502


async def test_bearer_token_is_passed_through_unchanged(peer: ProvisioningPeer) -> None:
    url = peer.serve_json("config", {"MX": GOOD_MX})
    await provision(url, bearer="eyJ.az.ure")
    assert peer.requests[-1]["authorization"] == "Bearer eyJ.az.ure"


async def test_keys_match_case_insensitively_like_go(peer: ProvisioningPeer) -> None:
    mx = {"Account_Name": "bob", "ACCOUNT_PWD": "pw", "Address": "mx.local", "Csta_Port": "7779", "CSTA_SSL": True}
    acct = await provision(peer.serve_json("config", {"mx": mx}))
    assert (acct.login, acct.account.password, acct.account.host, acct.account.port) == ("bob", "pw", "mx.local", 7779)


async def test_numeric_csta_port_is_accepted(peer: ProvisioningPeer) -> None:
    acct = await provision(peer.serve_json("config", {"MX": {**GOOD_MX, "csta_port": 7780}}))
    assert acct.account.port == 7780


@pytest.mark.parametrize("status,phrase", [(401, "Unauthorized"), (403, "Forbidden"), (404, "Not Found"),
                                           (500, "Internal Server Error")])
async def test_non_200_passes_status_through_with_standard_reason(
    peer: ProvisioningPeer, status: int, phrase: str
) -> None:
    url = peer.serve_json("config", {"error": "whatever"}, status=status)
    with pytest.raises(ProvisioningError) as err:
        await provision(url)
    assert (err.value.status, err.value.message) == (status, phrase)


async def test_bad_json_is_502(peer: ProvisioningPeer) -> None:
    with pytest.raises(ProvisioningError) as err:
        await provision(peer.serve_raw("config", b"{not json"))
    assert err.value.status == 502


async def test_wrong_field_type_is_502(peer: ProvisioningPeer) -> None:
    with pytest.raises(ProvisioningError) as err:
        await provision(peer.serve_json("config", {"MX": {**GOOD_MX, "csta_ssl": "yes"}}))
    assert err.value.status == 502


async def test_missing_mx_object_is_403_not_a_crash(peer: ProvisioningPeer) -> None:
    with pytest.raises(ProvisioningError) as err:
        await provision(peer.serve_json("config", {"SIP": {}}))
    assert (err.value.status, err.value.message) == (403, MSG_NOT_CONFIGURED)


@pytest.mark.parametrize("key", ["account_name", "account_pwd", "address", "csta_port"])
async def test_empty_required_field_is_403(peer: ProvisioningPeer, key: str) -> None:
    with pytest.raises(ProvisioningError) as err:
        await provision(peer.serve_json("config", {"MX": {**GOOD_MX, key: ""}}))
    assert (err.value.status, err.value.message) == (403, MSG_NOT_CONFIGURED)


@pytest.mark.parametrize("ssl", [False, None])
async def test_unprotected_mx_is_403(peer: ProvisioningPeer, ssl: bool | None) -> None:
    mx = {**GOOD_MX, "csta_ssl": ssl} if ssl is not None else {k: v for k, v in GOOD_MX.items() if k != "csta_ssl"}
    with pytest.raises(ProvisioningError) as err:
        await provision(peer.serve_json("config", {"MX": mx}))
    assert (err.value.status, err.value.message) == (403, MSG_UNPROTECTED)


async def test_slow_provisioning_is_504(peer: ProvisioningPeer) -> None:
    url = peer.serve_json("config", {"MX": GOOD_MX}, delay=0.5)
    with pytest.raises(ProvisioningError) as err:
        await provision(url, timeout=0.1)
    assert err.value.status == 504


async def test_connection_refused_is_503() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(ProvisioningError) as err:
        await provision(f"http://127.0.0.1:{port}/config")
    assert err.value.status == 503


async def test_shared_http_client_is_used_and_not_closed(peer: ProvisioningPeer) -> None:
    url = peer.serve_json("config", {"MX": GOOD_MX})
    async with httpx.AsyncClient() as client:
        prov = URLProvisioner(url, http=client)
        await prov.by_password("a", "b")
        await prov.aclose()
        assert not client.is_closed


async def test_url_mode_refuses_identity_lookup(peer: ProvisioningPeer) -> None:
    prov = URLProvisioner(peer.serve_json("config", {"MX": GOOD_MX}))
    try:
        with pytest.raises(ProvisioningError) as err:
            await prov.by_identity("dmitrys@xyzrd.com")
        assert err.value.status == 403
    finally:
        await prov.aclose()


# -------------------------------------------------------------------------------- static mode


def config_with(static: dict[str, Any] | None, **extra: Any) -> Any:
    data: dict[str, Any] = {"apps": {"app": "secret"}, **extra}
    if static is not None:
        data["static"] = static
    return parse_config(data)


async def test_create_provisioner_picks_url_mode_without_static_table() -> None:
    prov = create_provisioner(config_with(None, provisioning="http://127.0.0.1:9/config"))
    assert isinstance(prov, URLProvisioner) and prov.url == "http://127.0.0.1:9/config"


async def test_static_users_accept_scrypt_hash_and_reject_wrong_password() -> None:
    static = {
        "host": "127.0.0.1:7778",
        "users": {"dmitrys@xyzrd.com": {"password": hash_password("right", n=2**4), "mxLogin": "dmitrys",
                                        "mxPassword": "mxpw"}},
    }
    prov = create_provisioner(config_with(static))
    assert isinstance(prov, StaticProvisioner)
    acct = await prov.by_password("dmitrys@xyzrd.com", "right")
    assert (acct.login, acct.account.login, acct.account.password) == ("dmitrys", "dmitrys", "mxpw")
    assert (acct.account.host, acct.account.port) == ("127.0.0.1", 7778)
    for user, pw in [("dmitrys@xyzrd.com", "wrong"), ("nobody", "right"), ("dmitrys@xyzrd.com", "")]:
        with pytest.raises(ProvisioningError) as err:
            await prov.by_password(user, pw)
        assert err.value.status == 403


def _record_scrypt(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every ``hashlib.scrypt`` call's cost parameters (the real function still does the work)."""
    calls: list[tuple[Any, ...]] = []
    real = hashlib.scrypt

    def recording(password: bytes, *, salt: bytes, n: int, r: int, p: int, dklen: int = 64,
                  maxmem: int = 0) -> bytes:
        calls.append((n, r, p, dklen, len(salt), maxmem))
        return real(password, salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=maxmem)

    monkeypatch.setattr(hashlib, "scrypt", recording)
    return calls


@pytest.mark.parametrize("unknown", ["nobody", "", "dmitrys@xyzrd.co", "x" * 300])
async def test_unknown_user_costs_the_same_scrypt_work_and_gets_the_same_answer(
        monkeypatch: pytest.MonkeyPatch, unknown: str) -> None:
    cheap, costly = hash_password("a", n=2**4, r=2), hash_password("b", n=2**6, r=3, p=2)
    static = {"host": "127.0.0.1:7778",
              "users": {"dmitrys@xyzrd.com": {"password": costly, "mxPassword": "mxpw"},
                        "peter": {"password": cheap, "mxPassword": "mxpw"}}}
    prov = create_provisioner(config_with(static))
    calls = _record_scrypt(monkeypatch)
    answers = []
    for user in ("dmitrys@xyzrd.com", unknown):
        with pytest.raises(ProvisioningError) as err:
            await prov.by_password(user, "wrong")
        answers.append((err.value.status, err.value.message))
    assert calls == [(2**6, 3, 2, 32, 16, 256 * 1024 * 1024)] * 2  # the costliest configured hash, twice
    assert answers[0] == answers[1]


async def test_unknown_user_never_signs_in_whatever_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    static = {"host": "127.0.0.1:7778", "users": {"a": {"password": "pw", "mxPassword": "mxpw"}}}
    prov = create_provisioner(config_with(static))
    for password in ("pw", "", "x" * 40):
        with pytest.raises(ProvisioningError):
            await prov.by_password("b", password)


async def test_static_plain_password_and_env_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALICE_MX_PW", "from-env")
    static = {"users": {"alice": {"password": "pw", "mxPassword": "env:ALICE_MX_PW", "host": "mx.local"}}}
    prov = create_provisioner(config_with(static))
    acct = await prov.by_password("ALICE", "pw")  # sign-in names are case-insensitive
    assert (acct.login, acct.account.password, acct.account.port) == ("alice", "from-env", 7778)


async def test_static_bearer_refused_but_validated_identity_found() -> None:
    static = {"host": "mx:1", "users": {"bob@corp": {"password": "x", "mxLogin": "bob", "mxPassword": "y"}}}
    prov = create_provisioner(config_with(static))
    with pytest.raises(ProvisioningError) as err:
        await prov.by_bearer("some.id.token")
    assert err.value.status == 403
    assert (await prov.by_identity("bob@corp")).login == "bob"
    with pytest.raises(ProvisioningError):
        await prov.by_identity("eve@corp")


async def test_static_direct_mode_passes_credentials_to_the_mx() -> None:
    prov = create_provisioner(config_with({"mode": "direct", "host": "mx.example.com:7779"}))
    acct = await prov.by_password("carol", "pw")
    assert (acct.login, acct.account.login, acct.account.password) == ("carol", "carol", "pw")
    assert (acct.account.host, acct.account.port) == ("mx.example.com", 7779)
    with pytest.raises(ProvisioningError):
        await prov.by_identity("carol")


@pytest.mark.parametrize(
    "static,key",
    [
        ({"mode": "ldap"}, "static.mode"),
        ({"mode": "direct"}, "static.host"),
        ({"mode": "direct", "host": "mx:notaport"}, "static.host"),
        ({"host": "mx:1"}, "static.users"),
        ({"host": "mx:1", "users": {"a": {"mxPassword": "x"}}}, 'static.users."a".password'),
        ({"host": "mx:1", "users": {"a": {"password": "x"}}}, 'static.users."a".mxPassword'),
        ({"users": {"a": {"password": "x", "mxPassword": "y"}}}, 'static.users."a".host'),
        ({"host": "mx:1", "users": {"a": {"password": "scrypt$1$2", "mxPassword": "y"}}}, 'static.users."a".password'),
        ({"host": "mx:1", "users": {"a": {"password": "x", "mxPassword": "y", "pwd": "z"}}}, 'static.users."a".pwd'),
        ({"host": "mx:1", "users": {"a": {"password": 5, "mxPassword": "y"}}}, 'static.users."a".password'),
        ({"host": "mx:1", "users": {"a": {"password": "x", "mxPassword": "env:MXPROXY_TEST_UNSET_VAR"}}},
         'static.users."a".mxPassword'),
        ({"hosts": "mx:1"}, "static.hosts"),
    ],
)
async def test_bad_static_config_names_the_key(static: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_static(static)
    assert str(err.value).startswith(key + ":"), str(err.value)


async def test_hash_helper_prints_a_verifiable_hash(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert main([]) == 0
    digest = capsys.readouterr().out.strip()
    static = parse_static({"host": "mx:1", "users": {"u": {"password": digest, "mxPassword": "m"}}})
    user = static.users["u"]
    assert user.check_password("s3cret") and not user.check_password("s3cret ")


async def test_plain_text_static_passwords_give_one_warning_for_all_users(caplog: pytest.LogCaptureFixture) -> None:
    users = {f"user{i}@example.org": {"password": f"pw{i}", "mxPassword": "m"} for i in range(17)}
    users["hashed"] = {"password": hash_password("x", n=2**4), "mxPassword": "m"}
    with caplog.at_level("WARNING", logger="mxproxy.provisioning"):
        parse_static({"host": "mx:1", "users": users})
    [record] = [r for r in caplog.records if "plain text" in r.getMessage()]
    assert "17 user(s)" in record.getMessage() and "14 more" in record.getMessage()
    assert "pw1" not in caplog.text  # names, never the passwords

"""Azure AD id_token validation against a local JWKS server (a real HTTP peer on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from mxproxy.auth.azure import AzureADValidator, AzureIdentity
from mxproxy.auth.errors import AzureTokenRejected, AzureUnavailable
from mxproxy.config import AzureConfig

from .conftest import FakeClock

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "11111111-2222-3333-4444-555555555555"
AUDIENCE = "6731de76-14a6-49ae-97bc-6eba6914391e"
V2_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"


class JWKSServer:
    """A tiny HTTP/1.1 server answering every GET with the current JWK set, counting requests."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        self.status = 200
        self.body: bytes | None = None  # overrides the JWK set when set
        self._server: asyncio.Server | None = None
        self.port = 0

    def serve_only(self, **keys: rsa.RSAPrivateKey) -> None:
        self.keys = dict(keys)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/common/discovery/v2.0/keys"

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig"})
        keys.append({"kty": "oct", "kid": "symmetric", "k": "c2VjcmV0"})  # must be ignored
        return {"keys": keys}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.fetches += 1
            body = self.body if self.body is not None else json.dumps(self.jwks()).encode()
            head = (
                f"HTTP/1.1 {self.status} {'OK' if self.status == 200 else 'Error'}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture(scope="module")
def rsa_keys() -> dict[str, rsa.RSAPrivateKey]:
    return {name: rsa.generate_private_key(public_exponent=65537, key_size=2048) for name in ("k1", "k2", "evil")}


@pytest.fixture
async def jwks(rsa_keys: dict[str, rsa.RSAPrivateKey]) -> AsyncIterator[JWKSServer]:
    server = JWKSServer()
    server.serve_only(k1=rsa_keys["k1"])
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def mono() -> FakeClock:
    return FakeClock(1000.0)


def config(url: str, tenants: tuple[str, ...] = (TENANT,)) -> AzureConfig:
    return AzureConfig(tenants=tenants, audiences=(AUDIENCE, "api://other"), jwks_url=url, clock_skew=60.0)


@pytest.fixture
async def validator(jwks: JWKSServer, mono: FakeClock) -> AsyncIterator[AzureADValidator]:
    v = AzureADValidator(config(jwks.url), clock=mono)
    yield v
    await v.aclose()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "aud": AUDIENCE,
        "iss": V2_ISSUER,
        "iat": now - 5,
        "nbf": now - 5,
        "exp": now + 3600,
        "tid": TENANT,
        "oid": "00000000-0000-0000-0000-00000000abcd",
        "upn": "alice@example.com",
        "preferred_username": "alice.pref@example.com",
        "email": "alice.mail@example.com",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: rsa.RSAPrivateKey, kid: str, body: dict[str, Any], alg: str = "RS256") -> str:
    return pyjwt.encode(body, key, algorithm=alg, headers={"kid": kid})


async def rejected(validator: AzureADValidator, token: str) -> str:
    with pytest.raises(AzureTokenRejected) as info:
        await validator.validate(token)
    assert info.value.status == 403 and info.value.message == info.value.reason
    return info.value.reason


async def test_valid_token_identifies_the_user_by_upn(validator: AzureADValidator, rsa_keys: dict) -> None:
    identity = await validator.validate(sign(rsa_keys["k1"], "k1", claims()))
    assert identity == AzureIdentity(
        username="alice@example.com", tenant=TENANT, object_id="00000000-0000-0000-0000-00000000abcd",
        claims=identity.claims,
    )
    assert identity.claims["aud"] == AUDIENCE


async def test_username_falls_back_to_preferred_username_then_email(
    validator: AzureADValidator, rsa_keys: dict
) -> None:
    k1 = rsa_keys["k1"]
    assert (await validator.validate(sign(k1, "k1", claims(upn=None)))).username == "alice.pref@example.com"
    only_mail = claims(upn=None, preferred_username=None)
    assert (await validator.validate(sign(k1, "k1", only_mail))).username == "alice.mail@example.com"
    nobody = claims(upn=None, preferred_username=None, email=None)
    assert await rejected(validator, sign(k1, "k1", nobody)) == "token has no user name"


async def test_v1_issuer_of_the_same_tenant_is_accepted(validator: AzureADValidator, rsa_keys: dict) -> None:
    token = sign(rsa_keys["k1"], "k1", claims(iss=f"https://sts.windows.net/{TENANT}/", aud="api://other"))
    assert (await validator.validate(token)).tenant == TENANT


async def test_wrong_audience_is_rejected(validator: AzureADValidator, rsa_keys: dict) -> None:
    token = sign(rsa_keys["k1"], "k1", claims(aud="some-other-app"))
    assert await rejected(validator, token) == "bad token audience"


@pytest.mark.parametrize(
    "issuer",
    [
        f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0",  # another tenant's issuer
        "https://login.microsoftonline.com/common/v2.0",
        "https://evil.example/",
        None,
    ],
)
async def test_issuer_not_matching_the_tokens_tenant_is_rejected(
    validator: AzureADValidator, rsa_keys: dict, issuer: str | None
) -> None:
    reason = await rejected(validator, sign(rsa_keys["k1"], "k1", claims(iss=issuer)))
    assert reason == ("token has no iss claim" if issuer is None else "bad token issuer")


async def test_expired_token_is_rejected_beyond_the_clock_skew(validator: AzureADValidator, rsa_keys: dict) -> None:
    now = int(time.time())
    assert (await validator.validate(sign(rsa_keys["k1"], "k1", claims(exp=now - 30)))).tenant == TENANT
    assert await rejected(validator, sign(rsa_keys["k1"], "k1", claims(exp=now - 600))) == "token expired"


async def test_token_not_yet_valid_is_rejected(validator: AzureADValidator, rsa_keys: dict) -> None:
    now = int(time.time())
    token = sign(rsa_keys["k1"], "k1", claims(nbf=now + 600))
    assert await rejected(validator, token) == "token not yet valid"


async def test_tenant_outside_the_allow_list_is_rejected(validator: AzureADValidator, rsa_keys: dict) -> None:
    body = claims(tid=OTHER_TENANT, iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0")
    assert await rejected(validator, sign(rsa_keys["k1"], "k1", body)) == "bad user azure tenant"


async def test_any_tenant_is_accepted_without_an_allow_list(jwks: JWKSServer, rsa_keys: dict) -> None:
    v = AzureADValidator(config(jwks.url, tenants=()))
    try:
        body = claims(tid=OTHER_TENANT, iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0")
        assert (await v.validate(sign(rsa_keys["k1"], "k1", body))).tenant == OTHER_TENANT
    finally:
        await v.aclose()


async def test_signature_by_another_key_under_a_known_kid_is_rejected(
    validator: AzureADValidator, rsa_keys: dict
) -> None:
    assert await rejected(validator, sign(rsa_keys["evil"], "k1", claims())) == "bad token signature"


async def test_other_algorithms_are_refused_before_any_key_lookup(
    validator: AzureADValidator, jwks: JWKSServer
) -> None:
    hs = pyjwt.encode(claims(), "a-shared-secret-of-enough-length!", algorithm="HS256", headers={"kid": "k1"})
    assert await rejected(validator, hs) == "unsupported token algorithm"
    none = pyjwt.encode(claims(), None, algorithm="none", headers={"kid": "k1"})
    assert await rejected(validator, none) == "unsupported token algorithm"
    assert await rejected(validator, "not.a-token") == "malformed token"
    assert await rejected(validator, "garbage") == "malformed token"
    assert jwks.fetches == 0


async def test_unknown_kid_refetches_the_keys_after_a_rotation(
    validator: AzureADValidator, jwks: JWKSServer, rsa_keys: dict, mono: FakeClock
) -> None:
    await validator.validate(sign(rsa_keys["k1"], "k1", claims()))
    assert jwks.fetches == 1
    jwks.serve_only(k2=rsa_keys["k2"])  # Microsoft rotated
    mono.advance(validator.refetch_interval)
    identity = await validator.validate(sign(rsa_keys["k2"], "k2", claims()))
    assert identity.username == "alice@example.com"
    assert jwks.fetches == 2
    await validator.validate(sign(rsa_keys["k2"], "k2", claims()))
    assert jwks.fetches == 2  # cached


async def test_unknown_kid_refetch_is_rate_limited(
    validator: AzureADValidator, jwks: JWKSServer, rsa_keys: dict, mono: FakeClock
) -> None:
    await validator.validate(sign(rsa_keys["k1"], "k1", claims()))
    forged = sign(rsa_keys["evil"], "made-up-kid", claims())
    for _ in range(5):
        assert await rejected(validator, forged) == "unknown signing key"
    assert jwks.fetches == 1  # still inside the interval since the first fetch
    mono.advance(validator.refetch_interval)
    for _ in range(5):
        assert await rejected(validator, forged) == "unknown signing key"
    assert jwks.fetches == 2


async def test_concurrent_requests_share_one_fetch(
    validator: AzureADValidator, jwks: JWKSServer, rsa_keys: dict
) -> None:
    token = sign(rsa_keys["k1"], "k1", claims())
    results = await asyncio.gather(*(validator.validate(token) for _ in range(20)))
    assert {r.username for r in results} == {"alice@example.com"}
    assert jwks.fetches == 1


async def test_jwks_server_down_is_unavailable(rsa_keys: dict, mono: FakeClock) -> None:
    server = JWKSServer()
    await server.start()
    url = server.url
    await server.stop()  # nothing listens on that port any more
    v = AzureADValidator(config(url), clock=mono)
    try:
        with pytest.raises(AzureUnavailable) as info:
            await v.validate(sign(rsa_keys["k1"], "k1", claims()))
        assert info.value.status == 503
    finally:
        await v.aclose()


@pytest.mark.parametrize("status, body", [(500, b"{}"), (200, b"<html>"), (200, b"[]"), (200, b'{"keys": []}')])
async def test_unusable_jwks_answer_is_unavailable_and_retried_after_a_pause(
    validator: AzureADValidator, jwks: JWKSServer, rsa_keys: dict, mono: FakeClock, status: int, body: bytes
) -> None:
    jwks.status, jwks.body = status, body
    token = sign(rsa_keys["k1"], "k1", claims())
    for _ in range(3):
        with pytest.raises(AzureUnavailable):
            await validator.validate(token)
    assert jwks.fetches == 1  # failures are not retried on every request
    jwks.status, jwks.body = 200, None
    mono.advance(validator.retry_after_failure)
    assert (await validator.validate(token)).username == "alice@example.com"
    assert jwks.fetches == 2


async def test_failed_refresh_of_stale_keys_keeps_serving_the_cached_ones(
    jwks: JWKSServer, rsa_keys: dict, mono: FakeClock
) -> None:
    async with httpx.AsyncClient() as http:
        v = AzureADValidator(config(jwks.url), http, clock=mono, max_age=3600.0)
        token = sign(rsa_keys["k1"], "k1", claims())
        await v.validate(token)
        jwks.status = 503
        mono.advance(3600)
        assert (await v.validate(token)).tenant == TENANT
        assert jwks.fetches == 2
        await v.aclose()  # leaves a caller's client open
        assert not http.is_closed


def test_validator_needs_an_audience() -> None:
    with pytest.raises(ValueError):
        AzureADValidator(AzureConfig())

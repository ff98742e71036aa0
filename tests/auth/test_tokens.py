"""Access tokens: the original's shape, strict ES256-only verification, the verified-token cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mxproxy.auth.errors import AuthError, InvalidToken
from mxproxy.auth.keyring import KeyRing
from mxproxy.auth.tokens import Claims, TokenService
from mxproxy.config import JWTConfig
from mxproxy.store.base import Store

from .conftest import FakeClock, StoreFactory

JWT = JWTConfig(token_ttl=300.0, sign_key_ttl=60.0)


@pytest.fixture
async def keys(store: Store, clock: FakeClock) -> KeyRing:
    ring = KeyRing(store, JWT, clock, skew=5.0)
    await ring.load()
    return ring


@pytest.fixture
def service(keys: KeyRing) -> TokenService:
    return TokenService(keys, JWT)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(obj: dict[str, Any]) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return pyjwt.get_unverified_header(token), pyjwt.decode(token, options={"verify_signature": False})


async def signed_by_ring(keys: KeyRing, claims: dict[str, Any], **header: Any) -> str:
    key = await keys.signing_key()
    return pyjwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid, **header})


async def reason(service: TokenService, token: str) -> str:
    with pytest.raises(InvalidToken) as info:
        await service.verify(token)
    assert str(info.value) == f"invalid token: {info.value.reason}"
    assert info.value.message == str(info.value)
    return info.value.reason


async def test_issued_token_has_the_original_header_and_claims(service: TokenService, clock: FakeClock) -> None:
    issued = await service.issue("alice")
    header, claims = parts(issued.access_token)
    assert header == {"alg": "ES256", "typ": "JWT", "kid": header["kid"]}
    now = int(clock.now)
    assert claims == {"exp": now + 300, "iat": now - 10, "jti": issued.jti, "sub": "alice"}
    assert re.fullmatch(r"[A-Za-z0-9_-]{8}", issued.jti)
    assert issued.expires_in == 300 and issued.exp == now + 300
    raw_signature = base64.urlsafe_b64decode(issued.access_token.rsplit(".", 1)[1] + "==")
    assert len(raw_signature) == 64  # JWS r‖s, not DER


async def test_round_trip_returns_the_claims(service: TokenService, clock: FakeClock) -> None:
    issued = await service.issue("alice")
    claims = await service.verify(issued.access_token)
    assert claims == Claims(
        sub="alice", exp=issued.exp, iat=int(clock.now) - 10, jti=issued.jti, kid=parts(issued.access_token)[0]["kid"]
    )


async def test_each_token_gets_its_own_jti(service: TokenService) -> None:
    jtis = {(await service.issue("alice")).jti for _ in range(20)}
    assert len(jtis) == 20


async def test_token_expires_at_exp_even_when_cached(service: TokenService, clock: FakeClock) -> None:
    issued = await service.issue("alice")
    await service.verify(issued.access_token)
    clock.advance(299)
    assert (await service.verify(issued.access_token)).sub == "alice"
    clock.advance(1)
    assert await reason(service, issued.access_token) == "token expired"
    assert service.cache_len() == 0


async def test_token_from_a_rotated_key_verifies_until_it_expires(
    keys: KeyRing, service: TokenService, clock: FakeClock
) -> None:
    old = await service.issue("alice")
    clock.advance(61)
    new = await service.issue("bob")
    assert parts(new.access_token)[0]["kid"] != parts(old.access_token)[0]["kid"]
    fresh = TokenService(keys, JWT)  # no cache: the old key really verifies it
    assert (await fresh.verify(old.access_token)).sub == "alice"
    clock.advance(300)
    await keys.prune()
    assert await reason(fresh, old.access_token) == "token expired"


async def test_iss_and_aud_are_added_and_checked_when_configured(keys: KeyRing) -> None:
    cfg = JWTConfig(token_ttl=300.0, sign_key_ttl=60.0, issuer="https://proxy.example", audience="mx-apps")
    issued = await TokenService(keys, cfg).issue("alice")
    _, claims = parts(issued.access_token)
    assert claims["iss"] == "https://proxy.example" and claims["aud"] == "mx-apps"
    assert (await TokenService(keys, cfg).verify(issued.access_token)).sub == "alice"
    other_iss = JWTConfig(token_ttl=300.0, sign_key_ttl=60.0, issuer="https://elsewhere", audience="mx-apps")
    assert await reason(TokenService(keys, other_iss), issued.access_token) == "bad token issuer"
    other_aud = JWTConfig(token_ttl=300.0, sign_key_ttl=60.0, issuer="https://proxy.example", audience="x")
    assert await reason(TokenService(keys, other_aud), issued.access_token) == "bad token audience"
    plain = await TokenService(keys, JWT).issue("bob")  # no iss/aud at all
    assert await reason(TokenService(keys, cfg), plain.access_token) == "bad token issuer"


async def test_iat_in_the_future_is_rejected_beyond_the_leeway(
    keys: KeyRing, service: TokenService, clock: FakeClock
) -> None:
    now = int(clock.now)
    base = {"exp": now + 300, "jti": "abcdefgh", "sub": "alice"}
    assert (await service.verify(await signed_by_ring(keys, {**base, "iat": now + 5}))).sub == "alice"
    token = await signed_by_ring(keys, {**base, "iat": now + 60})
    assert await reason(service, token) == "token created after now"


async def test_nbf_in_the_future_is_rejected(keys: KeyRing, service: TokenService, clock: FakeClock) -> None:
    now = int(clock.now)
    token = await signed_by_ring(keys, {"exp": now + 300, "iat": now, "nbf": now + 60, "jti": "x", "sub": "a"})
    assert await reason(service, token) == "token not before now"


async def test_token_missing_subject_is_rejected(keys: KeyRing, service: TokenService, clock: FakeClock) -> None:
    now = int(clock.now)
    token = await signed_by_ring(keys, {"exp": now + 300, "iat": now, "jti": "x"})
    assert await reason(service, token) == "bad token claims"


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [10**400, -(10**400), 2**63, 1e308 * 10])
async def test_claimed_time_beyond_64_bits_is_a_bad_claim_not_a_crash(
        keys: KeyRing, service: TokenService, clock: FakeClock, claim: str, value: float) -> None:
    now = int(clock.now)
    claims: dict[str, Any] = {"exp": now + 300, "iat": now, "jti": "x", "sub": "a", claim: value}
    token = await signed_by_ring(keys, claims)
    assert await reason(service, token) in ("bad token claims", "token not before now")


async def test_wrong_typ_is_a_bad_token_type(keys: KeyRing, service: TokenService, clock: FakeClock) -> None:
    now = int(clock.now)
    token = await signed_by_ring(keys, {"exp": now + 300, "iat": now, "jti": "x", "sub": "a"}, typ="at+jwt")
    assert await reason(service, token) == "bad token type"


@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "x" * 10_000])
async def test_malformed_token_is_an_invalid_token(service: TokenService, token: str) -> None:
    assert await reason(service, token) == "invalid token"


async def test_token_without_signature_is_not_signed(service: TokenService) -> None:
    issued = await service.issue("alice")
    unsigned = issued.access_token.rsplit(".", 1)[0] + "."
    assert await reason(service, unsigned) == "token not signed"


async def test_tampered_payload_fails_the_signature(service: TokenService) -> None:
    issued = await service.issue("alice")
    header, payload, signature = issued.access_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = f"{header}.{segment({**claims, 'sub': 'admin'})}.{signature}"
    assert await reason(service, forged) == "bad token signature"


async def test_tampered_signature_fails(service: TokenService) -> None:
    issued = await service.issue("alice")
    head, signature = issued.access_token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    assert await reason(service, f"{head}.{b64(bytes(raw))}") == "bad token signature"


async def test_signature_by_a_foreign_p256_key_under_our_kid_fails(
    keys: KeyRing, service: TokenService, clock: FakeClock
) -> None:
    kid = (await keys.signing_key()).kid
    foreign = ec.generate_private_key(ec.SECP256R1())
    now = int(clock.now)
    token = pyjwt.encode({"exp": now + 300, "iat": now, "jti": "x", "sub": "a"}, foreign, algorithm="ES256", headers={"kid": kid})
    assert await reason(service, token) == "bad token signature"


async def test_alg_none_is_refused(keys: KeyRing, service: TokenService, clock: FakeClock) -> None:
    kid = (await keys.signing_key()).kid
    now = int(clock.now)
    body = segment({"exp": now + 300, "iat": now, "jti": "x", "sub": "admin"})
    head = segment({"alg": "none", "typ": "JWT", "kid": kid})
    assert await reason(service, f"{head}.{body}.") == "token not signed"
    assert await reason(service, f"{head}.{body}.{b64(b'x' * 64)}") == "unknown or obsolete signing key"


async def test_hs256_signed_with_our_public_key_is_refused(
    keys: KeyRing, service: TokenService, clock: FakeClock
) -> None:
    key = await keys.signing_key()
    public_pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(clock.now)
    signing_input = segment({"alg": "HS256", "typ": "JWT", "kid": key.kid}) + "." + segment(
        {"exp": now + 300, "iat": now, "jti": "x", "sub": "admin"}
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert await reason(service, f"{signing_input}.{b64(mac)}") == "unknown or obsolete signing key"


async def test_rs256_with_an_unknown_key_is_refused(keys: KeyRing, service: TokenService, clock: FakeClock) -> None:
    kid = (await keys.signing_key()).kid
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(clock.now)
    claims = {"exp": now + 300, "iat": now, "jti": "x", "sub": "admin"}
    for header_kid in (kid, "attacker"):
        token = pyjwt.encode(claims, rsa_key, algorithm="RS256", headers={"kid": header_kid})
        assert await reason(service, token) == "unknown or obsolete signing key"


async def test_unknown_kid_is_refused(keys: KeyRing, service: TokenService, clock: FakeClock) -> None:
    now = int(clock.now)
    foreign = ec.generate_private_key(ec.SECP256R1())
    claims = {"exp": now + 300, "iat": now, "jti": "x", "sub": "a"}
    for kid in ("nope", "s41a0w-zzzz"):
        token = pyjwt.encode(claims, foreign, algorithm="ES256", headers={"kid": kid})
        assert await reason(service, token) == "unknown or obsolete signing key"
    token = pyjwt.encode(claims, foreign, algorithm="ES256")  # no kid at all
    assert await reason(service, token) == "unknown or obsolete signing key"


async def test_repeated_token_is_served_from_the_cache(service: TokenService) -> None:
    issued = await service.issue("alice")
    for _ in range(5):
        assert (await service.verify(issued.access_token)).sub == "alice"
    assert service.stats.signature_checks == 1
    assert service.stats.cache_hits == 4


async def test_rejected_tokens_are_not_cached(service: TokenService) -> None:
    issued = await service.issue("alice")
    head, _ = issued.access_token.rsplit(".", 1)
    bad = f"{head}.{b64(b'0' * 64)}"
    for _ in range(2):
        await reason(service, bad)
    assert service.stats.signature_checks == 2
    assert service.cache_len() == 0


async def test_forget_subject_drops_only_that_subjects_entries(service: TokenService) -> None:
    alice = [await service.issue("alice") for _ in range(2)]
    bob = await service.issue("bob")
    for token in (*alice, bob):
        await service.verify(token.access_token)
    assert service.forget_subject("alice") == 2
    assert service.forget_subject("alice") == 0
    checks = service.stats.signature_checks
    await service.verify(bob.access_token)
    assert service.stats.signature_checks == checks  # bob still cached
    await service.verify(alice[0].access_token)
    assert service.stats.signature_checks == checks + 1  # alice checked in full again


async def test_cache_is_bounded_and_evicts_the_least_recently_used(keys: KeyRing) -> None:
    service = TokenService(keys, JWT, cache_size=2)
    a, b, c = [await service.issue(s) for s in ("a", "b", "c")]
    await service.verify(a.access_token)
    await service.verify(b.access_token)
    await service.verify(a.access_token)  # a is now the most recent
    await service.verify(c.access_token)  # evicts b
    assert service.cache_len() == 2
    checks = service.stats.signature_checks
    await service.verify(a.access_token)
    assert service.stats.signature_checks == checks
    await service.verify(b.access_token)
    assert service.stats.signature_checks == checks + 1
    assert service.forget_subject("b") == 1 and service.forget_subject("c") == 0  # c was evicted by b


def test_invalid_token_is_an_auth_error_with_the_original_text() -> None:
    error = InvalidToken("token expired")
    assert isinstance(error, AuthError)
    assert str(error) == "invalid token: token expired" and error.reason == "token expired"


# -- revocation ------------------------------------------------------------------------------------


async def test_revoked_token_is_refused_even_from_the_cache(service: TokenService) -> None:
    token = (await service.issue("alice")).access_token
    await service.verify(token)  # cached
    assert await service.revoke("alice") == 1
    assert await reason(service, token) == "token revoked"
    fresh = (await service.issue("alice")).access_token
    assert parts(fresh)[1]["gen"] == 1
    assert (await service.verify(fresh)).gen == 1
    other = (await service.issue("bob")).access_token
    assert "gen" not in parts(other)[1]  # never revoked: the original's claims exactly
    assert (await service.verify(other)).sub == "bob"


@pytest.mark.parametrize("gen", [-1, 1.5, True, "1", 2**63])
async def test_malformed_generation_claim_is_a_bad_claim(keys: KeyRing, service: TokenService, clock: FakeClock,
                                                         gen: Any) -> None:
    now = int(clock.now)
    token = await signed_by_ring(keys, {"exp": now + 300, "iat": now, "jti": "x", "sub": "a", "gen": gen})
    assert await reason(service, token) == "bad token claims"


async def test_sign_out_on_one_instance_is_honoured_by_another_within_revocation_check(
        shared_store: StoreFactory, clock: FakeClock) -> None:
    one_ring, two_ring = KeyRing(await shared_store(), JWT, clock), KeyRing(await shared_store(), JWT, clock)
    await one_ring.load()
    await two_ring.load()
    one, two = TokenService(one_ring, JWT), TokenService(two_ring, JWT)
    token = (await one.issue("alice")).access_token
    assert (await two.verify(token)).sub == "alice"
    await one.revoke("alice")
    fresh = (await one.issue("alice")).access_token
    clock.advance(JWT.revocation_check)
    assert await reason(two, token) == "token revoked"
    assert (await two.verify(fresh)).gen == 1
    assert await reason(one, token) == "token revoked"


async def test_within_revocation_check_the_cache_costs_no_store_read(shared_store: StoreFactory,
                                                                     clock: FakeClock) -> None:
    store = await shared_store()
    ring = KeyRing(store, JWT, clock)
    await ring.load()
    service = TokenService(ring, JWT)
    token = (await service.issue("alice")).access_token
    await service.verify(token)
    await store.close()  # any store read from here on would fail
    for _ in range(3):
        assert (await service.verify(token)).sub == "alice"
        clock.advance(JWT.revocation_check / 4)


async def test_revocation_check_zero_reads_the_store_every_time(shared_store: StoreFactory, clock: FakeClock) -> None:
    strict = JWTConfig(token_ttl=300.0, sign_key_ttl=60.0, revocation_check=0.0)
    one_ring, two_ring = KeyRing(await shared_store(), strict, clock), KeyRing(await shared_store(), strict, clock)
    await one_ring.load()
    await two_ring.load()
    one, two = TokenService(one_ring, strict), TokenService(two_ring, strict)
    token = (await one.issue("alice")).access_token
    await two.verify(token)
    await one.revoke("alice")
    assert await reason(two, token) == "token revoked"  # no clock movement needed

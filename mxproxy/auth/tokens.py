"""Our access tokens: ES256 JWTs issued at sign-in and checked on every API call.

Token shape is the original's (§7.3): header ``{"alg":"ES256","typ":"JWT","kid":…}``, claims
``exp`` = now + tokenTTL, ``iat`` = now − 10 s, ``jti`` = 8 random base64url characters (48 bits,
as the original; nothing looks it up), ``sub`` = MX login; plus ``iss``/``aud`` only when
``[jwt] issuer`` / ``audience`` are configured.

Verification checks the header first (type, algorithm, key), then the signature, and only then
looks at the claims — so nothing unauthenticated is trusted — with the original's messages,
wrapped in ``InvalidToken`` (``invalid token: token expired`` …). Only ES256 is accepted: a token
naming ``none``, ``HS256`` or ``RS256`` is refused before any key is touched.

A verified token is remembered (bounded LRU keyed by the token string, each entry dropping out at
the token's ``exp``), so a client repeating its token costs a dictionary lookup: no signature
check, no store access.

Revocation: the store keeps a per-user token generation, bumped at every sign-out (``revoke``) and
kept when the user is deleted. A token carries the generation it was issued under in a ``gen``
claim (left out while it is 0, so a user never signed out gets the original's token shape), and
is refused (``token revoked``) once the store's generation is higher. Each instance remembers a
user's generation for ``[jwt] revocationCheck`` (5 s; 0 = read the store on every request), so a
sign-out on one instance is honoured by every instance sharing the store within that time, and
the cached path still costs no store access.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from jwt.exceptions import InvalidSignatureError, PyJWTError

from mxproxy.auth.errors import InvalidToken
from mxproxy.auth.keyring import KeyRing
from mxproxy.config import JWTConfig
from mxproxy.store.base import StoreError

log = logging.getLogger(__name__)

ALGORITHM = "ES256"
IAT_BACKDATE = 10  # seconds; the original sets iat = now − 10 s
JTI_BYTES = 6  # → 8 base64url characters, as the original
MAX_TOKEN_LENGTH = 8192  # ours are ~300 bytes; anything huge is refused before parsing

UNKNOWN_KEY = "unknown or obsolete signing key"


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int  # seconds, = tokenTTL (the /auth response field)
    jti: str
    exp: int


@dataclass(frozen=True)
class Claims:
    sub: str
    exp: int
    iat: int
    jti: str
    kid: str
    gen: int = 0  # the user's token generation when it was issued


@dataclass
class TokenStats:
    issued: int = 0
    cache_hits: int = 0
    signature_checks: int = 0  # tokens whose signature was actually verified
    rejected: int = 0


def new_jti() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(JTI_BYTES)).rstrip(b"=").decode("ascii")


class TokenService:
    def __init__(
        self,
        keyring: KeyRing,
        jwt: JWTConfig,
        *,
        leeway: float = 10.0,
        cache_size: int = 10_000,
    ) -> None:
        self.keyring = keyring
        self.jwt = jwt
        self.clock = keyring.clock
        self.leeway = leeway  # tolerance for iat/nbf a little in the future (peer clock drift)
        self.cache_size = cache_size
        self.stats = TokenStats()
        self._jws = pyjwt.PyJWS()
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._by_subject: dict[str, set[str]] = {}
        self._generations: dict[str, tuple[int, float]] = {}  # sub → (generation, read at)
        self._store_warned = False

    # -- issuing ------------------------------------------------------------------------------
    async def issue(self, sub: str) -> IssuedToken:
        key = await self.keyring.signing_key()
        gen = await self._read_generation(sub)
        now = int(self.clock())
        exp = now + int(self.jwt.token_ttl)
        jti = new_jti()
        claims: dict[str, Any] = {}  # keys in sorted order, as the original's JSON
        if self.jwt.audience:
            claims["aud"] = self.jwt.audience
        claims["exp"] = exp
        if gen:
            claims["gen"] = gen
        claims["iat"] = now - IAT_BACKDATE
        if self.jwt.issuer:
            claims["iss"] = self.jwt.issuer
        claims["jti"] = jti
        claims["sub"] = sub
        token = pyjwt.encode(claims, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"})
        self.stats.issued += 1
        return IssuedToken(access_token=token, expires_in=int(self.jwt.token_ttl), jti=jti, exp=exp)

    # -- verifying ----------------------------------------------------------------------------
    async def verify(self, token: str) -> Claims:
        """Claims of a valid token, else ``InvalidToken``."""
        claims = self._cache.get(token)
        if claims is not None:
            now = self.clock()
            if now < claims.exp:
                known = self._generations.get(claims.sub)
                if known is not None and now - known[1] < self.jwt.revocation_check and claims.gen >= known[0]:
                    self._cache.move_to_end(token)
                    self.stats.cache_hits += 1
                    return claims
                if await self._current_generation(claims.sub) <= claims.gen:
                    self._cache.move_to_end(token)
                    self.stats.cache_hits += 1
                    return claims
                self._drop(token)
                self.stats.rejected += 1
                raise InvalidToken("token revoked")
            self._drop(token)
        try:
            claims = await self._verify_uncached(token)
            if claims.gen < await self._current_generation(claims.sub):
                raise InvalidToken("token revoked")
        except InvalidToken:
            self.stats.rejected += 1
            raise
        self._remember(token, claims)
        return claims

    # -- revocation ----------------------------------------------------------------------------
    async def revoke(self, sub: str) -> int:
        """Every token of ``sub`` issued so far stops working, here at once and on the other
        instances sharing the store within ``revocationCheck``; returns the new generation."""
        store = self.keyring.store
        if store is None:
            gen = self._generations.get(sub, (0, 0.0))[0] + 1
        else:
            gen = await store.revoke_tokens(sub)
        self._generations[sub] = (gen, self.clock())
        self.forget_subject(sub)
        return gen

    async def _current_generation(self, sub: str) -> int:
        known = self._generations.get(sub)
        now = self.clock()
        if known is not None and now - known[1] < self.jwt.revocation_check:
            return known[0]
        gen = await self._read_generation(sub, default=known[0] if known else 0)
        self._generations[sub] = (gen, now)
        return gen

    async def _read_generation(self, sub: str, default: int = 0) -> int:
        store = self.keyring.store
        if store is None:
            return self._generations.get(sub, (default, 0.0))[0]
        try:
            gen = await store.token_generation(sub)
        except StoreError as exc:  # keep serving on what we last knew; the store's own checks fail loudly
            if not self._store_warned:
                log.warning("token revocation: store unreachable, using the last known generations: %s", exc)
                self._store_warned = True
            return default
        self._store_warned = False
        return gen

    async def _verify_uncached(self, token: str) -> Claims:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken("invalid token")
        try:
            header = self._jws.get_unverified_header(token)
        except PyJWTError:
            raise InvalidToken("invalid token") from None
        if header.get("typ") not in (None, "", "JWT"):
            raise InvalidToken("bad token type")
        if not token.rsplit(".", 1)[1]:
            raise InvalidToken("token not signed")
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM or not isinstance(kid, str) or header.get("crit"):
            raise InvalidToken(UNKNOWN_KEY)
        key = self.keyring.get(kid) or await self.keyring.find(kid)
        if key is None:
            raise InvalidToken(UNKNOWN_KEY)
        self.stats.signature_checks += 1
        try:
            decoded = self._jws.decode_complete(token, key.public_key, algorithms=[ALGORITHM])
        except InvalidSignatureError:
            raise InvalidToken("bad token signature") from None
        except PyJWTError:
            raise InvalidToken("invalid token") from None
        try:
            payload = json.loads(decoded["payload"])
        except (ValueError, RecursionError):
            raise InvalidToken("invalid token") from None
        return self._check_claims(payload, kid)

    def _check_claims(self, payload: Any, kid: str) -> Claims:
        if not isinstance(payload, dict):
            raise InvalidToken("invalid token")
        sub, exp, iat, jti = (payload.get(k) for k in ("sub", "exp", "iat", "jti"))
        if not (isinstance(sub, str) and sub and _is_number(exp) and _is_number(iat) and isinstance(jti, str)):
            raise InvalidToken("bad token claims")
        gen = payload.get("gen", 0)
        if isinstance(gen, bool) or not isinstance(gen, int) or not 0 <= gen < MAX_CLAIM_TIME:
            raise InvalidToken("bad token claims")
        now = self.clock()
        if iat > now + self.leeway:
            raise InvalidToken("token created after now")
        if now >= exp:
            raise InvalidToken("token expired")
        nbf = payload.get("nbf")
        if nbf is not None and (not _is_number(nbf) or nbf > now + self.leeway):
            raise InvalidToken("token not before now")
        if self.jwt.issuer is not None and payload.get("iss") != self.jwt.issuer:
            raise InvalidToken("bad token issuer")
        if self.jwt.audience is not None:
            aud = payload.get("aud")
            audiences = aud if isinstance(aud, list) else [aud]
            if self.jwt.audience not in audiences:
                raise InvalidToken("bad token audience")
        return Claims(sub=sub, exp=int(exp), iat=int(iat), jti=jti, kid=kid, gen=gen)

    # -- cache ----------------------------------------------------------------------------------
    def forget_subject(self, sub: str) -> int:
        """Drop every cached verification of ``sub``'s tokens (on logout), so the next call with
        one of them is checked in full. Returns how many entries were dropped."""
        tokens = self._by_subject.pop(sub, set())
        for token in tokens:
            self._cache.pop(token, None)
        return len(tokens)

    def cache_len(self) -> int:
        return len(self._cache)

    def _remember(self, token: str, claims: Claims) -> None:
        if self.cache_size <= 0:
            return
        self._cache[token] = claims
        self._by_subject.setdefault(claims.sub, set()).add(token)
        while len(self._cache) > self.cache_size:
            old_token, old_claims = self._cache.popitem(last=False)
            self._unindex(old_token, old_claims.sub)

    def _drop(self, token: str) -> None:
        claims = self._cache.pop(token, None)
        if claims is not None:
            self._unindex(token, claims.sub)

    def _unindex(self, token: str, sub: str) -> None:
        tokens = self._by_subject.get(sub)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._by_subject[sub]
                self._generations.pop(sub, None)  # re-read with the next token of theirs


# Claimed times beyond 64-bit seconds are refused as bad claims: an int past the float range makes
# ``math.isfinite`` raise OverflowError, and no real token needs them.
MAX_CLAIM_TIME = 2**63


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return -MAX_CLAIM_TIME < value < MAX_CLAIM_TIME and (isinstance(value, int) or math.isfinite(value))

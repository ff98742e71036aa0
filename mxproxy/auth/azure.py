"""Local validation of Azure AD id_tokens presented as ``Authorization: Bearer`` at ``POST /auth``.

The original forwarded the token to the provisioning server, which checked the signature and
``tid`` but neither audience nor issuer (§6.4, §9.22): any app's Azure token for the tenant was
good enough. When ``[azure]`` is configured we check it here first: RS256 signature against
Microsoft's published keys (JWKS), ``aud`` among the configured audiences, ``iss`` matching the
token's own tenant (v2 ``https://login.microsoftonline.com/{tid}/v2.0`` or v1
``https://sts.windows.net/{tid}/``), ``exp``/``nbf``/``iat`` with ``clock_skew``, and ``tid`` in
the allow-list when one is given.

Keys are fetched with httpx and cached. A token with an unknown ``kid`` (Microsoft rotated)
triggers a refetch, at most once per ``refetch_interval``; concurrent requests share one fetch.
The whole set is refreshed after ``max_age`` even without an unknown kid, so removed keys stop
working; if that refresh fails the cached keys keep serving.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
import jwt as pyjwt
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAudienceError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from mxproxy import outbound
from mxproxy.auth.errors import AzureTokenRejected, AzureUnavailable
from mxproxy.config import AzureConfig

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
MAX_TOKEN_LENGTH = 16384
ISSUER_V2 = "https://login.microsoftonline.com/{tid}/v2.0"
ISSUER_V1 = "https://sts.windows.net/{tid}/"
USERNAME_CLAIMS = ("upn", "preferred_username", "email")


@dataclass(frozen=True)
class AzureIdentity:
    username: str  # upn, else preferred_username, else email
    tenant: str  # tid
    object_id: str | None  # oid: stable id of the user in the tenant
    claims: Mapping[str, Any] = field(repr=False)


@dataclass
class AzureStats:
    fetches: int = 0
    fetch_failures: int = 0
    validated: int = 0
    rejected: int = 0


class AzureADValidator:
    def __init__(
        self,
        config: AzureConfig,
        http: httpx.AsyncClient | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        refetch_interval: float = 30.0,
        retry_after_failure: float = 5.0,
        max_age: float = 24 * 3600.0,
        timeout: float = 10.0,
    ) -> None:
        if not config.audiences:
            raise ValueError("azure: at least one audience is required to validate id_tokens")
        self.config = config
        self.clock = clock  # monotonic: only for the fetch schedule; token times use wall time
        self.refetch_interval = refetch_interval
        self.retry_after_failure = retry_after_failure
        self.max_age = max_age
        self.timeout = timeout
        self.stats = AzureStats()
        self._http = http
        self._own_http = http is None
        self._tenants = frozenset(t.lower() for t in config.tenants)
        self._keys: dict[str, Any] | None = None  # kid -> RSA public key
        self._fetched_at = -math.inf
        self._last_attempt = -math.inf
        self._last_error: str | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- validation -----------------------------------------------------------------------------
    async def validate(self, id_token: str) -> AzureIdentity:
        """The signed-in Azure AD user, or ``AzureTokenRejected`` / ``AzureUnavailable``."""
        try:
            identity = await self._validate(id_token)
        except AzureTokenRejected:
            self.stats.rejected += 1
            raise
        self.stats.validated += 1
        return identity

    async def _validate(self, id_token: str) -> AzureIdentity:
        if not isinstance(id_token, str) or len(id_token) > MAX_TOKEN_LENGTH or id_token.count(".") != 2:
            raise AzureTokenRejected("malformed token")
        try:
            header = pyjwt.get_unverified_header(id_token)
        except PyJWTError:
            raise AzureTokenRejected("malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise AzureTokenRejected("unsupported token algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AzureTokenRejected("token has no key id")
        key = await self._key(kid)
        try:
            claims = pyjwt.decode(
                id_token,
                key,
                algorithms=[ALGORITHM],
                audience=list(self.config.audiences),
                leeway=self.config.clock_skew,
                options={"require": ["exp", "iss", "aud"], "verify_iss": False},
            )
        except ExpiredSignatureError:
            raise AzureTokenRejected("token expired") from None
        except ImmatureSignatureError:
            raise AzureTokenRejected("token not yet valid") from None
        except InvalidAudienceError:
            raise AzureTokenRejected("bad token audience") from None
        except InvalidSignatureError:
            raise AzureTokenRejected("bad token signature") from None
        except MissingRequiredClaimError as exc:
            raise AzureTokenRejected(f"token has no {exc.claim} claim") from None
        except PyJWTError:
            raise AzureTokenRejected("malformed token") from None
        return self._identity(claims)

    def _identity(self, claims: dict[str, Any]) -> AzureIdentity:
        tid = claims.get("tid")
        if not isinstance(tid, str) or not tid:
            raise AzureTokenRejected("token has no tid claim")
        if claims.get("iss") not in (ISSUER_V2.format(tid=tid), ISSUER_V1.format(tid=tid)):
            raise AzureTokenRejected("bad token issuer")
        if self._tenants and tid.lower() not in self._tenants:
            raise AzureTokenRejected("bad user azure tenant")
        username = next(
            (v for v in (claims.get(c) for c in USERNAME_CLAIMS) if isinstance(v, str) and v), None
        )
        if username is None:
            raise AzureTokenRejected("token has no user name")
        oid = claims.get("oid")
        return AzureIdentity(
            username=username, tenant=tid, object_id=oid if isinstance(oid, str) else None, claims=claims
        )

    # -- signing keys -----------------------------------------------------------------------------
    async def _key(self, kid: str) -> Any:
        keys = self._keys
        if keys is not None and kid in keys and self.clock() - self._fetched_at < self.max_age:
            return keys[kid]
        generation = self._generation
        async with self._lock:
            if self._generation == generation:  # else a fetch ran while we waited: use its result
                await self._fetch_if_due(kid)
        keys = self._keys
        if keys is None:
            raise AzureUnavailable()
        key = keys.get(kid)
        if key is None:
            if self._last_error is not None:
                raise AzureUnavailable()  # cannot tell a new key from a bogus one right now
            raise AzureTokenRejected("unknown signing key")
        return key

    async def _fetch_if_due(self, kid: str) -> None:
        now = self.clock()
        keys = self._keys
        if keys is None:
            if self._last_error is None or now - self._last_attempt >= self.retry_after_failure:
                await self._fetch(now)
        elif now - self._fetched_at >= self.max_age:
            await self._fetch(now)
        elif kid not in keys and now - self._last_attempt >= self.refetch_interval:
            await self._fetch(now)

    async def _fetch(self, now: float) -> None:
        """One JWKS download; success replaces the key set, failure records why (and is logged)."""
        self._generation += 1
        self._last_attempt = now
        self.stats.fetches += 1
        try:
            keys = await self._download()
        except _FetchFailed as exc:
            self.stats.fetch_failures += 1
            self._last_error = str(exc)
            log.warning("azure: cannot fetch signing keys from %s: %s", self.config.jwks_url, exc)
            return
        self._keys = keys
        self._fetched_at = now
        self._last_error = None
        log.info("azure: loaded %d signing keys", len(keys))

    async def _download(self) -> dict[str, Any]:
        if self._http is None:
            self._http = outbound.httpx_client(timeout=self.timeout)
        try:
            response = await self._http.get(self.config.jwks_url, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise _FetchFailed(f"{type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise _FetchFailed(f"HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise _FetchFailed("response is not JSON") from None
        if not isinstance(document, dict):
            raise _FetchFailed("response is not a JWK set")
        try:
            jwks = pyjwt.PyJWKSet.from_dict(document)
        except PyJWTError as exc:
            raise _FetchFailed(f"bad JWK set: {exc}") from None
        keys = {
            k.key_id: k.key.public_key() if isinstance(k.key, rsa.RSAPrivateKey) else k.key
            for k in jwks.keys
            if k.key_id and k.key_type == "RSA" and k.public_key_use in (None, "sig")
        }
        if not keys:
            raise _FetchFailed("no RSA signing keys in the JWK set")
        return keys


class _FetchFailed(Exception):
    pass

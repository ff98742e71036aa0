"""Optional admin authentication: ``[server] adminToken`` as a bearer token (or Basic password).

Pure ASGI and in front of routing, so without the token even an unknown path answers 401 (the
admin API does not reveal which routes exist). ``/healthz`` stays open for liveness probes; it
says nothing but ``ok``. The comparison is constant-time (``hmac.compare_digest``).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from mxproxy.api.errors import error_response

#: Paths answered without credentials (liveness probes cannot always send headers).
OPEN_PATHS = frozenset({"/healthz"})
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mxproxy admin"'}


def presented_secret(header: str) -> str | None:
    """The secret in ``Authorization``: a bearer token, or the password of Basic (any user name),
    which lets a browser or ``curl -u admin:TOKEN`` reach the admin API too."""
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if not value:
        return None
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        _, sep, password = decoded.partition(":")
        return password if sep else None
    return None


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time in the secret's content (lengths may differ; the digest still runs)."""
    given = (presented or "").encode("utf-8")
    return hmac.compare_digest(given, expected.encode("utf-8")) and presented is not None


class AdminAuthMiddleware:
    """401 ``{"error": "unauthorized"}`` + ``WWW-Authenticate`` unless the token is presented.
    With no token configured it is not installed at all (the server then binds loopback only)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("admin token must not be empty")
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = ""
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                header = value.decode("latin-1")
                break
        if token_matches(presented_secret(header), self.token):
            await self.app(scope, receive, send)
            return
        response = error_response(401, "unauthorized", CHALLENGE)
        await response(scope, receive, send)


__all__ = ["AdminAuthMiddleware", "CHALLENGE", "OPEN_PATHS", "presented_secret", "token_matches"]

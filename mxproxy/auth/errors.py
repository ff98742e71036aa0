"""Typed sign-in errors.

Each error carries the message the original MX Proxy 2.3 put in its ``{"error": …}`` body, so the
API maps an error class to an HTTP status in one place and copies ``message`` verbatim. ``status``
is only a hint for that mapping; nothing in ``mxproxy.auth`` speaks HTTP.
"""

from __future__ import annotations


class AuthError(Exception):
    """Base of every sign-in failure; ``message`` is safe to show to the client."""

    status: int = 401
    default_message: str = "unauthorized"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Unauthorized(AuthError):
    """No usable credentials at all (missing or unknown ``Authorization`` scheme)."""

    status = 401
    default_message = "unauthorized"


class Forbidden(AuthError):
    """Credentials were presented and refused (undecodable Basic, wrong client secret, …)."""

    status = 403
    default_message = "forbidden"


class BadClientCredentials(Forbidden):
    """The OAuth2 ``client_id:secret`` pair is not one of the configured ``[apps]``."""

    default_message = "bad client-id or app secret"


class InvalidToken(AuthError):
    """Our own access token is unusable. ``reason`` is the bare cause (``token expired``);
    ``message`` / ``str()`` is ``invalid token: <reason>`` exactly as the original answers."""

    status = 401

    def __init__(self, reason: str = "invalid token") -> None:
        self.reason = reason
        super().__init__(f"invalid token: {reason}")


class AzureTokenRejected(AuthError):
    """An Azure AD id_token failed local validation; ``reason`` says why (no secrets in it)."""

    status = 403

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class AzureUnavailable(AuthError):
    """Azure AD's signing keys (JWKS) could not be fetched, so no token can be judged now."""

    status = 503
    default_message = "azure ad signing keys unavailable"

"""The one place that turns typed errors into HTTP answers.

Handlers raise whatever the layer below raised (connector, session manager, auth, provisioning,
store) or an ``ApiError``; nothing else in ``mxproxy.api`` picks status codes for those types.
Deviations from the original's codes (MX timeouts 504 instead of 408, CSTA errors never 500, …)
are listed in docs/compat.md.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.render import json_response
from mxproxy.auth.errors import AuthError, AzureUnavailable, InvalidToken, Unauthorized
from mxproxy.auth.signin_limits import SignInThrottled
from mxproxy.connectors.errors import (
    CSTAError,
    MXAnswerTooLarge,
    MXBadRequest,
    MXConnectionFailed,
    MXError,
    MXLoginFailed,
    MXSessionEnded,
    MXTimeout,
    MXUnsupported,
)
from mxproxy.provisioning import ProvisioningError
from mxproxy.sessions import NotSignedIn, ServedElsewhere, SessionUnavailable
from mxproxy.store.base import StoreError

log = logging.getLogger(__name__)

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="MXProxy"'}
BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="MXProxy client application"'}
# When a command fails because the MX socket just went away the session manager is already
# reconnecting; tell the client to come back shortly instead of treating it as final.
RETRY_AFTER_SECONDS = 2

_STATUS_TEXT = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    500: "internal server error",
}


class ApiError(Exception):
    """An answer decided by a handler: status, message, optional headers."""

    def __init__(self, status: int, message: str = "", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message or _STATUS_TEXT.get(status, ""))
        self.status = status
        self.message = message or _STATUS_TEXT.get(status, "")
        self.headers = dict(headers or {})


def error_body(message: str) -> dict[str, Any]:
    """``{"error": "…"}``, or ``{}`` for an empty message, as the original does."""
    return {"error": message} if message else {}


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(error_body(message), status=status, headers=dict(headers or {}))


def _message(exc: BaseException, default: str) -> str:
    text = str(exc).strip()
    return text or default


def response_for(exc: BaseException) -> Response:
    """Map one exception to its response. Order matters: subclasses before their bases."""
    if isinstance(exc, ApiError):
        return error_response(exc.status, exc.message, exc.headers)
    if isinstance(exc, HTTPException):
        headers = dict(exc.headers or {})
        message = _STATUS_TEXT.get(exc.status_code) or (exc.detail if isinstance(exc.detail, str) else "")
        return error_response(exc.status_code, message, headers)
    if isinstance(exc, NotSignedIn):
        return error_response(401, getattr(exc, "message", "") or _message(exc, "active mx connection unavailable"),
                              BEARER_CHALLENGE)
    if isinstance(exc, SessionUnavailable):
        retry = max(1, int(getattr(exc, "retry_after", RETRY_AFTER_SECONDS) or RETRY_AFTER_SECONDS))
        return error_response(503, _message(exc, "mx connection is being re-established"),
                              {"Retry-After": str(retry)})
    if isinstance(exc, ServedElsewhere):  # only when it could not be forwarded
        return error_response(503, "the user is served by another instance; retry", {"Retry-After": "1"})
    if isinstance(exc, InvalidToken):
        return error_response(401, _message(exc, "invalid token"), BEARER_CHALLENGE)
    if isinstance(exc, Unauthorized):
        # only raised by the client-app (Basic) checks: POST /auth and GET /debug/log
        return error_response(401, _message(exc, "unauthorized"), BASIC_CHALLENGE)
    if isinstance(exc, AzureUnavailable):
        return error_response(503, _message(exc, "azure ad signing keys unavailable"))
    if isinstance(exc, SignInThrottled):
        return error_response(429, exc.message, {**exc.quota.headers(), "Retry-After": str(exc.retry_after)})
    if isinstance(exc, AuthError):
        # Forbidden, BadClientCredentials, AzureTokenRejected, …: the class carries its status
        status = int(getattr(exc, "status", 403) or 403)
        return error_response(status, _message(exc, "forbidden"))
    if isinstance(exc, ProvisioningError):
        status = int(getattr(exc, "status", 502) or 502)
        # a passed-through 401 gets the challenge HTTP requires (the original sent none, §9.23)
        return error_response(status, getattr(exc, "message", "") or _message(exc, "provisioning failed"),
                              BASIC_CHALLENGE if status == 401 else None)
    if isinstance(exc, MXError):
        return _mx_error_response(exc)
    if isinstance(exc, StoreError):
        log.error("store error: %s", exc)
        return error_response(503, "store unavailable")
    log.error("unhandled error in API handler", exc_info=exc)
    return error_response(500, "internal server error")


def _mx_error_response(exc: MXError) -> Response:
    if isinstance(exc, MXTimeout):
        # 504, not the original's 408: a 408 makes HTTP clients silently retry (e.g. a make-call).
        return error_response(504, _message(exc, "mx response timeout"))
    if isinstance(exc, CSTAError):
        # Routes where the original answered 404 convert CSTAError themselves (see csta_not_found).
        return error_response(400, exc.text or "mx error")
    if isinstance(exc, MXLoginFailed):
        return error_response(403, exc.text or _message(exc, "mx login failed"))
    if isinstance(exc, MXUnsupported):
        return error_response(501, _message(exc, "not supported"))
    if isinstance(exc, MXBadRequest):
        return error_response(400, _message(exc, "bad request"))
    if isinstance(exc, MXAnswerTooLarge):
        return error_response(502, _message(exc, "mx answer too large"))
    if isinstance(exc, (MXSessionEnded, MXConnectionFailed)):
        return error_response(503, _message(exc, "mx connection lost"), {"Retry-After": str(RETRY_AFTER_SECONDS)})
    return error_response(503, _message(exc, "mx unavailable"))


async def handle_exception(request: Request, exc: Exception) -> Response:
    if isinstance(exc, MXTimeout):
        ctx = getattr(request.app.state, "ctx", None)
        metrics = getattr(ctx, "metrics", None)
        if metrics is not None:
            metrics.mx_timeouts.inc()
    return response_for(exc)


def exception_handlers() -> dict[Any, Any]:
    """Handlers for ``Starlette(exception_handlers=…)``; ``Exception`` last-resort → 500 JSON."""
    typed: list[type[BaseException]] = [
        ApiError, HTTPException, NotSignedIn, SessionUnavailable, ServedElsewhere, AuthError, ProvisioningError, MXError,
        StoreError,
    ]
    handlers: dict[Any, Any] = {cls: handle_exception for cls in typed}
    handlers[Exception] = handle_exception
    return handlers

"""``/auth`` (sign in, who am I, sign out) and the bearer check every other route uses."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.bodies import read_form
from mxproxy.api.errors import BASIC_CHALLENGE, BEARER_CHALLENGE, ApiError, response_for
from mxproxy.api.forwarding import buffered_body, is_forwarded, signed_out
from mxproxy.api.render import json_response
from mxproxy.api.rendered import RenderedJSON
from mxproxy.auth.clients import check_client
from mxproxy.auth.errors import InvalidToken
from mxproxy.auth.signin_limits import SignInThrottled
from mxproxy.sessions.errors import NotSignedIn, ServedElsewhere

if TYPE_CHECKING:
    from mxproxy.api.context import ApiContext
    from mxproxy.auth.tokens import Claims
    from mxproxy.provisioning import ProvisionedAccount
    from mxproxy.sessions import UserSession

log = logging.getLogger(__name__)


def context(request: Request) -> "ApiContext":
    """The app's ``ctx`` attribute (``ProxyApp``): a plain attribute read, as ``app.state.ctx``
    goes through ``State.__getattr__`` on every request."""
    app = request.scope["app"]
    ctx = getattr(app, "ctx", None)
    return ctx if ctx is not None else app.state.ctx


def authorization(request: Request) -> str:
    """The ``Authorization`` header (``""`` when absent) read from the raw ASGI headers: every
    authenticated request needs it, and building Starlette's ``Headers`` for it costs more than
    the scan."""
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            return value.decode("latin-1")
    return ""


def _bearer(request: Request) -> str | None:
    header = authorization(request)
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def current_login(request: Request) -> str:
    """The JWT's subject; 401 + ``WWW-Authenticate: Bearer`` when missing or invalid."""
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "unauthorized", BEARER_CHALLENGE)
    claims = await context(request).tokens.verify(token)
    return claims.sub


async def current_claims(request: Request) -> tuple[str, "Claims"]:
    """The bearer token and its verified claims (401 as ``current_login``): a long-lived answer
    (``GET /events``) checks the token again while it runs and ends at its expiry."""
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "unauthorized", BEARER_CHALLENGE)
    return token, await context(request).tokens.verify(token)


SESSION_KEY = "mxproxy.session"  # the request's session, kept in its ASGI scope


async def current_session(request: Request) -> "UserSession":
    """The caller's live MX session (401 when not signed in, 503 + Retry-After while reconnecting).

    Kept in the request's scope for later look-ups in the same request; a plain key there, not
    ``request.state``, whose miss raises and catches an AttributeError (~3 µs, docs/benchmarks.md)."""
    scope = request.scope
    session = scope.get(SESSION_KEY)
    if session is None:
        login = await current_login(request)
        if signed_out(request):  # cluster: no instance runs this user, and none will (401, not 503)
            raise NotSignedIn()
        session = scope[SESSION_KEY] = context(request).sessions.get(login)
    return session


# --- POST /auth ---------------------------------------------------------------------------------


async def _provision_basic(request: Request, header: str) -> "ProvisionedAccount":
    ctx = context(request)
    check_client(ctx.config.apps, header)
    form = await read_form(request)
    if form.get("grant_type", "") != "password":
        raise ApiError(403, "bad grant_type")
    username = form.get("username", "")
    if ctx.signin_limits is not None and username:
        request.state.signin_username = username
        await ctx.signin_limits.admit_user(client_host(request), username)
    return await ctx.provisioner.by_password(username, form.get("password", ""))


async def _provision_bearer(request: Request, id_token: str) -> "ProvisionedAccount":
    ctx = context(request)
    identity = None
    if ctx.azure is not None:
        identity = await ctx.azure.validate(id_token)  # AzureTokenRejected → 403, AzureUnavailable → 503
    if identity is not None and _answers_identities(ctx.provisioner):
        return await ctx.provisioner.by_identity(identity.username)
    return await ctx.provisioner.by_bearer(id_token)


def _answers_identities(provisioner: object) -> bool:
    """A source that maps verified identities itself (the static table) overrides ``by_identity``;
    the provisioning URL does not, and gets the id_token forwarded as the original did."""
    from mxproxy.provisioning import Provisioner

    return type(provisioner).by_identity is not Provisioner.by_identity


def login_result(exc: BaseException | None) -> str:
    """The ``logins{result}`` label of a sign-in outcome; a small fixed set for dashboards:
    ``ok``, ``bad_client`` (app credentials / grant), ``bad_credentials`` (user refused by
    provisioning, Azure or the MX), ``timeout`` (MX did not answer), ``unavailable`` (provisioning,
    Azure keys or the MX unreachable), ``throttled`` (``[signin]`` limits), ``error`` (anything else)."""
    from mxproxy.auth.errors import AuthError, AzureUnavailable, Forbidden, Unauthorized
    from mxproxy.connectors.errors import MXError, MXLoginFailed, MXTimeout
    from mxproxy.provisioning import ProvisioningError
    from mxproxy.sessions import SessionUnavailable

    if exc is None:
        return "ok"
    if isinstance(exc, SignInThrottled):
        return "throttled"
    if isinstance(exc, ApiError):
        return "bad_client" if exc.status in (401, 403) else "error"
    if isinstance(exc, AzureUnavailable):
        return "unavailable"
    if isinstance(exc, (Unauthorized, Forbidden)):
        return "bad_client"
    if isinstance(exc, AuthError):
        return "bad_credentials"
    if isinstance(exc, ProvisioningError):
        return "bad_credentials" if exc.status in (401, 403, 404) else "unavailable"
    if isinstance(exc, MXLoginFailed):
        return "bad_credentials"
    if isinstance(exc, MXTimeout):
        return "timeout"
    if isinstance(exc, (MXError, SessionUnavailable, OSError)):
        return "unavailable"
    return "error"


def client_host(request: Request) -> str:
    """The client's address: the peer, or what a trusted proxy said (``[server] trustedProxies``,
    applied by uvicorn's ProxyHeadersMiddleware in ``create_app``)."""
    return request.client.host if request.client else ""


async def sign_in(request: Request) -> Response:
    """``POST /auth``; every outcome is counted in ``logins{result}`` when metrics are on, and
    limited by ``[signin]`` (429 before any work once a window is spent)."""
    ctx = context(request)
    metrics, limiter = ctx.metrics, ctx.signin_limits
    if is_forwarded(request):
        limiter = None  # counted by the instance the client reached
    client = client_host(request)
    try:
        if limiter is not None:
            await limiter.admit(client)
        response = await _sign_in(request)
    except Exception as exc:
        result = login_result(exc)
        if metrics is not None:
            metrics.logins.labels(result).inc()
        if limiter is None or isinstance(exc, SignInThrottled):
            raise
        quota = await limiter.settle(client, getattr(request.state, "signin_username", None),
                                     failed=result in ("bad_client", "bad_credentials"))
        response = response_for(exc)
        if quota is not None:
            response.headers.update(quota.headers())
        return response
    if metrics is not None:
        metrics.logins.labels(login_result(None)).inc()
    if limiter is not None:
        # a sign-in forwarded to the instance serving the user comes back as an answer, refusals too
        quota = await limiter.settle(client, getattr(request.state, "signin_username", None),
                                     failed=response.status_code in (401, 403))
        if quota is not None:
            response.headers.update(quota.headers())
    return response


async def _sign_in(request: Request) -> Response:
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer ") and header[7:].strip():
        prov = await _provision_bearer(request, header[7:].strip())
    elif header.startswith("Basic "):
        prov = await _provision_basic(request, header)
    else:
        raise ApiError(401, "unauthorized", BASIC_CHALLENGE)
    ctx = context(request)
    try:
        if is_forwarded(request):
            await ctx.sessions.sign_in(prov, forwarded=True)
        else:
            await ctx.sessions.sign_in(prov)
    except ServedElsewhere as exc:
        if ctx.forwarder is None:
            raise
        return await ctx.forwarder.forward(request, exc.url, buffered_body(request))
    issued = await ctx.tokens.issue(prov.login)
    return json_response(
        {"token_type": "Bearer", "access_token": issued.access_token, "expires_in": int(issued.expires_in)}
    )


# --- GET /auth ----------------------------------------------------------------------------------


async def who_am_i(request: Request) -> Response:
    """Rendered once per session view (the login info does not change while the MX session
    lives), then served as bytes."""
    session = await current_session(request)
    rendered = session.rendered.get("auth")
    if rendered is None:
        info = session.info
        rendered = session.rendered["auth"] = RenderedJSON(
            {
                "mx": info.server_id,
                "ext": info.extension,
                "jid": str(info.user_id),
                "softPhonePwd": info.softphone_password,
            }
        )
    return rendered.response(request)


# --- DELETE /auth (and /auth/logout, the README's spelling) -------------------------------------


async def sign_out(request: Request) -> Response:
    """403 (not 401) for a missing or bad token, like the original; works while reconnecting too."""
    token = _bearer(request)
    if token is None:
        raise ApiError(403, "bearer authorization token required")
    ctx = context(request)
    try:
        claims = await ctx.tokens.verify(token)
    except InvalidToken as exc:
        raise ApiError(403, str(exc) or "invalid token") from None
    login = claims.sub
    await ctx.tokens.revoke(login)  # this token and every other issued so far: here and on every instance
    existed = await ctx.sessions.logout(login)
    if not existed:
        raise ApiError(404, "not found")
    log.info("user %s signed out", login)
    return json_response({"userLogout": login})


async def auth_route(request: Request) -> Response:
    method = request.method
    if method == "POST":
        return await sign_in(request)
    if method == "GET":
        return await who_am_i(request)
    return await sign_out(request)

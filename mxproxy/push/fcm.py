"""FCM HTTP v1 with pyfcm: one high-priority data message per token.

``[voip.fcm]`` keeps the original's keys (the app id used in token URLs); the value is now the
path of a Firebase service-account JSON (the legacy server-key API was shut down in 2024, spec
§9.28). pyfcm builds the v1 message (``parse_payload``) and holds the project; we subclass
``FCMNotification`` to:

* use explicit service-account credentials loaded at startup, refreshed under a lock (pyfcm's
  lazy loading and per-thread refresh race), against the JSON's own ``token_uri``;
* post to a configurable send URL (``[push.fcm] sendURL``) with an optional CA file;
* make exactly one HTTP request per attempt (pyfcm sleeps on Retry-After and retries 502/503
  itself): the sender classifies, backs off and keeps the deadline.

pyfcm's own transport is synchronous ``requests`` (one thread per request in flight, ~0.5 ms of
CPU per push: at a few hundred pushes a second that was half a core, see docs/benchmarks.md). The
sends therefore go through aiohttp, the async client pyfcm itself depends on, on the proxy's event
loop: one keep-alive session, at most ``[push.fcm] workers`` requests in flight per app. Only the
rare access-token refresh (google-auth, synchronous) runs in a thread.

Data values must be strings in FCM: non-strings are JSON-encoded. Keys FCM reserves are renamed
with an ``mx_`` prefix (``from`` → ``mx_from``), see ``data_payload``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account
from pyfcm import FCMNotification
from requests.adapters import HTTPAdapter

from mxproxy import outbound
from mxproxy.config import PushConfig, VoipConfig
from mxproxy.push.results import (
    NO_CREDENTIALS,
    REJECTED,
    TOO_LARGE,
    TRANSPORT,
    PushKind,
    PushResult,
    Sender,
    classify_fcm,
    send_with_retries,
)
from mxproxy.store.base import DeviceToken

log = logging.getLogger(__name__)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_PAYLOAD_LIMIT = 4096  # FCM's data-message limit (bytes of the data object)
RESERVED_PREFIX = "mx_"
_RESERVED_KEYS = frozenset({"from", "message_type", "notification", "collapse_key"})
_RESERVED_PREFIXES = ("google", "gcm")


class FcmCredentialError(ValueError):
    """A ``[voip.fcm]`` entry cannot be used; the message names the key and says why."""


class LegacyServerKey(FcmCredentialError):
    """A ``[voip.fcm]`` value in MX Proxy 2.3's format, a legacy FCM server key. Not fatal: the
    app's tokens are kept and registrations accepted, nothing is sent until a service account is
    configured (the upgrade must not stop the proxy, and with it every iPhone's pushes)."""


# ------------------------------------------------------------------------------------------
# payload shaping
# ------------------------------------------------------------------------------------------


def fcm_key(key: str) -> str:
    """Rename keys FCM reserves in data messages: ``from``, ``message_type``, ``notification``,
    ``collapse_key`` and anything starting with ``google`` or ``gcm`` get the ``mx_`` prefix."""
    lowered = key.lower()
    if lowered in _RESERVED_KEYS or lowered.startswith(_RESERVED_PREFIXES):
        return RESERVED_PREFIX + key
    return key


def fcm_value(value: Any) -> str:
    """FCM data values are strings: strings stay, everything else is compact JSON
    (``21`` → ``"21"``, ``true`` → ``"true"``, lists/objects → their JSON text)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def data_payload(payload: dict[str, Any]) -> dict[str, str]:
    """The FCM ``data`` map of a push payload (an APNs ``aps`` dict is not data: see ``notification``)."""
    return {fcm_key(k): fcm_value(v) for k, v in payload.items() if k != "aps"}


def notification(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """Title and body of an alert payload (``aps.alert``), for FCM's visible notification."""
    aps = payload.get("aps")
    alert = aps.get("alert") if isinstance(aps, dict) else None
    if isinstance(alert, str):
        return alert, None
    if isinstance(alert, dict):
        return alert.get("title"), alert.get("body")
    return None, None


# ------------------------------------------------------------------------------------------
# pyfcm subclass
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FcmAnswer:
    status: int
    error_code: str = ""
    message: str = ""
    token_invalid: bool = False
    retry_after: float | None = None


class _FcmClient(FCMNotification):
    """One Firebase project: explicit credentials, configurable endpoint, one request per call."""

    def __init__(self, credentials: service_account.Credentials, project_id: str, send_base: str,
                 tls: ssl.SSLContext) -> None:
        super().__init__(credentials=credentials, project_id=project_id, adapter=HTTPAdapter(max_retries=0))
        self.FCM_END_POINT_BASE = send_base
        self._tls = tls
        self._token_session = outbound.requests_session(tls)  # no REQUESTS_CA_BUNDLE/proxy override
        self._token_lock = threading.Lock()

    def _get_access_token(self, force: bool = False) -> str:
        with self._token_lock:
            if force or not self.credentials.valid:
                self.credentials.refresh(google.auth.transport.requests.Request(self._token_session))
            return self.credentials.token

    def access_token(self, force: bool = False) -> str | None:
        """The cached access token while it is valid (None: call ``_get_access_token`` in a thread)."""
        if not force and self.credentials.valid:
            return self.credentials.token
        return None

    async def post(self, session: aiohttp.ClientSession, body: bytes, refresh: Any) -> FcmAnswer:
        """One send request (refreshing an expired or refused access token once).
        ``refresh(force)`` runs ``_get_access_token`` off the event loop."""
        answer = await self._post(session, body, refresh, force_token=False)
        if answer.status == 401:
            answer = await self._post(session, body, refresh, force_token=True)
        return answer

    async def _post(self, session: aiohttp.ClientSession, body: bytes, refresh: Any, *, force_token: bool) -> FcmAnswer:
        token = self.access_token(force_token) or await refresh(self, force_token)
        headers = {"Content-Type": "application/json; charset=UTF-8", "Authorization": "Bearer " + token}
        async with session.post(self.fcm_end_point, data=body, headers=headers, ssl=self._tls) as response:
            text = await response.read()
            return _answer(response.status, response.headers.get("Retry-After", ""), text)


def _answer(status: int, retry_after_header: str, body: bytes) -> FcmAnswer:
    retry_after: float | None = None
    if retry_after_header.strip().isdigit():
        retry_after = float(retry_after_header.strip())
    if status == 200:
        return FcmAnswer(200)
    error: dict[str, Any] = {}
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
    except ValueError:
        pass
    code = str(error.get("status", ""))
    token_invalid = False
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        if detail.get("errorCode"):
            code = str(detail["errorCode"])
        for violation in detail.get("fieldViolations") or []:
            if isinstance(violation, dict) and violation.get("field") == "message.token":
                token_invalid = True
    message = str(error.get("message", ""))[:200]
    if "registration token" in message.lower():
        token_invalid = True
    return FcmAnswer(status, code, message, token_invalid, retry_after)


# ------------------------------------------------------------------------------------------
# The sender
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FcmApp:
    app_id: str
    project_id: str
    service_account_file: str
    client_email: str


def load_service_account(app_id: str, value: str, base_dir: Path) -> tuple[service_account.Credentials, FcmApp]:
    """Load one ``[voip.fcm]`` entry; a legacy server key gets a message saying so."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base_dir / path
    if not path.is_file():
        if "/" not in value and not value.endswith(".json"):
            raise LegacyServerKey(
                f'voip.fcm."{app_id}": a legacy FCM server key (MX Proxy 2.3\'s format); Google shut the '
                "legacy FCM API down in 2024, so nothing is sent to FCM for this app (its device tokens "
                "are kept) until the value is the path of a Firebase service-account JSON file (FCM "
                "HTTP v1), see docs/push.md and docs/compat.md P1"
            )
        raise FcmCredentialError(f'voip.fcm."{app_id}": service-account file {path} does not exist')
    try:
        credentials = service_account.Credentials.from_service_account_file(str(path), scopes=[FCM_SCOPE])
    except (ValueError, KeyError, OSError) as exc:
        raise FcmCredentialError(f'voip.fcm."{app_id}": {path} is not a service-account JSON ({exc})') from None
    project_id = credentials.project_id or ""
    if not project_id:
        raise FcmCredentialError(f'voip.fcm."{app_id}": {path} has no project_id')
    return credentials, FcmApp(app_id, project_id, str(path), credentials.service_account_email)


class FcmSender(Sender):
    """Sends to ``fcm`` device tokens, one Firebase project per ``[voip.fcm]`` app id."""

    provider = "fcm"

    def __init__(self, voip: VoipConfig, push: PushConfig, base_dir: Path) -> None:
        self._push = push
        self.problems: list[str] = []
        self.legacy: dict[str, str] = {}  # app id -> why nothing is sent (a legacy server key)
        self.apps: dict[str, FcmApp] = {}
        self._clients: dict[str, _FcmClient] = {}
        ca_file = push.fcm.ca_file
        if ca_file and not Path(ca_file).is_absolute():
            ca_file = str(base_dir / ca_file)
        self._tls = outbound.ssl_context(ca_file or None, key="push.fcm.caFile")  # token and send alike
        for app_id, value in voip.fcm.items():
            try:
                credentials, app = load_service_account(app_id, value, base_dir)
            except LegacyServerKey as exc:
                log.warning("push: %s", exc)
                self.legacy[app_id] = str(exc)
                continue
            except FcmCredentialError as exc:
                log.error("push: %s", exc)
                self.problems.append(str(exc))
                continue
            self.apps[app_id] = app
            self._clients[app_id] = _FcmClient(credentials, app.project_id, push.fcm.send_url, self._tls)
            log.info("FCM app %s: project %s (%s)", app_id, app.project_id, app.client_email)
        # google-auth refreshes access tokens synchronously (once an hour per app): off the loop
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="mxproxy-fcm-token")
        self._session: aiohttp.ClientSession | None = None
        self._in_flight: dict[str, asyncio.Semaphore] = {}

    def _http(self) -> aiohttp.ClientSession:
        """One keep-alive session for every app, created inside the running loop."""
        if self._session is None or self._session.closed:
            self._session = outbound.aiohttp_session(self._tls, limit=0)
        return self._session

    async def _refresh(self, client: "_FcmClient", force: bool) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, client._get_access_token, force)

    @property
    def app_ids(self) -> frozenset[str]:
        """Apps whose tokens may be registered: those with a service account and those still on
        a legacy server key (kept for when one is configured)."""
        return frozenset(self.apps) | frozenset(self.legacy)

    def build_message(self, app_id: str, token: str, payload: dict[str, Any], kind: PushKind) -> bytes:
        """The v1 request body (``{"message": …, "validate_only": false}``) for one token."""
        ttl = self._push.call_expiration if kind == "voip" else self._push.alert_expiration
        android = {"priority": "high" if kind == "voip" else "normal", "ttl": f"{int(ttl)}s"}
        title, body = notification(payload) if kind == "alert" else (None, None)
        return self._clients[app_id].parse_payload(
            fcm_token=token,
            notification_title=title,
            notification_body=body,
            data_payload=data_payload(payload),
            android_config=android,
        )

    async def send(self, token: DeviceToken, payload: dict, kind: PushKind, *, deadline: float) -> PushResult:
        template = PushResult(self.provider, kind, token, TRANSPORT, warm=None)
        if token.kind != "fcm":
            return replace(template, status=REJECTED, reason=f"not an FCM token (kind {token.kind!r})", attempts=0)
        client = self._clients.get(token.topic)
        if client is None:
            why = "legacy server key" if token.topic in self.legacy else "no service account"
            return replace(template, status=NO_CREDENTIALS, reason=f"{why} for FCM app {token.topic}", attempts=0)
        data = data_payload(payload)
        if len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()) > FCM_PAYLOAD_LIMIT:
            return replace(template, status=TOO_LARGE, reason="PayloadTooLarge", attempts=0)
        body = self.build_message(token.topic, token.token, payload, kind)
        slots = self._in_flight.get(token.topic)
        if slots is None:
            slots = self._in_flight[token.topic] = asyncio.Semaphore(self._push.fcm.workers)

        async def attempt(timeout: float) -> PushResult:
            started = time.monotonic()
            try:
                async with slots:
                    answer = await client.post(self._http(), body, self._refresh)
            except (aiohttp.ClientError, requests.RequestException, google.auth.exceptions.GoogleAuthError,
                    OSError) as exc:
                return replace(template, status=TRANSPORT, reason=f"{type(exc).__name__}: {exc}"[:300])
            status, final = classify_fcm(answer.status, answer.error_code, answer.token_invalid)
            reason = answer.error_code or (answer.message if status != "ok" else "")
            return replace(
                template, status=status, reason=reason, final=final, http_status=answer.status,
                retry_after=answer.retry_after, latency=time.monotonic() - started,
            )

        result = await send_with_retries(
            attempt, template, deadline=deadline,
            max_attempts=self._push.max_attempts, backoff=self._push.retry_backoff,
        )
        if not result.ok:
            log.info("FCM %s push to %s…: %s", kind, token.token[:8], result.summary())
        return result

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

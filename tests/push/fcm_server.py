"""A local FCM: Google's OAuth2 token endpoint and the FCM HTTP v1 send endpoint, served by
Starlette/uvicorn on 127.0.0.1 (ephemeral port).

* ``POST /token``: the JWT-bearer grant google-auth sends for a service account; the assertion is
  verified (RS256, with the public key of the registered service account, and the audience
  google-auth always signs for: Google's token endpoint).
* ``POST /v1/projects/{project}/messages:send``: requires a bearer token issued above; answers by
  the message token's prefix:

=================  ========================================================
``unregistered``   404 ``UNREGISTERED``
``invalid``        400 ``INVALID_ARGUMENT`` about ``message.token``
``badpayload``     400 ``INVALID_ARGUMENT`` about the payload (not the token)
``quota``          429 ``QUOTA_EXCEEDED`` with ``Retry-After: 0``
``unavailable``    503 ``UNAVAILABLE``
``flaky503``       503 on the first request for that token, then 200
``flaky429``       429 (``Retry-After: 0``) first, then 200
``hang``           never answers (until the server stops)
anything else      200 ``{"name": "projects/…/messages/<n>"}``
=================  ========================================================
"""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


def _error(status: int, code: str, message: str, fcm_code: str | None = None, token_field: bool = False,
           headers: dict[str, str] | None = None) -> JSONResponse:
    details: list[dict[str, Any]] = [{"@type": FCM_ERROR_TYPE, "errorCode": fcm_code or code}]
    if token_field:
        details.append({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}],
        })
    body = {"error": {"code": status, "message": message, "status": code, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


@dataclass
class SendRequest:
    project: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def message(self) -> dict[str, Any]:
        return self.body["message"]


@dataclass
class LocalFCM:
    public_keys: dict[str, Any] = field(default_factory=dict)  # client_email -> RSA public key
    sends: list[SendRequest] = field(default_factory=list)
    token_requests: int = 0
    port: int = 0
    tls: tuple[str, str] | None = None  # (certificate PEM, key PEM): serve HTTPS instead of HTTP
    _issued: set[str] = field(default_factory=set)
    _seen: dict[str, int] = field(default_factory=dict)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def send_url(self) -> str:
        return f"{self.base_url}/v1/projects"

    def reserve_port(self) -> socket.socket:
        """Bind first, so the token URI is known before the service-account JSON is written."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP: asyncio sets TCP_NODELAY
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._sock = sock
        return sock

    async def start(self) -> "LocalFCM":
        if not self.port:
            self.reserve_port()
        app = Starlette(routes=[
            Route("/token", self._token, methods=["POST"]),
            Route("/v1/projects/{project}/messages:send", self._send, methods=["POST"]),
        ])
        tls = {"ssl_certfile": self.tls[0], "ssl_keyfile": self.tls[1]} if self.tls else {}
        config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1, **tls)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task

    async def _token(self, request: Request) -> Response:
        self.token_requests += 1
        form = urllib.parse.parse_qs((await request.body()).decode())
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        assertion = (form.get("assertion") or [""])[0]
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            key = self.public_keys[unverified["iss"]]
            claims = jwt.decode(assertion, key, algorithms=["RS256"], audience=GOOGLE_TOKEN_AUDIENCE)
        except (jwt.PyJWTError, KeyError):
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid JWT"}, status_code=400)
        if "firebase.messaging" not in claims.get("scope", ""):
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        token = f"ya29.test-{len(self._issued) + 1}"
        self._issued.add(token)
        return JSONResponse({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    async def _send(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self._issued:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        body = json.loads(await request.body())
        self.sends.append(SendRequest(request.path_params["project"], dict(request.headers), body))
        token = body.get("message", {}).get("token", "")
        if token.startswith("hang"):
            await self._stopping.wait()
            return Response(status_code=503)
        if token.startswith(("flaky503", "flaky429")):
            count = self._seen.get(token, 0)
            self._seen[token] = count + 1
            if count == 0:
                if token.startswith("flaky503"):
                    return _error(503, "UNAVAILABLE", "The service is currently unavailable.")
                return _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED", headers={"Retry-After": "0"})
        elif token.startswith("unregistered"):
            return _error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        elif token.startswith("invalid"):
            return _error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                          token_field=True)
        elif token.startswith("badpayload"):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name \"x\"")
        elif token.startswith("quota"):
            return _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED", headers={"Retry-After": "0"})
        elif token.startswith("unavailable"):
            return _error(503, "UNAVAILABLE", "The service is currently unavailable.")
        project = request.path_params["project"]
        return JSONResponse({"name": f"projects/{project}/messages/{len(self.sends)}"})

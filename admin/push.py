"""``POST /push``: send a test push to a user's devices or to one registered token, and wait for
the providers' answers; ``GET /push``: the dispatcher's status (queue, prune guard, certificates).

Request (JSON)::

    {"login": "alice", "kind": "voip"|"alert", "payload": {...}}
    {"login": "alice", "event": "Delivered"}                 # the policy's sample payload
    {"token": {"kind": "apn", "topic": "com.x.voip", "token": "…", "sandbox": false}, "payload": {...}}

``kind`` defaults to ``voip`` (what the original sent for every event). Exactly one of ``login`` /
``token`` and one of ``payload`` / ``event``. Answer: ``{"results": [{"kind", "topic", "sandbox",
"token", "status", "reason", "final", "pruned", "attempts", "latencyMs"}]}``, one per device,
200 even when a provider refused (the status says so). A final verdict prunes the token by the
same rules as event pushes; ``pruned`` says whether it is gone from the store now.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from admin.bodies import read_body
from admin.listings import context, resolve_login
from mxproxy.api.errors import ApiError
from mxproxy.api.render import json_response

if TYPE_CHECKING:
    from mxproxy.push.results import PushResult
    from mxproxy.store.base import DeviceToken, Store

log = logging.getLogger("admin")

KINDS = ("voip", "alert")
TOKEN_KINDS = ("apn", "fcm")
MAX_TOKEN_LEN = 4096


def dispatcher(request: Request) -> Any:
    push = request.app.state.push
    if push is None:
        raise ApiError(503, "push dispatcher not configured")
    return push


def _string(value: Any, name: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f'bad value for "{name}": expected a non-empty string')
    return value.strip()


def parse_request(body: dict[str, Any]) -> dict[str, Any]:
    """Validate the JSON body; every problem is a 400 naming the field."""
    unknown = sorted(set(body) - {"login", "token", "kind", "payload", "event"})
    if unknown:
        raise ApiError(400, f'unknown field "{unknown[0]}"')
    has_login, has_token = body.get("login") is not None, body.get("token") is not None
    if has_login == has_token:
        raise ApiError(400, 'give exactly one of "login" or "token"')
    has_payload, has_event = body.get("payload") is not None, body.get("event") is not None
    if has_payload == has_event:
        raise ApiError(400, 'give exactly one of "payload" or "event"')
    kind = body.get("kind", "voip")
    if kind not in KINDS:
        raise ApiError(400, 'bad value for "kind": expected "voip" or "alert"')
    out: dict[str, Any] = {"kind": kind}
    if has_payload:
        if not isinstance(body["payload"], dict):
            raise ApiError(400, 'bad value for "payload": expected a JSON object')
        out["payload"] = body["payload"]
    else:
        out["event"] = _string(body["event"], "event")
    if has_login:
        out["login"] = _string(body["login"], "login")
    else:
        out["token"] = _token_spec(body["token"])
    return out


def _token_spec(spec: Any) -> tuple[str, str, str, bool]:
    if not isinstance(spec, dict):
        raise ApiError(400, 'bad value for "token": expected an object {"kind", "topic", "token"}')
    kind = spec.get("kind")
    if kind not in TOKEN_KINDS:
        raise ApiError(400, 'bad value for "token.kind": expected "apn" or "fcm"')
    topic = _string(spec.get("topic"), "token.topic")
    token = _string(spec.get("token"), "token.token")
    if len(token) > MAX_TOKEN_LEN:
        raise ApiError(400, 'bad value for "token.token": too long')
    sandbox = spec.get("sandbox", False)
    if not isinstance(sandbox, bool):
        raise ApiError(400, 'bad value for "token.sandbox": expected true or false')
    if kind == "apn" and topic.endswith("~"):  # the original's spelling of a sandbox topic
        topic, sandbox = topic[:-1], True
    return kind, topic, token, sandbox


async def _find_token(store: "Store", kind: str, topic: str, token: str, sandbox: bool) -> "DeviceToken":
    found = await store.get_token(kind, topic, token)
    if found is None or (kind == "apn" and found.sandbox != sandbox):
        raise ApiError(404, "token not registered")
    return found


async def result_json(store: "Store", result: "PushResult") -> dict[str, Any]:
    t = result.token
    pruned = False
    if result.final:
        pruned = await store.get_token(t.kind, t.topic, t.token) is None
    return {
        "kind": t.kind,
        "topic": t.topic,
        "sandbox": t.sandbox,
        "token": t.token,
        "status": result.status,
        "reason": result.reason,
        "final": result.final,
        "pruned": pruned,
        "attempts": result.attempts,
        "latencyMs": round(result.latency * 1000, 1),
    }


async def send_push(request: Request) -> Response:
    parsed = parse_request(await read_body(request))  # 400s first: they need no dispatcher
    push = dispatcher(request)
    store = context(request).store
    kind: str = parsed["kind"]
    if "token" in parsed:
        device = await _find_token(store, *parsed["token"])
        login = device.login
    else:
        device = None
        found = await resolve_login(request, parsed["login"])  # MX login or sign-in name
        if found is None:
            raise ApiError(404, "unknown user")
        login = found
    payload = parsed.get("payload")
    if payload is None:
        try:
            payload = push.test_payload(parsed["event"], login)
        except ValueError as exc:
            raise ApiError(400, f'bad value for "event": {exc}') from None
    if device is not None:
        results = [await push.push_to_token(device, payload, kind)]
    else:
        results = list(await push.push_to_user(login, payload, kind))
    log.info("admin: test %s push to %s: %s", kind, login,
             ", ".join(r.summary() for r in results) or "no devices")
    return json_response({"results": [await result_json(store, r) for r in results]})


async def push_status(request: Request) -> Response:
    return json_response(dispatcher(request).status())


async def push_route(request: Request) -> Response:
    if request.method == "POST":
        return await send_push(request)
    return await push_status(request)

"""``/webhooks``: subscriptions to signed event deliveries, and their delivery log.

* ``GET /webhooks`` → ``{"webhooks": [...]}``; ``POST /webhooks`` with
  ``{"url": "https://crm.example/hook", "events": ["call.*"], "users": ["alice"]}`` (``users``
  optional: every user) → 201, the subscription **and its signing secret** ``whsec_…``, shown
  this once and never again (nor logged).
* ``GET /webhooks/{id}``, ``PATCH /webhooks/{id}`` (any of ``url``, ``events``, ``users``,
  ``enabled``; ``{"enabled": true}`` re-enables an endpoint disabled after failures),
  ``DELETE /webhooks/{id}`` (its deliveries go with it).
* ``GET /webhooks/{id}/deliveries?state=failed&limit=50&before=<id>``: newest first; ``next`` is
  the ``before`` of the next page. ``POST /webhooks/{id}/deliveries/{delivery}/redeliver``
  sends a delivered or parked delivery again (202).

Every bad field is a 400 naming it; an unknown id 404; with ``[webhooks] enabled = false`` 503.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from admin.bodies import read_body
from admin.listings import context
from mxproxy.api.errors import ApiError
from mxproxy.api.render import json_response
from mxproxy.store.outbox import STATES
from mxproxy.webhooks.ssrf import UrlRefused

if TYPE_CHECKING:
    from mxproxy.store.outbox import DeliveryRecord, WebhookRecord
    from mxproxy.webhooks.service import WebhookService

WEBHOOK_ID = re.compile(r"wh_[0-9a-f]{16}")
FIELDS = ("url", "events", "users", "enabled")
MAX_EVENTS = 50
MAX_USERS = 1000
MAX_NAME = 256
MAX_PAGE = 500
DEFAULT_PAGE = 50


def service(request: Request) -> "WebhookService":
    found = getattr(request.app.state, "webhooks", None)
    if found is None:
        raise ApiError(503, "webhooks are off ([webhooks] enabled = false)")
    return found


def when(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def webhook_json(record: "WebhookRecord") -> dict[str, Any]:
    return {
        "id": record.id,
        "url": record.url,
        "events": list(record.events),
        "users": None if record.users is None else list(record.users),
        "enabled": record.enabled,
        "disabledReason": record.disabled_reason,
        "disabledAt": when(record.disabled_at),
        "failuresInARow": record.consecutive_failures,
        "failed": record.total_failures,
        "delivered": record.total_delivered,
        "lastSuccessAt": when(record.last_success_at),
        "lastFailureAt": when(record.last_failure_at),
        "createdAt": when(record.created_at),
        "updatedAt": when(record.updated_at),
    }


def delivery_json(row: "DeliveryRecord") -> dict[str, Any]:
    return {
        "id": row.id,
        "messageId": row.message_id,
        "user": row.login,
        "event": {"id": row.event_id, "type": row.event_type, "time": when(row.event_time)},
        "state": row.state,
        "attempts": row.attempts,
        "nextAttemptAt": when(row.next_attempt_at) if row.state == "pending" else None,
        "lastStatus": row.last_status,
        "lastError": row.last_error,
        "createdAt": when(row.created_at),
        "deliveredAt": when(row.delivered_at),
    }


def _strings(body: dict[str, Any], name: str, limit: int) -> list[str]:
    value = body[name]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ApiError(400, f'bad value for "{name}": expected a non-empty list of non-empty strings')
    if len(value) > limit or any(len(v) > MAX_NAME for v in value):
        raise ApiError(400, f'bad value for "{name}": at most {limit} names of {MAX_NAME} characters')
    return [v.strip() for v in value]


async def _parse(request: Request, svc: "WebhookService", *, creating: bool) -> dict[str, Any]:
    body = await read_body(request)
    unknown = sorted(set(body) - set(FIELDS if not creating else FIELDS[:3]))
    if unknown:
        raise ApiError(400, f'unknown field "{unknown[0]}"')
    if creating:
        for name in ("url", "events"):
            if body.get(name) is None:
                raise ApiError(400, f'missing "{name}"')
    elif not body:
        raise ApiError(400, f"nothing to change: give any of {', '.join(FIELDS)}")
    changes: dict[str, Any] = {}
    if "events" in body:
        events = _strings(body, "events", MAX_EVENTS)
        try:
            changes["events"] = svc.check_events(events)
        except ValueError as exc:
            raise ApiError(400, f'bad value for "events": {exc}') from None
    if "users" in body:
        if body["users"] is None:
            changes["users"] = None
        else:
            names = _strings(body, "users", MAX_USERS)
            store = context(request).store
            logins = []
            for name in names:  # the MX login or the sign-in name, as elsewhere in the admin API
                user = await store.find_user(name)
                logins.append(user.login if user is not None else name)
            changes["users"] = list(dict.fromkeys(logins))
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise ApiError(400, 'bad value for "enabled": expected true or false')
        changes["enabled"] = body["enabled"]
    if "url" in body:
        try:
            changes["url"] = await svc.check_url(body["url"])
        except UrlRefused as exc:
            raise ApiError(400, f'bad value for "url": {exc}') from None
    return changes


def _webhook_id(request: Request) -> str:
    webhook_id = request.path_params["webhook"]
    if not WEBHOOK_ID.fullmatch(webhook_id):
        raise ApiError(404, "no such webhook")
    return webhook_id


async def _get(svc: "WebhookService", webhook_id: str) -> "WebhookRecord":
    record = await svc.store.get_webhook(webhook_id)
    if record is None:
        raise ApiError(404, "no such webhook")
    return record


async def collection(request: Request) -> Response:
    svc = service(request)
    if request.method == "POST":
        changes = await _parse(request, svc, creating=True)
        from mxproxy.webhooks.service import TooManyWebhooks

        try:
            record, secret = await svc.create(changes["url"], changes["events"], changes.get("users"))
        except TooManyWebhooks as exc:
            raise ApiError(409, str(exc)) from None
        return json_response({**webhook_json(record), "secret": secret}, status=201)
    records = await svc.store.list_webhooks()
    return json_response({"webhooks": [webhook_json(r) for r in records]})


async def item(request: Request) -> Response:
    svc = service(request)
    webhook_id = _webhook_id(request)
    if request.method == "PATCH":
        await _get(svc, webhook_id)
        changes = await _parse(request, svc, creating=False)
        record = await svc.update(webhook_id, **changes)
        if record is None:
            raise ApiError(404, "no such webhook")
        return json_response(webhook_json(record))
    if request.method == "DELETE":
        if not await svc.delete(webhook_id):
            raise ApiError(404, "no such webhook")
        return json_response({"deleted": webhook_id})
    return json_response(webhook_json(await _get(svc, webhook_id)))


def _int_param(request: Request, name: str, default: int | None, *, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, f'bad value for "{name}": expected a whole number from {low} to {high}')
    return int(raw)


async def deliveries(request: Request) -> Response:
    svc = service(request)
    webhook_id = _webhook_id(request)
    state = request.query_params.get("state") or None
    if state is not None and state not in STATES:
        raise ApiError(400, f'bad value for "state": expected one of {", ".join(STATES)}')
    limit = _int_param(request, "limit", DEFAULT_PAGE, low=1, high=MAX_PAGE)
    before = _int_param(request, "before", None, low=1, high=2**62)
    await _get(svc, webhook_id)
    assert limit is not None
    rows = await svc.store.list_deliveries(webhook_id, state=state, before=before, limit=limit)
    nxt = rows[-1].id if len(rows) == limit else None
    return json_response({"deliveries": [delivery_json(r) for r in rows], "next": nxt})


async def redeliver(request: Request) -> Response:
    svc = service(request)
    webhook_id = _webhook_id(request)
    raw = request.path_params["delivery"]
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "no such delivery")
    found = await svc.redeliver(webhook_id, int(raw))
    if found is None:
        raise ApiError(404, "no such delivery")
    if found.state == "delivering":
        raise ApiError(409, "the delivery is being sent right now")
    return json_response(delivery_json(found), status=202)

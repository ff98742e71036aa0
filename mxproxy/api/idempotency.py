"""``Idempotency-Key`` on the routes that create something on the MX (a call, a transfer, a
conference): a repeat of a request with the same key within ``[server] idempotencyTTL`` gets the
first request's answer again, replayed, instead of dialling a second time.

Why: an MX command that answers 504 (no reply in time) may still have been carried out — a call
placed seconds later. A client that retries such a request with the same key cannot dial twice.

* Keys are per user (the token's subject), so users cannot see each other's answers.
* A repeat while the first request is still running waits for its answer.
* The same key with a different request (method, path, query, body) → 409.
* Every answer is kept — 504 too: it is the "unknown outcome", and repeating it must not dial
  again — except 401 and 503, where the command was not sent or the session is reconnecting, so
  a retry is safe and must reach the MX.
* Memory is bounded: at most ``[server] idempotencyKeys`` answers, the oldest dropped first.

Several instances: in cluster mode every request of a user is forwarded to the instance that
owns the user's MX session, so the answers kept by that owner see all of that user's repeats.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import re
import time
from dataclasses import dataclass, field
from functools import wraps
from typing import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.auth import current_session
from mxproxy.api.bodies import MAX_BODY
from mxproxy.api.errors import ApiError, handle_exception, response_for

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
#: Printable ASCII without spaces, as the IETF draft's examples; UUIDs fit easily.
KEY_PATTERN = re.compile(r"[!-~]{1,255}")
#: Outcomes not kept: the command was not sent (401) or the MX session is being re-established
#: (503), so the client's retry must really run.
RETRYABLE_STATUSES = frozenset({401, 503})

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class _Outcome:
    fingerprint: bytes
    expires: float
    answer: asyncio.Future[Response] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class IdempotencyCache:
    """The kept answers of one instance, keyed by (user, key); insertion order = expiry order."""

    def __init__(self, ttl: float, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self.clock = clock
        self._outcomes: collections.OrderedDict[tuple[str, str], _Outcome] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._outcomes)

    def _purge(self, now: float) -> None:
        outcomes = self._outcomes
        while outcomes:
            oldest = next(iter(outcomes.values()))
            if oldest.expires > now and len(outcomes) < self.max_keys:
                break
            outcomes.popitem(last=False)

    async def run(self, user: str, key: str, fingerprint: bytes, handler: Callable[[], Awaitable[Response]]) -> Response:
        now = self.clock()
        self._purge(now)
        outcome = self._outcomes.get((user, key))
        if outcome is not None and outcome.expires > now:
            if outcome.fingerprint != fingerprint:
                raise ApiError(409, "Idempotency-Key was already used for a different request")
            first = await asyncio.shield(outcome.answer)
            return _replay(first)
        outcome = _Outcome(fingerprint, now + self.ttl)
        self._outcomes[(user, key)] = outcome
        try:
            response = await handler()
        except Exception as exc:  # the answer must be kept whatever happened
            response = response_for(exc)
        except BaseException:
            self._forget(user, key, outcome)
            outcome.answer.set_exception(ApiError(503, "the first request with this Idempotency-Key was "
                                                       "interrupted; its outcome is unknown"))
            outcome.answer.exception()  # retrieved: waiters get it, nobody else must
            raise
        if response.status_code in RETRYABLE_STATUSES:
            self._forget(user, key, outcome)
        outcome.answer.set_result(response)
        return response

    def _forget(self, user: str, key: str, outcome: _Outcome) -> None:
        if self._outcomes.get((user, key)) is outcome:
            del self._outcomes[(user, key)]


def _replay(first: Response) -> Response:
    replay = Response(first.body, status_code=first.status_code)
    replay.raw_headers = [(k, v) for k, v in first.raw_headers if k != b"content-length"]
    replay.raw_headers.append((b"content-length", str(len(first.body)).encode()))
    replay.headers[REPLAYED] = "true"
    return replay


async def _fingerprint(request: Request) -> bytes:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.url.path.encode(), request.url.query.encode(),
                 request.headers.get("content-type", "").encode("latin-1")):
        digest.update(len(part).to_bytes(4, "big") + part)
    digest.update(await _bounded_body(request))
    return digest.digest()


async def _bounded_body(request: Request) -> bytes:
    """The body, read within the handlers' limit and kept on the request (Starlette's cache),
    so the handler's parser reads it again from memory."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, "request body too large")
    request._body = body  # what Request.body() caches; stream() then yields it
    return body


async def idempotently(request: Request, answer: Callable[[], Awaitable[Response]]) -> Response:
    """``answer()`` — the route's work — run once per ``Idempotency-Key`` (the key is optional)."""
    key = request.headers.get(HEADER)
    if key is None:
        return await answer()
    if not KEY_PATTERN.fullmatch(key):
        raise ApiError(400, "bad Idempotency-Key: 1-255 printable ASCII characters without spaces")
    session = await current_session(request)  # 401/503 before anything is kept
    cache: IdempotencyCache = request.app.state.idempotency

    async def answer_or_error() -> Response:
        try:
            return await answer()
        except Exception as exc:  # the typed errors become their answers, so they are kept too
            return await handle_exception(request, exc)

    return await cache.run(session.login, key, await _fingerprint(request), answer_or_error)


def idempotent(handler: Handler) -> Handler:
    """A route handler that honours ``Idempotency-Key``."""

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        return await idempotently(request, lambda: handler(request))

    return wrapper


__all__ = ["IdempotencyCache", "idempotent", "idempotently"]

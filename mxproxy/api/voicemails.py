"""``/voicemails``: list, download (streamed), delete, mark read / annotate.

Fixed against the original (§9.9): ``media`` is forwarded to the MX, items keep the MX's real
``mediaType``, and recordings seen as events on this session are merged into MX lists rather
than replacing them.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from mxproxy.api.auth import context, current_session
from mxproxy.api.bodies import Field, read_fields
from mxproxy.api.errors import ApiError
from mxproxy.api.render import json_response, no_content, voicemail_json
from mxproxy.connectors.base import Voicemail, VoicemailDownload
from mxproxy.connectors.errors import CSTAError, MXError

log = logging.getLogger(__name__)

RECORDING = "Recording"


# The MX's mailbox media types (spec §4.15); an empty or absent ``media`` means "all".
MEDIA_TYPES = ("VoiceMail", "Recording", "Fax", "Undefined")


def _media(request: Request) -> str | None:
    """``?media=``: one of ``MEDIA_TYPES`` (400 otherwise, before anything reaches the MX)."""
    media = request.query_params.get("media", "")
    if not media:
        return None
    if media not in MEDIA_TYPES:
        raise ApiError(400, f'bad media "{media}": expected one of {", ".join(MEDIA_TYPES)}')
    return media


def _mail_id(request: Request) -> str:
    mail_id = request.path_params["id"]
    if not mail_id or len(mail_id) > 64:
        raise ApiError(404, "not found")
    return mail_id


def _merge(server: list[Voicemail], recordings: list[Voicemail]) -> list[Voicemail]:
    """Server items plus in-memory recordings the server did not list, oldest first."""
    seen = {(v.media_type or "VoiceMail", v.mail_id) for v in server}
    merged = list(server) + [r for r in recordings if (r.media_type or RECORDING, r.mail_id) not in seen]
    return sorted(merged, key=lambda v: (v.received, v.mail_id))


async def list_voicemails(request: Request) -> Response:
    session = await current_session(request)
    media = _media(request)
    recordings: list[Voicemail] = []
    if media is None or media == RECORDING:
        recordings = list(session.recordings.list())
    try:
        server = await session.mx.voicemails(media)
    except CSTAError:
        if media != RECORDING:
            raise
        server = []  # an MX that cannot list recordings: the ones seen as events are all we know
    if media is not None:
        server = [v for v in server if (v.media_type or media) == media]
    else:
        # No media asked: the original answered with the mailbox *and* the recordings. An MX
        # lists one media type per request, so ask for recordings too (best effort).
        try:
            server += await session.mx.voicemails(RECORDING)
        except CSTAError:
            pass
    items = _merge(server, recordings)
    return json_response({"voiceMails": [voicemail_json(v) for v in items]})


def _content_type(file_format: str) -> str:
    ext = (file_format or "").lower().lstrip(".")
    if ext == "wav":
        return "audio/wave"
    guessed, _ = mimetypes.guess_type("x." + ext) if ext else (None, None)
    return guessed or "application/octet-stream"


def _disposition(name: str) -> str:
    """``attachment; filename="…"`` quoted like the original; non-ASCII also as RFC 5987 ``filename*``."""
    from urllib.parse import quote

    safe = "".join(c if 0x20 <= ord(c) < 0x7F else "_" for c in name)
    quoted = safe.replace("\\", "\\\\").replace('"', '\\"')
    value = f'attachment; filename="{quoted}"'
    if safe != name:
        value += "; filename*=UTF-8''" + quote(name, safe="")
    return value


class VoicemailStream(Response):
    """Streams a started MX download chunk by chunk; cancels it on the MX when the client leaves.

    Errors after the first chunk cannot change the status any more, so the response is cut short
    (no final empty chunk) and the client sees a truncated transfer rather than a complete file.
    """

    def __init__(self, download: VoicemailDownload) -> None:
        self.download = download
        self.status_code = 200
        self.background = None
        self.init_headers(
            {
                "Content-Type": _content_type(download.file_format),
                "Content-Disposition": _disposition(download.document_name or "voicemail"),
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as tg:

                async def stream() -> None:
                    await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
                    try:
                        async for chunk in self.download:
                            await send({"type": "http.response.body", "body": bytes(chunk), "more_body": True})
                    except MXError as exc:
                        log.warning("voicemail download aborted mid-stream: %s", exc)
                        tg.cancel_scope.cancel()
                        return
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    tg.cancel_scope.cancel()

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(stream)
                tg.start_soon(watch_disconnect)
        except OSError:
            pass  # the client went away while we were writing
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await self.download.aclose()
                except MXError as exc:
                    log.debug("closing voicemail download: %s", exc)


async def download_voicemail(request: Request) -> Response:
    session = await current_session(request)
    mail_id = _mail_id(request)
    try:
        download = await session.mx.download_voicemail(mail_id, _media(request))
    except CSTAError as exc:
        raise ApiError(404, exc.text or "not found") from None
    return VoicemailStream(download)


async def delete_voicemail(request: Request) -> Response:
    session = await current_session(request)
    mail_id = _mail_id(request)
    media = _media(request)
    removed_from_memory = media in (None, RECORDING) and session.recordings.remove(mail_id)
    try:
        await session.mx.delete_voicemail(mail_id, media)
    except CSTAError as exc:
        if not removed_from_memory:
            raise ApiError(404, exc.text or "not found") from None
    return no_content()


async def update_voicemail(request: Request) -> Response:
    session = await current_session(request)
    mail_id = _mail_id(request)
    media = _media(request)
    body = await read_fields(request, [Field("read", "bool"), Field("note")])
    if "read" not in body and "note" not in body:
        raise ApiError(400, 'bad request: give "read" and/or "note"')
    try:
        if "read" in body:
            await session.mx.set_voicemail_read(mail_id, body["read"], media)
        if "note" in body:
            await session.mx.set_voicemail_note(mail_id, body["note"], media)
    except CSTAError as exc:
        raise ApiError(404, exc.text or "not found") from None
    if media in (None, RECORDING):
        session.recordings.update(mail_id, read=body.get("read"), note=body.get("note"))
    events = context(request).events
    if body.get("read") is True and events is not None:  # the MX announces no status change
        events.voicemail_read(session.login, mail_id, media or "VoiceMail")
    vm: dict[str, Any] = {}
    if "read" in body:
        vm["read"] = body["read"]
    if "note" in body:
        vm["note"] = body["note"]
    return json_response({"vm": vm})


async def voicemail_route(request: Request) -> Response:
    if request.method == "GET":
        return await download_voicemail(request)
    if request.method == "DELETE":
        return await delete_voicemail(request)
    return await update_voicemail(request)

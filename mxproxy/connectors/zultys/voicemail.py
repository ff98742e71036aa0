"""A voicemail download, chunk by chunk (spec §4.15.5, fixes of §9.8).

The first chunk is fetched before the download object exists (so a CSTA error can still become
a 404). ``nextChunk`` is requested only while ``chunkNumber < totalChunks``, never past the end;
a chunk number that does not advance is a protocol error (instead of looping forever); base64
errors surface as ``MXProtocolError``. ``aclose()`` before the end sends ``MailCancelReceive``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, AsyncIterator

from mxproxy.connectors.base import VoicemailDownload
from mxproxy.connectors.errors import MXError, MXProtocolError
from mxproxy.connectors.zultys import commands, parsers

if TYPE_CHECKING:
    from mxproxy.connectors.zultys.client import CSTAClient

log = logging.getLogger("mxproxy.connectors.zultys")

__all__ = ["ZultysVoicemailDownload", "fetch_chunk"]


#: Root name of a chunk; only used to recognise a chunk the MX sent on 9999 instead of as the reply.
CHUNK_ROOT = "MailReceiveIncomingResponse"


async def fetch_chunk(client: "CSTAClient", mail_id: str, media_type: str | None, *, next_chunk: bool) -> parsers.MailChunk:
    """One chunk: the direct response, or a chunk of this mail on 9999 (whichever comes first)."""
    sub = client.subscribe(CHUNK_ROOT, lambda el: el.get("mailId", mail_id).strip() == mail_id)
    try:
        reply, on_events = await client.request_with_event(
            commands.mail_receive(mail_id, media_type, next_chunk=next_chunk), sub, grace=0.0, wait_for_event=False)
    finally:
        client.unsubscribe(sub)
    el = reply if reply is not None else on_events
    assert el is not None  # request_with_event returns at least one of them
    return parsers.mail_chunk(el)


class ZultysVoicemailDownload(VoicemailDownload):
    def __init__(self, client: "CSTAClient", mail_id: str, media_type: str | None, first: parsers.MailChunk) -> None:
        self._client = client
        self.mail_id = mail_id
        self.media_type = media_type
        self._first: parsers.MailChunk | None = first
        self._number = first.number
        self.file_format = first.file_format
        self.document_name = first.document_name
        self.total_chunks = max(first.total, 1)
        self._finished = self._number >= self.total_chunks
        self._closed = False
        self._started = False

    @property
    def finished(self) -> bool:
        """Every chunk was fetched."""
        return self._finished

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a voicemail download can be iterated only once")
        self._started = True
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        first, self._first = self._first, None
        if first is not None:
            yield first.data
        while not self._finished and not self._closed:
            chunk = await fetch_chunk(self._client, self.mail_id, self.media_type, next_chunk=True)
            if chunk.number <= self._number:
                raise MXProtocolError(f"voicemail {self.mail_id}: chunk number went from {self._number} to {chunk.number}")
            self._number = chunk.number
            self._finished = chunk.number >= max(chunk.total, 1)
            yield chunk.data

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._first = None
        if self._finished or not self._client.alive:
            return
        try:
            await self._client.request(commands.mail_cancel(self.mail_id, self.media_type))
        except MXError as exc:  # best effort: the transfer is abandoned either way
            log.info("MX session %s: cancelling voicemail %s download: %s", self._client.label, self.mail_id, exc)

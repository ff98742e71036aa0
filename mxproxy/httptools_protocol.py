"""uvicorn's httptools protocol with h11's bound on the request head (``mxproxy.runtime``)."""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mxproxy.runtime import BAD_REQUEST, MAX_REQUEST_HEAD


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Refuses a request whose line + headers pass ``MAX_REQUEST_HEAD`` bytes, as h11 does (400,
    connection closed), instead of letting llhttp buffer an endless header.

    Counted per received chunk while a head is unfinished and reset when one completes, so the
    memory held is at most the bound plus one read; a chunk of small pipelined requests never
    counts against it. Two attribute checks per read are all it costs."""

    max_head = MAX_REQUEST_HEAD
    _head_bytes = 0
    _in_body = False

    def data_received(self, data: bytes) -> None:
        if not self._in_body:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_bytes > self.max_head and not self._in_body and not self.transport.is_closing():
            self.logger.warning(BAD_REQUEST)
            self.send_400_response(BAD_REQUEST)

    def on_headers_complete(self) -> None:
        self._in_body = True
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        super().on_message_complete()


__all__ = ["BoundedHttpToolsProtocol"]

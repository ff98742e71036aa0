"""JSON answers rendered once and then served as bytes: the cached directory (``GET /contacts``),
the cached call log (``GET /calls``) and each session's ``GET /auth``.

A ``RenderedJSON`` holds the body, its gzip form (compressed on the first request that accepts
gzip) and the raw headers of both, so serving it again is building one small ``Response``: no
JSON encoding, no compression, no header assembly. Its owner keeps it exactly as long as the data
it was rendered from (``SharedFetch.get_derived``: dropped when the cache is invalidated or runs
out). The gzip rule is the one ``GZipMiddleware`` applies to the other routes: answers of at
least ``GZIP_MINIMUM`` bytes, when ``Accept-Encoding`` names gzip, with ``Vary: Accept-Encoding``.
"""

from __future__ import annotations

import gzip
from typing import Any

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from mxproxy.api.render import JSON_MEDIA_TYPE, dumps

GZIP_MINIMUM = 1024  # bytes; smaller answers are sent as they are
# zlib's default level: Starlette's 9 costs 2-5x the CPU for 3-10 % smaller JSON (117 contacts)
GZIP_LEVEL = 6

RawHeaders = list[tuple[bytes, bytes]]
_CONTENT_TYPE = (b"content-type", JSON_MEDIA_TYPE.encode("latin-1"))


def accepts_gzip(request: Request) -> bool:
    """``GZipMiddleware``'s test (``"gzip"`` anywhere in ``Accept-Encoding``), on the raw headers."""
    for name, value in request.scope["headers"]:
        if name == b"accept-encoding":
            return b"gzip" in value
    return False


class PrebuiltResponse(Response):
    """A ``Response`` whose body and raw headers are already made (``Response.__init__`` would
    render and assemble them again). The headers list is copied: middleware may edit it."""

    def __init__(self, body: bytes, raw_headers: RawHeaders, status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = body
        self.raw_headers = list(raw_headers)
        self.background: BackgroundTask | None = None


class RenderedJSON:
    """One JSON answer (``render.dumps``: the original's indentation), ready to be sent again."""

    __slots__ = ("body", "status", "_headers", "_gzipped")

    def __init__(self, data: Any, status: int = 200) -> None:
        self.body = dumps(data)
        self.status = status
        self._headers: RawHeaders = [(b"content-length", str(len(self.body)).encode("latin-1")), _CONTENT_TYPE]
        self._gzipped: tuple[bytes, RawHeaders] | None = None

    def response(self, request: Request) -> Response:
        if len(self.body) >= GZIP_MINIMUM and accepts_gzip(request):
            body, headers = self._gzipped or self._compress()
            return PrebuiltResponse(body, headers, self.status)
        return PrebuiltResponse(self.body, self._headers, self.status)

    def _compress(self) -> tuple[bytes, RawHeaders]:
        body = gzip.compress(self.body, compresslevel=GZIP_LEVEL, mtime=0)
        self._gzipped = body, [(b"content-length", str(len(body)).encode("latin-1")), _CONTENT_TYPE,
                               (b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")]
        return self._gzipped


__all__ = ["GZIP_LEVEL", "GZIP_MINIMUM", "PrebuiltResponse", "RenderedJSON", "accepts_gzip"]

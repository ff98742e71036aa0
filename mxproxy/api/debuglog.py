"""``GET /debug/log``: the configured log file, for client-app developers, with secrets redacted.

The original served the raw file to anyone holding an app's client secret (which ships inside
mobile apps), including password-equivalent login hashes (§9.20). We keep the route for
compatibility but redact passwords, bearer/basic credentials and JWTs line by line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import AsyncIterator

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from mxproxy.api.auth import context
from mxproxy.api.errors import BASIC_CHALLENGE, ApiError
from mxproxy.auth.clients import check_client

REDACTED = "[REDACTED]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # <pwd>…</pwd>, <password>…</password> (CSTA loginRequest)
    (re.compile(r"(<(pwd|password|passwd)\b[^>]*>).*?(</\2\s*>)", re.IGNORECASE | re.DOTALL), r"\1" + REDACTED + r"\3"),
    # Authorization headers
    (re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE), r"\1 " + REDACTED),
    # JWTs anywhere (access tokens, Azure id_tokens)
    (re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), REDACTED),
    # key=value / key: value / "key": "value" / key="value" for secret-looking keys
    (
        re.compile(
            r"""(?ix)
            (\b(?:password|passwd|pwd|account_pwd|softPhonePwd|secret|client_secret|access_token|id_token|token)
               ["']?\s*(?:=|:)\s*)
            (?:"[^"]*"|'[^']*'|[^\s&,;<>"']+)
            """
        ),
        r"\1" + REDACTED,
    ),
]


def redact(line: str) -> str:
    for pattern, replacement in _PATTERNS:
        line = pattern.sub(replacement, line)
    return line


async def _redacted_lines(path: Path) -> AsyncIterator[bytes]:
    """Read ~64 KiB of whole lines per thread hop, redact them, send them on."""
    fh = await anyio.to_thread.run_sync(lambda: path.open("r", encoding="utf-8", errors="replace"))
    try:
        while True:
            lines = await anyio.to_thread.run_sync(fh.readlines, 64 * 1024)
            if not lines:
                return
            yield "".join(redact(line) for line in lines).encode("utf-8")
    finally:
        fh.close()


async def debug_log(request: Request) -> Response:
    header = request.headers.get("authorization", "")
    if not header.startswith("Basic "):
        raise ApiError(401, "unauthorized", BASIC_CHALLENGE)
    ctx = context(request)
    check_client(ctx.config.apps, header)
    if not ctx.config.log_name:
        raise ApiError(404, "not found")
    path = ctx.config.resolve_path(ctx.config.log_name)
    if not path.is_file():
        raise ApiError(404, "not found")
    return StreamingResponse(_redacted_lines(path), media_type="text/plain; charset=utf-8")

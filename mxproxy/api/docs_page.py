"""``GET /docs``: Swagger UI for ``/openapi.json``, every file served by this process.

The assets come from the ``swagger-ui-bundle`` package (Swagger UI's release files); nothing is
loaded from a CDN, so the page works on a proxy without Internet access and leaks no visit to a
third party. The page and its initializer are ours: relative URLs only (they work behind a reverse
proxy), the online validator badge off, and a Content-Security-Policy that lets the browser fetch
nothing from another origin.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mxproxy.api.errors import ApiError

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'")

#: The Swagger UI files the page uses, by the name they are served under (``/docs/<name>``).
ASSETS: dict[str, str] = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mxproxy API</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""

INIT_JS = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
};
"""


def _asset_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


@lru_cache(maxsize=len(ASSETS))
def _asset(name: str) -> bytes:
    return (_asset_dir() / name).read_bytes()


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}


async def page(request: Request) -> Response:
    return Response(PAGE, media_type="text/html; charset=utf-8", headers=_headers())


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name == "init.js":
        return Response(INIT_JS, media_type="text/javascript; charset=utf-8", headers=_headers())
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ApiError(404, "not found")
    return Response(_asset(name), media_type=media_type,
                    headers={**_headers(), "Cache-Control": "public, max-age=86400"})


def routes(compress: Sequence[Middleware]) -> list[Route]:
    """``compress``: the app's gzip middleware (Swagger UI's bundle is 1 MB, ~300 kB gzipped)."""
    return [
        Route("/docs", page, methods=["GET"]),
        Route("/docs/{name}", asset, methods=["GET"], middleware=compress),
    ]

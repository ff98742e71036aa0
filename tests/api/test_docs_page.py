"""``/docs``: Swagger UI for ``/openapi.json``, served entirely by the proxy (no CDN)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from tests.api.conftest import ApiHarness

BASE = "http://proxy.test/docs"


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append(value)


def _external_hosts(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"(?:https?:)?//([A-Za-z0-9.-]+\.[A-Za-z]{2,})", text)}


async def test_docs_page_and_every_asset_it_references_are_served_locally(api: ApiHarness) -> None:
    r = await api.client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert _external_hosts(r.text) == set()
    parser = _Refs()
    parser.feed(r.text)
    assert len(parser.refs) >= 3, parser.refs
    scripts = []
    for ref in parser.refs:
        url = urlsplit(urljoin(BASE, ref))
        assert url.netloc == "proxy.test", ref  # same origin: relative references only
        asset = await api.client.get(url.path)
        assert asset.status_code == 200 and asset.content, ref
        if url.path.endswith(".js") and "init" in url.path:
            scripts.append(asset.text)
    [init] = scripts
    assert _external_hosts(init) == set() and "validatorUrl: null" in init  # no online validator badge
    spec = await api.client.get(urlsplit(urljoin(BASE, re.search(r'url: "([^"]+)"', init).group(1))).path)
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.1")


async def test_the_swagger_bundle_is_gzipped_and_unknown_assets_are_404(api: ApiHarness) -> None:
    r = await api.client.get("/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers.get("content-encoding") == "gzip"
    assert "SwaggerUIBundle" in r.text
    for path in ("/docs/index.html", "/docs/..%2Fpyproject.toml", "/docs/swagger-initializer.js"):
        r = await api.client.get(path)
        assert (r.status_code, r.json()) == (404, {"error": "not found"}), path

"""``RenderedJSON``: an answer rendered once, served as the same bytes (plain or gzip) again."""

from __future__ import annotations

import gzip

import pytest
from starlette.requests import Request

from mxproxy.api.render import dumps
from mxproxy.api.rendered import GZIP_MINIMUM, RenderedJSON


def _request(accept_encoding: str | None) -> Request:
    headers = [(b"accept-encoding", accept_encoding.encode())] if accept_encoding is not None else []
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""})


LARGE = {"contacts": [{"jid": str(i), "firstName": f"Person {i}", "ext": str(3000 + i)} for i in range(40)]}


@pytest.mark.parametrize("accept", ["gzip", "deflate, gzip;q=1.0", "identity", "", None])
def test_small_answers_are_never_compressed(accept: str | None) -> None:
    r = RenderedJSON({"mx": "63022"}).response(_request(accept))
    assert r.body == dumps({"mx": "63022"}) and "content-encoding" not in r.headers
    assert r.headers["content-length"] == str(len(r.body))
    assert r.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(("accept", "zipped"), [("gzip", True), ("br, gzip", True), ("identity", False),
                                               ("", False), (None, False)])
def test_large_answers_are_gzipped_when_asked_with_vary(accept: str | None, zipped: bool) -> None:
    rendered = RenderedJSON(LARGE)
    assert len(rendered.body) >= GZIP_MINIMUM
    r = rendered.response(_request(accept))
    assert (r.headers.get("content-encoding") == "gzip") is zipped
    assert r.headers["content-length"] == str(len(r.body))
    assert (gzip.decompress(r.body) if zipped else r.body) == dumps(LARGE)
    if zipped:
        assert r.headers["vary"] == "Accept-Encoding"


def test_each_response_gets_its_own_header_list_and_the_gzip_form_is_made_once() -> None:
    rendered = RenderedJSON(LARGE)
    first = rendered.response(_request("gzip"))
    first.raw_headers.append((b"x-edited", b"by middleware"))
    second = rendered.response(_request("gzip"))
    assert "x-edited" not in second.headers
    assert second.body is first.body  # compressed once, served again
    assert rendered.response(_request(None)).body is rendered.body

"""OAuth2 client check for POST /auth (spec §7.3): messages of the original, no early exit."""

from __future__ import annotations

import base64

import pytest

from mxproxy.auth.clients import bearer_token, check_client, parse_basic
from mxproxy.auth.errors import AuthError, BadClientCredentials, Forbidden, Unauthorized

APPS = {"ios-app": "s3cret", "android-app": "other-secret", "ünï": "välue"}


def basic(raw: bytes | str) -> str:
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    return "Basic " + base64.b64encode(raw).decode("ascii")


def test_matching_client_returns_its_id() -> None:
    assert check_client(APPS, basic("ios-app:s3cret")) == "ios-app"
    assert check_client(APPS, basic("android-app:other-secret")) == "android-app"


def test_non_ascii_client_id_and_secret_match_byte_for_byte() -> None:
    assert check_client(APPS, basic("ünï:välue")) == "ünï"


def test_secret_may_contain_colons() -> None:
    assert check_client({"app": "a:b:c"}, basic("app:a:b:c")) == "app"


def test_wrong_secret_is_bad_client_credentials() -> None:
    with pytest.raises(BadClientCredentials) as info:
        check_client(APPS, basic("ios-app:s3cre"))
    assert info.value.message == "bad client-id or app secret"
    assert info.value.status == 403
    assert isinstance(info.value, Forbidden)


def test_unknown_client_id_gives_the_same_error_as_a_wrong_secret() -> None:
    with pytest.raises(BadClientCredentials) as info:
        check_client(APPS, basic("nobody:s3cret"))
    assert str(info.value) == "bad client-id or app secret"


def test_secret_of_another_app_does_not_match() -> None:
    with pytest.raises(BadClientCredentials):
        check_client(APPS, basic("ios-app:other-secret"))


def test_empty_apps_rejects_everything() -> None:
    with pytest.raises(BadClientCredentials):
        check_client({}, basic("ios-app:s3cret"))


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic aW9zLWFwcDpzM2NyZXQ",  # missing padding: Go's StdEncoding refuses it too
        "Basic ëëë",
        "Basic ",
    ],
)
def test_undecodable_basic_header_is_forbidden(header: str) -> None:
    with pytest.raises(Forbidden) as info:
        check_client(APPS, header)
    assert type(info.value) is Forbidden
    assert info.value.message == "forbidden"


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "basic " + base64.b64encode(b"ios-app:s3cret").decode(), "Digest x"])
def test_missing_or_other_scheme_is_unauthorized(header: str | None) -> None:
    with pytest.raises(Unauthorized) as info:
        check_client(APPS, header)
    assert info.value.message == "unauthorized"
    assert info.value.status == 401


def test_parse_basic_returns_raw_bytes() -> None:
    assert parse_basic(basic(b"\xff\xfe:pw")) == (b"\xff\xfe", b"pw")


def test_bearer_token_only_for_the_bearer_scheme() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("Bearer ") is None
    assert bearer_token("bearer abc") is None
    assert bearer_token(basic("a:b")) is None
    assert bearer_token(None) is None


def test_errors_share_one_base_with_a_message() -> None:
    for error in (Unauthorized(), Forbidden(), BadClientCredentials()):
        assert isinstance(error, AuthError)
        assert str(error) == error.message

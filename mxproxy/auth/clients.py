"""OAuth2 client check for ``POST /auth``: which configured app is calling.

The original compared ``client_id:secret`` with ``==`` and stopped at the first match (§9.22);
here every configured app is compared in constant time and the loop never exits early, so
response timing tells nothing about which client ids exist or how much of a secret was right.
Only string parsing lives here; the API decides statuses from the typed errors.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Mapping

from mxproxy.auth.errors import BadClientCredentials, Forbidden, Unauthorized

BASIC_PREFIX = "Basic "  # case-sensitive, as the original matched the raw header
BEARER_PREFIX = "Bearer "


def bearer_token(header: str | None) -> str | None:
    """The token of a ``Bearer <token>`` header, or None for any other (or no) header."""
    if not header or not header.startswith(BEARER_PREFIX):
        return None
    token = header[len(BEARER_PREFIX):].strip()
    return token or None


def parse_basic(header: str | None) -> tuple[bytes, bytes]:
    """Split a raw ``Basic …`` header into (user, password) bytes.

    Not Basic at all → ``Unauthorized`` (the API answers 401 with a Basic challenge);
    Basic but not base64 of ``user:password`` → ``Forbidden("forbidden")`` as the original.
    Bytes, not text: a client id is compared byte for byte and need not be UTF-8.
    """
    if not header or not header.startswith(BASIC_PREFIX):
        raise Unauthorized()
    encoded = header[len(BASIC_PREFIX):]
    try:
        decoded = base64.b64decode(encoded.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise Forbidden() from None
    user, sep, password = decoded.partition(b":")
    if not sep:
        raise Forbidden()
    return user, password


def check_client(apps: Mapping[str, str], header: str | None) -> str:
    """Return the client id named by a Basic ``Authorization`` header when its secret matches
    ``apps`` (client id → secret); raise ``Unauthorized``, ``Forbidden`` or
    ``BadClientCredentials`` otherwise."""
    client_id, secret = parse_basic(header)
    matched: str | None = None
    for app_id, app_secret in apps.items():
        # Both comparisons always run, for every app: no short-circuit on the id.
        id_ok = hmac.compare_digest(client_id, app_id.encode("utf-8"))
        secret_ok = hmac.compare_digest(secret, app_secret.encode("utf-8"))
        if id_ok & secret_ok:
            matched = app_id
    if matched is None:
        raise BadClientCredentials()
    return matched

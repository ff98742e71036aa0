"""Input checks shared by both stores, run before any SQL so bad input never reaches a row."""

from __future__ import annotations

import math

from mxproxy.store.base import DeviceToken, InvalidRecord, SigningKey, UserRecord

TOKEN_KINDS = frozenset({"apn", "fcm"})
MAX_TEXT = 4096


def text(name: str, value: object, *, allow_empty: bool = False) -> str:
    """A non-empty string without NUL (PostgreSQL cannot store NUL; SQLite would truncate in places)."""
    if not isinstance(value, str):
        raise InvalidRecord(f"{name}: expected a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise InvalidRecord(f"{name}: must not be empty")
    if "\x00" in value:
        raise InvalidRecord(f"{name}: must not contain NUL characters")
    if len(value) > MAX_TEXT:
        raise InvalidRecord(f"{name}: longer than {MAX_TEXT} characters")
    return value


def timestamp(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidRecord(f"{name}: expected Unix seconds as a finite number")
    return float(value)


def kind(value: object) -> str:
    text("kind", value)
    if value not in TOKEN_KINDS:
        raise InvalidRecord(f"kind: expected one of {sorted(TOKEN_KINDS)}, got {value!r}")
    return value  # type: ignore[return-value]


def token_key(kind_: object, topic: object, token: object) -> tuple[str, str, str]:
    return kind(kind_), text("topic", topic), text("token", token)


def user(record: UserRecord) -> UserRecord:
    if not isinstance(record, UserRecord):
        raise InvalidRecord(f"expected a UserRecord, got {type(record).__name__}")
    text("login", record.login)
    text("host", record.host)
    text("mx_login", record.mx_login)
    text("password", record.password, allow_empty=True)
    text("sign_in_name", record.sign_in_name, allow_empty=True)
    if not isinstance(record.needs_reauth, bool):
        raise InvalidRecord("needs_reauth: expected true or false")
    timestamp("created_at", record.created_at)
    timestamp("updated_at", record.updated_at)
    return record


def device_token(record: DeviceToken) -> DeviceToken:
    if not isinstance(record, DeviceToken):
        raise InvalidRecord(f"expected a DeviceToken, got {type(record).__name__}")
    token_key(record.kind, record.topic, record.token)
    text("login", record.login)
    if not isinstance(record.sandbox, bool):
        raise InvalidRecord("sandbox: expected true or false")
    timestamp("created_at", record.created_at)
    if record.last_result is not None:
        text("last_result", record.last_result, allow_empty=True)
    if record.last_result_at is not None:
        timestamp("last_result_at", record.last_result_at)
    return record


def signing_key(record: SigningKey) -> SigningKey:
    if not isinstance(record, SigningKey):
        raise InvalidRecord(f"expected a SigningKey, got {type(record).__name__}")
    text("kid", record.kid)
    if not isinstance(record.private_pem, bytes) or not record.private_pem:
        raise InvalidRecord("private_pem: expected non-empty PEM bytes")
    timestamp("created_at", record.created_at)
    return record

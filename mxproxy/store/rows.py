"""Row <-> record conversion shared by both stores: where secrets are sealed and opened."""

from __future__ import annotations

import time
from typing import Any, Mapping

from mxproxy.store.base import DeviceToken, SigningKey, UserRecord
from mxproxy.store.crypto import SecretBox, password_aad, signing_key_aad

Row = Mapping[str, Any]

USER_COLUMNS = "login, host, mx_login, password_enc, needs_reauth, created_at, updated_at, sign_in_name"
TOKEN_COLUMNS = "kind, topic, token, login, sandbox, created_at, last_result, last_result_at"
KEY_COLUMNS = "kid, private_pem_enc, created_at"


def now() -> float:
    return time.time()


def user_from_row(box: SecretBox, row: Row) -> UserRecord:
    login = row["login"]
    return UserRecord(
        login=login,
        host=row["host"],
        mx_login=row["mx_login"],
        password=box.decrypt(row["password_enc"], password_aad(login)).decode("utf-8"),
        needs_reauth=bool(row["needs_reauth"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        sign_in_name=str(row["sign_in_name"] or ""),
    )


def seal_password(box: SecretBox, user: UserRecord) -> str:
    return box.encrypt(user.password.encode("utf-8"), password_aad(user.login))


def user_values(box: SecretBox, user: UserRecord, stamp: float) -> tuple[Any, ...]:
    """The row of ``user`` in USER_COLUMNS order, password sealed; missing times are ``stamp``."""
    return (
        user.login, user.host, user.mx_login, seal_password(box, user), bool(user.needs_reauth),
        float(user.created_at or stamp), float(user.updated_at or stamp), user.sign_in_name,
    )


def token_values(token: DeviceToken, stamp: float) -> tuple[Any, ...]:
    """The row of ``token`` in TOKEN_COLUMNS order; a missing creation time is ``stamp``."""
    return (
        token.kind, token.topic, token.token, token.login, token.sandbox, float(token.created_at or stamp),
        token.last_result, token.last_result_at,
    )


def placeholders(columns: str) -> str:
    """``?, ?, …``: one per column of a column list."""
    return ", ".join("?" for _ in columns.split(","))


def token_from_row(row: Row) -> DeviceToken:
    at = row["last_result_at"]
    return DeviceToken(
        kind=row["kind"],
        topic=row["topic"],
        token=row["token"],
        login=row["login"],
        sandbox=bool(row["sandbox"]),
        created_at=float(row["created_at"]),
        last_result=row["last_result"],
        last_result_at=None if at is None else float(at),
    )


def key_from_row(box: SecretBox, row: Row) -> SigningKey:
    kid = row["kid"]
    return SigningKey(
        kid=kid,
        private_pem=box.decrypt(row["private_pem_enc"], signing_key_aad(kid)),
        created_at=float(row["created_at"]),
    )


def seal_private_key(box: SecretBox, key: SigningKey) -> str:
    return box.encrypt(key.private_pem, signing_key_aad(key.kid))

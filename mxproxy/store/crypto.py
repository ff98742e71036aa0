"""Encryption at rest for the secrets the store keeps (MX passwords, signing private keys).

Key derivation: the configured ``store_key`` may be any string, including a human passphrase, so
the 32-byte AES key is derived with **scrypt** (n=2**14, r=8, p=1: ~50 ms once per open, costly to
brute-force) over a random 16-byte salt kept in the store itself. The salt and the parameters are
recorded next to the data, so a store stays readable if the defaults change later.

Value format: ``v1:`` + base64(nonce[12] + AES-256-GCM ciphertext+tag). The associated data binds
each value to its column and row (e.g. ``users.password:alice``), so a ciphertext copied into
another row or column fails to decrypt instead of silently yielding someone else's password.

A key check value (a known plaintext encrypted at creation) lets ``open()`` refuse a wrong key at
once, rather than producing decrypt errors later on random rows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from mxproxy.store.base import StoreError

log = logging.getLogger(__name__)

VALUE_PREFIX = "v1:"
NONCE_SIZE = 12
KEY_CHECK_PLAINTEXT = b"mxproxy store key check"
KEY_CHECK_AAD = "store.key_check"


class StoreKeyError(StoreError):
    """The store key is missing, or is not the key this store was created with."""


class CorruptRecord(StoreError):
    """A stored secret cannot be decrypted: tampered with, or moved between rows."""


@dataclass(frozen=True)
class KdfParams:
    """scrypt parameters, stored as text (``scrypt:n=16384,r=8,p=1:<salt b64>``)."""

    salt: bytes
    n: int = 2**14
    r: int = 8
    p: int = 1

    @classmethod
    def fresh(cls) -> "KdfParams":
        return cls(salt=secrets.token_bytes(16))

    def encode(self) -> str:
        salt = base64.b64encode(self.salt).decode()
        return f"scrypt:n={self.n},r={self.r},p={self.p}:{salt}"

    @classmethod
    def decode(cls, text: str) -> "KdfParams":
        try:
            name, params, salt = text.split(":")
            if name != "scrypt":
                raise ValueError(name)
            values = dict(item.split("=") for item in params.split(","))
            return cls(
                salt=base64.b64decode(salt, validate=True),
                n=int(values["n"]),
                r=int(values["r"]),
                p=int(values["p"]),
            )
        except (ValueError, KeyError, binascii.Error):
            raise StoreKeyError(f"unrecognised key derivation parameters in the store: {text[:40]!r}") from None


class SecretBox:
    """AES-256-GCM with per-value random nonces and row-binding associated data."""

    def __init__(self, store_key: str, params: KdfParams) -> None:
        if not store_key:
            raise StoreKeyError("the store key is empty")
        kdf = Scrypt(salt=params.salt, length=32, n=params.n, r=params.r, p=params.p)
        self._aead = AESGCM(kdf.derive(store_key.encode("utf-8")))

    def encrypt(self, plaintext: bytes, aad: str) -> str:
        nonce = os.urandom(NONCE_SIZE)
        sealed = self._aead.encrypt(nonce, plaintext, aad.encode("utf-8"))
        return VALUE_PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, value: str, aad: str) -> bytes:
        """Raise CorruptRecord (naming the row, never the value) when it does not decrypt."""
        if not value.startswith(VALUE_PREFIX):
            raise CorruptRecord(f"{aad}: stored secret has an unknown format")
        try:
            raw = base64.b64decode(value[len(VALUE_PREFIX):], validate=True)
            if len(raw) < NONCE_SIZE + 16:
                raise ValueError("too short")
            return self._aead.decrypt(raw[:NONCE_SIZE], raw[NONCE_SIZE:], aad.encode("utf-8"))
        except (ValueError, binascii.Error, InvalidTag):
            raise CorruptRecord(
                f"{aad}: stored secret cannot be decrypted (tampered with, or copied from another row)"
            ) from None

    def key_check(self) -> str:
        return self.encrypt(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD)

    def verify_key_check(self, value: str, hint: str = "") -> None:
        try:
            ok = self.decrypt(value, KEY_CHECK_AAD) == KEY_CHECK_PLAINTEXT
        except CorruptRecord:
            ok = False
        if not ok:
            raise StoreKeyError(
                "the store key does not match the key this store was created with" + (f"; {hint}" if hint else "")
            )


def password_aad(login: str) -> str:
    return f"users.password:{login}"


def signing_key_aad(kid: str) -> str:
    return f"signing_keys.private_pem:{kid}"


_warned_key_files: set[Path] = set()


def key_file_for(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".key")


def _create_key_file(path: Path) -> bool:
    """Write a fresh key to a private temp file, then link it into place: a process starting at
    the same moment sees either no file or the complete one, and exactly one key wins."""
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(32)).decode("ascii") + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
    except OSError as exc:
        raise StoreKeyError(f"cannot create store key file {path}: {exc.strerror}") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def load_or_create_key_file(db_path: Path) -> str:
    """The SQLite fallback when no store key is configured: a random key in ``<db>.key`` (0600).

    It protects the secrets from someone who only gets the database file (a copied backup, a
    leaked volume), not from someone who can read the folder; hence the warning.
    """
    path = key_file_for(db_path)
    created = False
    if not path.exists():
        created = _create_key_file(path)
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise StoreKeyError(f"cannot read store key file {path}: {exc.strerror}") from None
    if not key:
        raise StoreKeyError(f"store key file {path} is empty")
    resolved = path.resolve()
    if resolved not in _warned_key_files:
        _warned_key_files.add(resolved)
        log.warning(
            "store: no server.storeKey configured; %s the store key in %s, beside the database. "
            "Without it the stored MX passwords and signing keys cannot be read; with it, anyone who "
            "has the database can read them: back it up separately, or configure server.storeKey.",
            "generated" if created else "using",
            path,
        )
    return key


async def open_secret_box(
    store_key: str,
    get_meta: Callable[[str], Awaitable[str | None]],
    add_meta: Callable[[str, str], Awaitable[None]],
    wrong_key_hint: str = "",
) -> SecretBox:
    """Derive the key from the store's KDF parameters (created on first open) and verify it.

    ``add_meta`` must insert only if the name is absent, so two processes opening a fresh store at
    once agree on one salt and one check value (the loser re-reads the winner's).
    """
    params_text = await get_meta("kdf")
    if params_text is None:
        await add_meta("kdf", KdfParams.fresh().encode())
        params_text = await get_meta("kdf")
        assert params_text is not None
    params = KdfParams.decode(params_text)
    box = await asyncio.to_thread(SecretBox, store_key, params)
    check = await get_meta("key_check")
    if check is None:
        await add_meta("key_check", box.key_check())
        check = await get_meta("key_check")
        assert check is not None
    box.verify_key_check(check, wrong_key_hint)
    return box

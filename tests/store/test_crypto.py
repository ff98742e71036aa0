"""The at-rest encryption primitives, without a database."""

from __future__ import annotations

import pytest

from mxproxy.store.crypto import CorruptRecord, KdfParams, SecretBox, StoreKeyError

PARAMS = KdfParams(salt=b"0123456789abcdef")


def test_values_are_versioned_and_bound_to_their_row() -> None:
    box = SecretBox("k", PARAMS)
    sealed = box.encrypt(b"pw", "users.password:alice")
    assert sealed.startswith("v1:")
    assert box.decrypt(sealed, "users.password:alice") == b"pw"
    with pytest.raises(CorruptRecord, match="users.password:bob"):
        box.decrypt(sealed, "users.password:bob")


def test_same_plaintext_encrypts_differently_each_time() -> None:
    box = SecretBox("k", PARAMS)
    assert box.encrypt(b"pw", "a") != box.encrypt(b"pw", "a")


@pytest.mark.parametrize("value", ["pw", "v2:AAAA", "v1:!!notbase64!!", "v1:QUJD"])
def test_malformed_values_are_refused(value: str) -> None:
    with pytest.raises(CorruptRecord):
        SecretBox("k", PARAMS).decrypt(value, "a")


def test_key_check_accepts_the_right_key_only() -> None:
    check = SecretBox("right", PARAMS).key_check()
    SecretBox("right", PARAMS).verify_key_check(check)
    with pytest.raises(StoreKeyError, match="does not match.*hint here"):
        SecretBox("wrong", PARAMS).verify_key_check(check, "hint here")
    with pytest.raises(StoreKeyError):  # same key, different salt: a different derived key
        SecretBox("right", KdfParams(salt=b"fedcba9876543210")).verify_key_check(check)


def test_kdf_params_round_trip_and_reject_garbage() -> None:
    fresh = KdfParams.fresh()
    assert KdfParams.decode(fresh.encode()) == fresh
    assert fresh.encode().startswith("scrypt:n=16384,r=8,p=1:")
    for bad in ["", "argon2:n=1:AAAA", "scrypt:n=x,r=8,p=1:AAAA", "scrypt:r=8,p=1:AAAA"]:
        with pytest.raises(StoreKeyError):
            KdfParams.decode(bad)


def test_empty_key_is_refused() -> None:
    with pytest.raises(StoreKeyError, match="empty"):
        SecretBox("", PARAMS)

"""Trusted MX certificate fingerprints (``[mx] tlsTrustOnFirstUse``) in the store: first writer
wins, also between two instances sharing one database, and they can be forgotten."""

from __future__ import annotations

from mxproxy.store import Store

from .conftest import Backend

A, B = "a" * 64, "b" * 64


async def test_the_first_fingerprint_is_kept_and_later_ones_do_not_replace_it(store: Store) -> None:
    assert await store.mx_certificates() == {}
    assert await store.trust_mx_certificate("10.0.0.1:7778", A) == A
    assert await store.trust_mx_certificate("10.0.0.1:7778", B) == A
    assert await store.trust_mx_certificate("10.0.0.2:7778", B) == B
    assert await store.mx_certificates() == {"10.0.0.1:7778": A, "10.0.0.2:7778": B}


async def test_two_instances_on_one_database_trust_the_same_certificate(backend: Backend) -> None:
    first, second = await backend.open_store(), await backend.open_store()
    assert await first.trust_mx_certificate("mx:7778", A) == A
    assert await second.trust_mx_certificate("mx:7778", B) == A


async def test_forgetting_one_or_all(store: Store) -> None:
    for address in ("mx1:7778", "mx2:7778", "mx3:7778"):
        await store.trust_mx_certificate(address, A)
    assert await store.forget_mx_certificates("mx1:7778") == 1
    assert await store.forget_mx_certificates("mx1:7778") == 0
    assert await store.trust_mx_certificate("mx1:7778", B) == B  # trusted anew
    assert await store.forget_mx_certificates() == 3
    assert await store.mx_certificates() == {}

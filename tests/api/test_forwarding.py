"""Instance-to-instance authentication of forwarded requests (the forwarding itself runs
between real processes in tests/cluster)."""

from __future__ import annotations

import pytest

from mxproxy.api.forwarding import PEER_CLOCK_SKEW, PeerAuth, cluster_key


def test_the_forwarding_key_is_derived_from_the_store_key_and_is_not_it() -> None:
    key = cluster_key("store key one")
    assert key == cluster_key("store key one") and len(key) == 32
    assert key != cluster_key("store key two") and b"store key one" not in key


def test_a_peer_signature_names_its_instance_and_checks_out() -> None:
    auth = PeerAuth(cluster_key("k"), "a")
    header = auth.sign("GET", "/calls?since=1", now=1000)
    assert PeerAuth(cluster_key("k"), "b").verify(header, "GET", "/calls?since=1", now=1001) == "a"


@pytest.mark.parametrize(
    ("method", "target", "key", "now"),
    [
        ("POST", "/calls?since=1", "k", 1000),  # another method
        ("GET", "/calls?since=2", "k", 1000),  # another target
        ("GET", "/calls?since=1", "other", 1000),  # another cluster (store key)
        ("GET", "/calls?since=1", "k", 1000 + PEER_CLOCK_SKEW + 1),  # stale
    ],
)
def test_a_forged_replayed_or_stale_peer_signature_is_refused(method: str, target: str, key: str, now: float) -> None:
    header = PeerAuth(cluster_key("k"), "a").sign("GET", "/calls?since=1", now=1000)
    assert PeerAuth(cluster_key(key), "b").verify(header, method, target, now=now) is None


@pytest.mark.parametrize("header", ["", "a;b;c", "a;1000", "a;-5;00", "a;1000;" + "0" * 64])
def test_malformed_peer_headers_are_refused(header: str) -> None:
    assert PeerAuth(cluster_key("k"), "b").verify(header, "GET", "/", now=1000) is None


async def test_the_forwarding_transport_finds_its_async_library_without_searching_for_a_module() -> None:
    # httpcore asks sniffio on every lock/event it makes per request; without sniffio installed each
    # ask is a failed import through sys.path (it tripled the forwarded hop's CPU): it must be there
    import sys

    from httpcore._synchronization import current_async_library

    assert current_async_library() == "asyncio"
    assert "sniffio" in sys.modules

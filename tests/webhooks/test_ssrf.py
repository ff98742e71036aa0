"""The SSRF guard: which URLs and addresses a webhook may reach, and ``allowNetworks``."""

from __future__ import annotations

import ipaddress

import pytest

from mxproxy.webhooks import ssrf


@pytest.mark.parametrize(("url", "kind"), [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.8.9.10:8080/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://localhost:9/hook", "loopback"),  # a name resolving to loopback
    ("http://169.254.169.254/latest/meta-data", "link-local"),  # cloud metadata
    ("http://[fe80::1]/hook", "link-local"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("https://192.168.1.10/hook", "private"),
    ("http://[fd00::5]/hook", "unique-local"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped IPv6
    ("http://100.64.0.1/hook", "non-global"),  # shared address space (CGNAT)
])
async def test_urls_reaching_internal_addresses_are_refused(url: str, kind: str) -> None:
    with pytest.raises(ssrf.UrlRefused, match=f"is a {kind} address"):
        await ssrf.check(url, ())


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.com/hook", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("https:///hook", "no host"),
    ("https://user:pw@example.com/hook", "credentials"),
    ("https://example.com:99999/hook", "not a valid URL"),
    ("https://exa mple.com/", "spaces"),
    ("https://example.com/#frag", "fragment"),
    ("", "http:// or https://"),
])
async def test_malformed_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ssrf.UrlRefused, match=message):
        await ssrf.check(url, ())


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(ssrf.UrlRefused, match="does not resolve"):
        await ssrf.check("https://no-such-host.invalid/hook", ())


@pytest.mark.parametrize(("url", "allow"), [
    ("http://127.0.0.1:8080/hook", ["127.0.0.0/8"]),
    ("http://localhost:8080/hook", ["127.0.0.0/8", "::1"]),
    ("http://10.20.1.5/hook", ["10.20.0.0/16"]),
    ("http://[::1]/hook", ["::1/128"]),
])
async def test_allowed_networks_let_internal_addresses_through(url: str, allow: list[str]) -> None:
    await ssrf.check(url, ssrf.networks(allow))


async def test_an_allowed_network_does_not_open_others() -> None:
    with pytest.raises(ssrf.UrlRefused, match="private"):
        await ssrf.check("http://10.30.0.1/hook", ssrf.networks(["10.20.0.0/16"]))


def test_public_addresses_pass() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"):
        assert ssrf.refusal(ipaddress.ip_address(address), ()) is None

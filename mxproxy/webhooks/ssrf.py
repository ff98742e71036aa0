"""The SSRF guard: a webhook URL must not reach the proxy's own host or private networks.

Checked twice: when a subscription is created or changed (every address its host resolves to),
and at every delivery by the HTTP client's resolver, on the addresses it is about to connect to
(``guarded_resolver``), so a name that later resolves elsewhere (DNS rebinding) is refused too. Refused: loopback, link-local, private (RFC 1918), shared (CGNAT),
unique-local, multicast, unspecified, reserved and documentation ranges — whatever is not a
global unicast address — unless ``[webhooks] allowNetworks`` lists a network holding it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any, Iterable
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class UrlRefused(ValueError):
    """The URL is malformed or reaches an address the guard refuses; the message says why."""


def networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def check_url(url: object) -> SplitResult:
    """Syntax only: http(s), a host, no credentials in the URL, a valid port."""
    if not isinstance(url, str) or not url.strip():
        raise UrlRefused("expected an http:// or https:// URL")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise UrlRefused("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("expected an http:// or https:// URL")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("credentials in the URL are not accepted (the signature authenticates us)")
    if port == 0:
        raise UrlRefused("port 0 is not a port")
    if parts.fragment:
        raise UrlRefused("a fragment (#…) is never sent; leave it out")
    return parts


def default_port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def refusal(address: IPAddress, allowed: tuple[IPNetwork, ...]) -> str | None:
    """Why ``address`` may not be reached, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address.version == net.version and address in net for net in allowed):
        return None
    kind = None
    if address.is_unspecified:
        kind = "unspecified"
    elif address.is_loopback:
        kind = "loopback"
    elif address.is_link_local:
        kind = "link-local"
    elif address.is_multicast:
        kind = "multicast"
    elif isinstance(address, ipaddress.IPv6Address) and address in ipaddress.IPv6Network("fc00::/7"):
        kind = "unique-local"
    elif address.is_private:
        kind = "private"
    elif not address.is_global:
        kind = "non-global"
    if kind is None:
        return None
    return f"{address} is a {kind} address (allow it with [webhooks] allowNetworks)"


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an address literal is itself)."""
    literal = host[1:-1] if host.startswith("[") else host
    try:
        return [ipaddress.ip_address(literal)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefused(f"the host {host!r} does not resolve ({exc})") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise UrlRefused(f"the host {host!r} does not resolve")
    return found


async def allowed_addresses(parts: SplitResult, allowed: tuple[IPNetwork, ...]) -> list[IPAddress]:
    """The host's addresses, all of which the guard accepts (else UrlRefused naming one)."""
    addresses = await resolve(parts.hostname or "", default_port(parts))
    for address in addresses:
        reason = refusal(address, allowed)
        if reason is not None:
            raise UrlRefused(f"{parts.hostname} resolves to {reason}" if str(address) != parts.hostname else reason)
    return addresses


async def check(url: object, allowed: tuple[IPNetwork, ...]) -> SplitResult:
    """Syntax and every resolved address (at create/patch time)."""
    parts = check_url(url)
    await allowed_addresses(parts, allowed)
    return parts




class RefusedAddress(OSError):
    """Raised inside a connection attempt: the host resolved to an address the guard refuses."""


def guarded_resolver(allowed: tuple[IPNetwork, ...]) -> Any:
    """An aiohttp resolver that resolves as usual and refuses a host with any refused address, so
    the request connects only to an address checked at that moment (no DNS rebinding between a
    check and the connect). Address literals never reach a resolver: ``literal_refusal`` first."""
    from aiohttp.resolver import ThreadedResolver

    class GuardedResolver(ThreadedResolver):
        async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> Any:
            found = await super().resolve(host, port, family)
            for item in found:
                reason = refusal(ipaddress.ip_address(str(item["host"]).split("%", 1)[0]), allowed)
                if reason is not None:
                    raise RefusedAddress(f"{host} resolves to {reason}")
            return found

    return GuardedResolver()


def literal_refusal(host: str, allowed: tuple[IPNetwork, ...]) -> str | None:
    """For a host that is an address literal: why it is refused (None: allowed, or a name)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return refusal(address, allowed)


__all__ = ["RefusedAddress", "UrlRefused", "allowed_addresses", "check", "check_url", "default_port", "guarded_resolver",
           "literal_refusal", "networks", "refusal", "resolve"]

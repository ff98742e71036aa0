"""Keeps web pages out of the admin API: DNS rebinding and cross-site form posts.

The admin API has no credentials by default (it listens on loopback), so any page a browser on
the same machine opens could otherwise reach it: a rebinding name (``evil.example`` resolving to
127.0.0.1) can read ``/tokens``, and a plain HTML form can ``POST /users`` to sign someone out
(a form needs no CORS preflight, whatever its content type). Two checks, in front of routing:

* ``Host`` must name the admin API itself: a loopback name or address, the bound address, or one
  of ``[server] adminHosts`` (any port; ``"*"`` turns the check off). A request without ``Host``
  (HTTP/1.0 tools) is not a browser's and passes.
* A state-changing request (not GET/HEAD/OPTIONS) that a browser marked as cross-site — an
  ``Origin`` other than the admin's own, or ``Sec-Fetch-Site: cross-site``/``same-site`` — is
  refused. curl and other programs send neither header and keep working unchanged.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from mxproxy.api.errors import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
CROSS_SITE_FETCHES = frozenset({"cross-site", "same-site"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def host_name(authority: str) -> str:
    """The host of a ``Host`` header or URL authority, without port or IPv6 brackets, lower case."""
    text = authority.strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else text
    if text.count(":") == 1:
        return text.split(":")[0]
    return text


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AllowedHosts:
    """The names the admin API answers to (see the module docstring)."""

    def __init__(self, bind_host: str | None, extra: Iterable[str] = ()) -> None:
        names = {host_name(h) for h in extra}
        self.any = "*" in names
        if bind_host and bind_host not in WILDCARD_HOSTS:
            names.add(host_name(bind_host if ":" not in bind_host else f"[{bind_host}]"))
        self.names = frozenset(names - {"*"})

    def __contains__(self, host: str) -> bool:
        return self.any or host in self.names or _is_loopback(host)


class BrowserGuardMiddleware:
    """403 ``{"error": …}`` for a foreign ``Host`` and for a cross-site state-changing request."""

    def __init__(self, app: ASGIApp, hosts: AllowedHosts) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.refusal(scope)
            if refusal:
                await error_response(403, refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> str | None:
        headers: dict[bytes, str] = {}
        for key, value in scope.get("headers", ()):
            if key in (b"host", b"origin", b"sec-fetch-site"):
                headers.setdefault(key, value.decode("latin-1"))
        host = headers.get(b"host")
        if host is not None and host_name(host) not in self.hosts:
            return "admin API: Host not allowed (add it to [server] adminHosts)"
        if scope.get("method", "GET") in SAFE_METHODS:
            return None
        if headers.get(b"sec-fetch-site", "").strip().lower() in CROSS_SITE_FETCHES:
            return "admin API: cross-site request refused"
        origin = headers.get(b"origin")
        if origin is not None and not self._same_origin(origin, scope, host):
            return "admin API: cross-site request refused"
        return None

    @staticmethod
    def _same_origin(origin: str, scope: Scope, host: str | None) -> bool:
        scheme, sep, authority = origin.strip().lower().partition("://")
        return bool(sep) and host is not None and scheme == scope.get("scheme", "http") \
            and authority == host.strip().lower()


__all__ = ["AllowedHosts", "BrowserGuardMiddleware", "host_name"]

"""The one trust rule of every outbound HTTPS client: APNs, FCM send, the FCM OAuth2 token
request, provisioning and the Azure JWKS fetch (docs/operations.md, "Outbound TLS").

* Trust = the system trust store (OpenSSL's default paths, so ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
  apply, as for every OpenSSL program) **plus** the configured ``caFile``, which *adds* a CA
  (a private gateway, a test server) and never replaces the system store.
* Nothing else in the environment is read: ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``,
  ``HTTP(S)_PROXY``, ``ALL_PROXY``, ``NO_PROXY`` are ignored by every client alike (``trust_env``
  off). They used to reach one client only (requests, in the FCM token refresh), which then
  disagreed with the rest; APNs' HTTP/2 connection cannot use an HTTP proxy at all.

Each library gets the same ``ssl.SSLContext`` built here: httpx (``verify=``), aiohttp
(``ssl=``), requests (an adapter) and asyncio (aioapns' ``create_connection``).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import requests
from requests.adapters import HTTPAdapter

from mxproxy.config import ConfigError


def ssl_context(ca_file: str | Path | None = None, *, key: str = "caFile",
                alpn: list[str] | None = None) -> ssl.SSLContext:
    """A verifying client context: system trust store + ``ca_file`` (if any). A CA file that
    cannot be loaded is a ``ConfigError`` naming ``key``."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{key}: cannot load {ca_file}: {exc}") from None
    if alpn:
        context.set_alpn_protocols(alpn)
    return context


def httpx_client(context: ssl.SSLContext | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client under the rule (``context`` defaults to the system store alone)."""
    return httpx.AsyncClient(verify=context or ssl_context(), trust_env=False, **kwargs)


def aiohttp_session(context: ssl.SSLContext | None = None, **connector: Any) -> aiohttp.ClientSession:
    """An aiohttp session under the rule; must be created inside the running event loop."""
    tcp = aiohttp.TCPConnector(ssl=context or ssl_context(), **connector)
    return aiohttp.ClientSession(connector=tcp, trust_env=False)


class _ContextAdapter(HTTPAdapter):
    """requests with our context: requests would load certifi's bundle into it (``verify=True``)
    or swap it for ``REQUESTS_CA_BUNDLE``; neither happens here."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(max_retries=0)

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False, **kwargs: Any) -> None:
        super().init_poolmanager(connections, maxsize, block, ssl_context=self._context, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, True, cert)  # always verify...
        conn.ca_certs = conn.ca_cert_dir = None  # ...against the context's trust store only


def requests_session(context: ssl.SSLContext | None = None) -> requests.Session:
    """A requests session under the rule (google-auth's token refresh runs on one)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = True
    adapter = _ContextAdapter(context or ssl_context())
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


__all__ = ["aiohttp_session", "httpx_client", "requests_session", "ssl_context"]

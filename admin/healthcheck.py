"""``mxproxy healthcheck``: ask a running proxy's admin API whether it is alive.

For container health checks (the slim image has no curl) and init scripts: exit status 0 when
``GET /healthz`` answers 200 within the timeout, 1 otherwise, with the reason on stderr.
"""

from __future__ import annotations

import httpx

from mxproxy.server import ALL_INTERFACES, DEFAULT_ADMIN_PORT, LOOPBACK, Listen, parse_listen


def healthz_url(admin: str | None) -> str:
    """The ``/healthz`` URL for an admin address as ``--admin``/``ADMIN`` spell it (a wildcard
    bind is reached on loopback)."""
    listen = parse_listen(admin or f"{LOOPBACK}:{DEFAULT_ADMIN_PORT}", DEFAULT_ADMIN_PORT, LOOPBACK, key="admin")
    host = {ALL_INTERFACES: LOOPBACK, "::": "::1"}.get(listen.host, listen.host)
    return Listen(host, listen.port).url() + "/healthz"


def check(admin: str | None, timeout: float = 4.0) -> tuple[bool, str]:
    """(alive, what was seen)."""
    url = healthz_url(admin)
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"{url}: {type(exc).__name__}: {exc}"
    if response.status_code != 200:
        return False, f"{url}: HTTP {response.status_code}"
    return True, f"{url}: ok"

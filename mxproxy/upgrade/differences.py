"""What an MX Proxy 2.3 configuration means differently here, said once at start.

The original's config file and environment are accepted as they are; where a value keeps working
but does something else than it did, the operator is told at start, with the docs/compat.md entry
that explains why. (A ``[voip.fcm]`` legacy server key is reported by the FCM sender itself, with
its entry P1, since only loading it tells.)
"""

from __future__ import annotations

import logging

from mxproxy.config import Config

log = logging.getLogger(__name__)


def original_differences(config: Config) -> list[str]:
    """One line per original-style setting that behaves differently here."""
    notes = []
    admin = str(config.server.admin).strip()
    if admin.isdigit():  # the original's ADMIN=8049 (its Docker default): all interfaces, no auth
        notes.append(
            f"server.admin (ADMIN) = {admin!r}: a bare port listens on 127.0.0.1:{admin} only, while MX "
            "Proxy 2.3 listened on all interfaces without authentication (docs/compat.md M1); to publish "
            "it set [server] adminToken and ADMIN=0.0.0.0:" + admin
        )
    return notes


def warn_original_differences(config: Config) -> None:
    for note in original_differences(config):
        log.warning("config: %s", note)

"""The states of a user's MX session as the manager reports them (admin API, metrics)."""

from __future__ import annotations

LIVE = "live"
RECONNECTING = "reconnecting"
FORCED_LOGOUT = "forced_logout"
NEEDS_REAUTH = "needs_reauth"
ABSENT = "absent"

"""The states of a user's MX session as the manager reports them (admin API, metrics)."""

from __future__ import annotations

LIVE = "live"
RECONNECTING = "reconnecting"
FORCED_LOGOUT = "forced_logout"
NEEDS_REAUTH = "needs_reauth"
ABSENT = "absent"

# Why this instance stopped running a user (``SessionManager.add_release_listener``); the event
# bus closes the user's subscriptions with it and SSE sends it in ``event: end``.
RELEASED_MOVED = "moved"  # the lease moved to (or lapsed for) another instance
RELEASED_SIGNED_OUT = "signed-out"  # sign-out, admin logout or drop, user deleted
RELEASED_NEEDS_REAUTH = "needs-reauth"  # the MX refused the stored password
RELEASED_SHUTDOWN = "shutdown"  # this instance stops

"""User sessions: exactly one owner task per MX login (and, in a cluster, per service).

The owner task is the only thing that decides a user's MX session is gone. It logs in, starts the
monitor (and checks it), consumes the session's events (call-info cache, recordings list, fan-out
to listeners), and reconnects with exponential backoff and jitter. It fixes the original's
connection lifecycle bugs (spec §9 items 5, 6, 13–16, 26):

* while reconnecting, ``get`` raises ``SessionUnavailable`` (503 + Retry-After), not a 401;
* ``sign_in`` during a reconnect joins the owner's next attempt instead of opening a second session;
* a different password for a live session is verified by a fresh MX login, never silently reused;
* all stored users resume concurrently at start (bounded), failures go to backoff;
* ``loginFailed`` on a reconnect marks the user ``needs_reauth`` instead of deleting them;
* a forced logout by the MX is not fought with an immediate reconnect (long delay or a new sign-in);
* ``logout`` deletes the user and their device tokens.

API handlers only borrow sessions (``get``); MX operation timeouts are their business.

Modules: ``manager`` (all users of the process), ``owner`` (one user's owner task), ``view`` (what
a request borrows), ``options``, ``states``, ``errors``; for cluster mode ``ownership`` (membership
and per-user leases with epoch fencing) and ``placement`` (rendezvous hashing). Forwarding a
request to the owning instance is HTTP, so it lives in ``mxproxy/api/forwarding.py``.
"""

from mxproxy.sessions.errors import NotSignedIn, ServedElsewhere, SessionUnavailable
from mxproxy.sessions.manager import Listener, SessionManager
from mxproxy.sessions.ownership import ClusterOptions, Ownership, Route
from mxproxy.sessions.options import DEFAULT_CALL_LOG_TTL, DEFAULT_DIRECTORY_TTL, SessionOptions, SessionStats
from mxproxy.sessions.states import ABSENT, FORCED_LOGOUT, LIVE, NEEDS_REAUTH, RECONNECTING
from mxproxy.sessions.view import CallLogCache, DirectoryCache, UserSession

__all__ = [
    "ClusterOptions", "Ownership", "Route", "ServedElsewhere",
    "ABSENT", "DEFAULT_CALL_LOG_TTL", "DEFAULT_DIRECTORY_TTL", "FORCED_LOGOUT", "LIVE", "NEEDS_REAUTH",
    "RECONNECTING", "CallLogCache", "DirectoryCache", "Listener", "NotSignedIn", "SessionManager",
    "SessionOptions", "SessionStats", "SessionUnavailable", "UserSession",
]

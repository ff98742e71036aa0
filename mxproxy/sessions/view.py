"""What an API handler borrows for one request: a view of one user's live MX session."""

from __future__ import annotations

from dataclasses import dataclass, field

from mxproxy.callcache import CallInfoCache
from mxproxy.connectors.base import CallLogEntry, Contact, LoginInfo, MXSession
from mxproxy.fetch_cache import KeyedSharedFetch, SharedFetch
from mxproxy.recordings import RecordingList

CALL_LOG_KEYS = 4  # distinct ``since`` values cached per user (apps ask for "all" or "since X")

DirectoryCache = SharedFetch[list[Contact]]
CallLogCache = KeyedSharedFetch[int | None, list[CallLogEntry]]


@dataclass
class UserSession:
    """What an API handler borrows for one request: the live MX session of one user.

    A new view is handed out by every ``get``; ``mx`` stays the session that was live then (if it
    dies mid-request its calls raise the connector's errors). ``calls`` and ``recordings`` belong
    to the user and survive reconnects."""

    login: str
    info: LoginInfo
    mx: MXSession
    calls: CallInfoCache
    recordings: RecordingList
    directory_cache: DirectoryCache = field(repr=False)
    call_log_cache: CallLogCache = field(repr=False)

    async def directory(self) -> list[Contact]:
        """The MX address book, from the per-MX cache (one fetch for concurrent misses), kept
        until an address-book change event of that MX (``AddressBookChanged``) or the TTL."""
        return await self.directory_cache.get(self.mx.directory)

    async def call_log(self, since: int | None = None) -> list[CallLogEntry]:
        """The user's call log (records after ``since``), from the per-user cache: one MX query
        for concurrent requests, kept until a call ends, the session reconnects or the TTL."""
        mx = self.mx
        return await self.call_log_cache.get(since, lambda: mx.call_log(since))

    def call_log_changed(self) -> None:
        """An API operation ended a call leg: the next ``call_log`` asks the MX again (the
        ``ConnectionCleared`` event may still be on its way to the owner)."""
        self.call_log_cache.invalidate()

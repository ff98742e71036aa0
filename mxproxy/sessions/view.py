"""What an API handler borrows for one request: a view of one user's live MX session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from mxproxy.callcache import CallInfoCache
from mxproxy.connectors.base import CallLogEntry, Contact, LoginInfo, MXSession
from mxproxy.fetch_cache import KeyedSharedFetch, SharedFetch
from mxproxy.recordings import RecordingList

CALL_LOG_KEYS = 4  # distinct ``since`` values cached per user (apps ask for "all" or "since X")

DirectoryCache = SharedFetch[list[Contact]]
CallLogCache = KeyedSharedFetch[int | None, list[CallLogEntry]]
R = TypeVar("R")


@dataclass
class UserSession:
    """What an API handler borrows for one request: the live MX session of one user.

    Handlers must not change it (``get`` hands the same view out again while the MX session is the
    same); ``mx`` stays the session that was live then (if it dies mid-request its calls raise the
    connector's errors). ``calls`` and ``recordings`` belong
    to the user and survive reconnects."""

    login: str
    info: LoginInfo
    mx: MXSession
    calls: CallInfoCache
    recordings: RecordingList
    directory_cache: DirectoryCache = field(repr=False)
    call_log_cache: CallLogCache = field(repr=False)
    # what the API rendered from this view (the GET /auth answer), reused while the view is
    rendered: dict[str, Any] = field(default_factory=dict, repr=False)

    async def directory(self) -> list[Contact]:
        """The MX address book, from the per-MX cache (one fetch for concurrent misses), kept
        until an address-book change event of that MX (``AddressBookChanged``) or the TTL."""
        return await self.directory_cache.get(self.mx.directory)

    async def call_log(self, since: int | None = None) -> list[CallLogEntry]:
        """The user's call log (records after ``since``), from the per-user cache: one MX query
        for concurrent requests, kept until a call ends, the session reconnects or the TTL."""
        mx = self.mx
        return await self.call_log_cache.get(since, lambda: mx.call_log(since))

    async def directory_as(self, render: Callable[[list[Contact]], R]) -> R:
        """``render(directory)``, computed once per cached directory and dropped with it (the
        pre-rendered ``GET /contacts`` answer); ``render`` must not change the list."""
        return await self.directory_cache.get_derived(self.mx.directory, render)

    async def call_log_as(self, since: int | None, render: Callable[[list[CallLogEntry]], R]) -> R:
        """``render(call_log(since))``, computed once per cached log and dropped with it."""
        mx = self.mx
        return await self.call_log_cache.get_derived(since, lambda: mx.call_log(since), render)

    def call_log_changed(self) -> None:
        """An API operation ended a call leg: the next ``call_log`` asks the MX again (the
        ``ConnectionCleared`` event may still be on its way to the owner)."""
        self.call_log_cache.invalidate()

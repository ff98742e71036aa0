"""The subscriptions as the outbox writer matches events against them: an in-memory copy of the
store's ``webhooks`` table, reloaded after every admin change here and every few seconds (an
admin change made on another instance of a cluster)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from mxproxy.webhooks.signer import Signer

if TYPE_CHECKING:
    from mxproxy.store.outbox import WebhookRecord


def type_filter(patterns: tuple[str, ...] | list[str]) -> Callable[[str], bool]:
    """The events package's TypeFilter over a webhook's ``events`` (ValueError on unknown names)."""
    from mxproxy.events.filters import TypeFilter

    return TypeFilter.parse(",".join(patterns))


@dataclass(frozen=True)
class Subscription:
    record: "WebhookRecord"
    accepts: Callable[[str], bool]
    users: frozenset[str] | None  # casefolded; None: every user
    signer: Signer

    @property
    def id(self) -> str:
        return self.record.id

    def matches(self, user: str, event_type: str) -> bool:
        return self.record.enabled and self.accepts(event_type) and (
            self.users is None or user.casefold() in self.users)


def subscription(record: "WebhookRecord") -> Subscription:
    users = None if record.users is None else frozenset(u.casefold() for u in record.users)
    return Subscription(record=record, accepts=type_filter(record.events), users=users, signer=Signer(record.secret))


class Subscriptions:
    def __init__(self, store: Any) -> None:
        self._store = store
        self._by_id: dict[str, Subscription] = {}
        self._enabled: tuple[Subscription, ...] = ()

    async def load(self) -> None:
        records = await self._store.list_webhooks()
        found: dict[str, Subscription] = {}
        for record in records:
            old = self._by_id.get(record.id)
            found[record.id] = old if old is not None and old.record == record else subscription(record)
        self._by_id = found
        self._enabled = tuple(s for s in found.values() if s.record.enabled)

    def get(self, webhook_id: str) -> Subscription | None:
        return self._by_id.get(webhook_id)

    def matching(self, user: str, event_type: str) -> list[Subscription]:
        return [s for s in self._enabled if s.matches(user, event_type)]

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def disabled(self) -> int:
        return sum(1 for s in self._by_id.values() if not s.record.enabled)

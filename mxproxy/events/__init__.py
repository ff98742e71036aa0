"""The stable event model above the raw MX events (issue 13, docs/events.md).

``normalize`` turns each user's connector events into ``call.*``, ``voicemail.*``,
``presence.changed`` and ``contacts.changed`` events (one per real transition), ``bus`` numbers
them per user, keeps a bounded history for replay and hands them to subscribers (the SSE stream
and the webhook outbox). Nothing here talks HTTP or CSTA.
"""

from mxproxy.events.bus import EventBus, Subscription
from mxproxy.events.filters import TypeFilter
from mxproxy.events.model import EVENT_TYPES, Event

__all__ = ["EVENT_TYPES", "Event", "EventBus", "Subscription", "TypeFilter"]

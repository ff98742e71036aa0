"""Per-user list of call recordings announced by the MX (``GET /voicemails?media=Recording``).

The MX has no list command for recordings the proxy could use, so, like the original, we remember
the ``MailIncomingReady`` events with ``mediaType=Recording``. Unlike the original the list belongs
to the user's owner task and so survives a reconnect (it is still lost on restart). It is bounded.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

from mxproxy.connectors.base import MailIncomingReady, Voicemail

RECORDING_MEDIA = "Recording"
MAX_RECORDINGS = 500


def recording_from_event(event: MailIncomingReady) -> Voicemail:
    return Voicemail(
        mail_id=event.mail_id,
        media_type=event.media_type or RECORDING_MEDIA,
        sender=event.sender,
        from_name=event.from_name,
        caller_name=event.caller_name,
        to=event.to,
        owner_type=event.owner_type,
        owner_id=event.owner_id,
        received=event.received,
        duration=event.duration,
        read=event.read,
        note=event.note,
    )


class RecordingList:
    def __init__(self, limit: int = MAX_RECORDINGS) -> None:
        self.limit = limit
        self._items: OrderedDict[str, Voicemail] = OrderedDict()

    def observe(self, event: object) -> None:
        if isinstance(event, MailIncomingReady) and event.media_type == RECORDING_MEDIA and event.mail_id:
            self.add(recording_from_event(event))

    def add(self, item: Voicemail) -> None:
        self._items.pop(item.mail_id, None)
        self._items[item.mail_id] = item
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    def list(self) -> list[Voicemail]:
        """Oldest first by ``received`` (the order the API returns)."""
        return sorted(self._items.values(), key=lambda v: v.received)

    def get(self, mail_id: str) -> Voicemail | None:
        return self._items.get(mail_id)

    def update(self, mail_id: str, read: bool | None = None, note: str | None = None) -> Voicemail | None:
        item = self._items.get(mail_id)
        if item is None:
            return None
        changes: dict[str, object] = {}
        if read is not None:
            changes["read"] = read
        if note is not None:
            changes["note"] = note
        item = dataclasses.replace(item, **changes)
        self._items[mail_id] = item
        return item

    def remove(self, mail_id: str) -> bool:
        return self._items.pop(mail_id, None) is not None

    def __len__(self) -> int:
        return len(self._items)

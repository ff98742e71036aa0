"""Which push destinations are configured, so the API can validate token registrations.

The push senders know the real set (APNs topics come out of certificates or .p8 settings, FCM app
ids out of ``[voip.fcm]``); the API only needs yes/no answers, so this tiny value object is what
crosses the boundary instead of the senders themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

# APNs device tokens are hex (32 bytes today; Apple says the length may grow). FCM registration
# tokens are URL-safe base64-ish with ':' separators. The original only checked length >= 20.
_TOKEN_SHAPES = {
    "apn": re.compile(r"[0-9A-Fa-f]{20,512}"),
    "fcm": re.compile(r"[A-Za-z0-9_:\-.]{20,4096}"),
}


def token_shape_ok(kind: str, token: str) -> bool:
    """Whether ``token`` looks like a device token of that kind (API registrations and imports)."""
    pattern = _TOKEN_SHAPES.get(kind)
    return pattern is not None and pattern.fullmatch(token) is not None


@dataclass(frozen=True)
class PushTopics:
    """``apn`` holds ``(topic, sandbox)`` pairs; ``fcm`` holds FCM application ids."""

    apn: frozenset[tuple[str, bool]] = frozenset()
    fcm: frozenset[str] = frozenset()

    @classmethod
    def of(cls, apn: Iterable[tuple[str, bool]] = (), fcm: Iterable[str] = ()) -> "PushTopics":
        return cls(apn=frozenset((str(t), bool(s)) for t, s in apn), fcm=frozenset(fcm))

    def apn_ok(self, topic: str, sandbox: bool) -> bool:
        """True when an APNs sender for ``topic`` in that environment (sandbox or production) exists."""
        return (topic, sandbox) in self.apn

    def fcm_ok(self, app_id: str) -> bool:
        return app_id in self.fcm

"""Rendezvous (highest random weight) placement of users over the live instances.

Every instance computes the same owner from the same member list without talking to the others,
users spread evenly, and a joining or leaving instance moves only its own share (1/N).
"""

from __future__ import annotations

import hashlib
from typing import Iterable


def weight(login: str, instance_id: str) -> int:
    digest = hashlib.blake2b(f"{instance_id}\0{login}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner_of(login: str, instances: Iterable[str]) -> str | None:
    """The instance ``login`` belongs on; None when there is no live instance."""
    best: str | None = None
    best_weight = -1
    for instance_id in instances:
        w = weight(login, instance_id)
        if w > best_weight or (w == best_weight and best is not None and instance_id < best):
            best, best_weight = instance_id, w
    return best

"""Full garbage collections held off while a burst of MX logins runs (start-up resume, takeover).

Why: each login leaves a few hundred live objects (TLS, streams, owner caches). CPython starts a
full (generation 2) collection whenever the objects that survived young collections grew by a
quarter since the last one, so while 10,000 users resume it walks the growing heap of sessions
again and again — 14 full collections, 2.2 s of a 10 s resume (docs/benchmarks.md), and none of
them finds garbage: the sessions are alive. Young collections (generations 0 and 1) still run,
so cyclic garbage of short-lived objects (a failed attempt's exception and frames) is still
collected; older cyclic garbage waits for the end of the hold, which is bounded in time
(``HOLD_LIMIT``) so an MX that times every login out cannot make it grow for long.

Holds nest (a takeover during the start-up resume); the thresholds in force before the first
one come back when the last one ends, and the sessions the burst made are frozen then
(mxproxy/heap.py): they live on, and without it the first full collection after the hold would
walk them all once.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Callable

from mxproxy.heap import freeze_survivors

__all__ = ["hold_full_collections", "HOLD_LIMIT", "held"]

#: The longest one hold keeps full collections off, in seconds.
HOLD_LIMIT = 60.0
#: Generation-2 threshold while held: full collections only after this many generation-1 ones
#: (~7 billion allocations at the default thresholds: never, within ``HOLD_LIMIT``).
HELD_THRESHOLD = 1_000_000

_holds = 0
_saved: tuple[int, int, int] | None = None


def held() -> bool:
    """Whether full collections are held off now."""
    return _holds > 0


def hold_full_collections(limit: float = HOLD_LIMIT) -> Callable[[], None]:
    """Hold full collections off until the returned release is called (once; later calls do
    nothing) or ``limit`` seconds passed, whichever is first. Needs a running event loop."""
    global _holds, _saved
    if _holds == 0:
        _saved = gc.get_threshold()
        gc.set_threshold(_saved[0], _saved[1], HELD_THRESHOLD)
    _holds += 1
    released = False

    def release() -> None:
        global _holds, _saved
        nonlocal released
        if released:
            return
        released = True
        timer.cancel()
        _holds -= 1
        if _holds == 0 and _saved is not None:
            freeze_survivors()
            gc.set_threshold(*_saved)
            _saved = None

    timer = asyncio.get_running_loop().call_later(limit, release)
    return release

"""Call-log completion: deciding when the ``callloginfo`` stream is over (spec §4.3, §9.1).

The MX answers ``<iq type="get" id="calllog">`` with ``callloginfo`` events on invoke id 9999,
each holding up to 21 ``callinfo`` records, and **no end marker**. MX Proxy 2.3 stopped on a chunk
of fewer than 21 records, so a log whose size is a multiple of 21 cost a full 7-second stall.

Decision (also in docs/architecture.md, "Call-log completion"):

1. A chunk with fewer than ``chunk_size`` records (``mx.callLogChunk``, default 21) ends the
   log at once. That includes an empty ``<callloginfo/>``, which is what an empty log, or a
   server that does send a trailing marker, produces.
2. After a *full* chunk we wait only ``idle`` seconds (``mx.callLogIdle``, default 1 s) for the
   next one. The MX sends a log's chunks back to back (they are produced by one query), so a gap
   of that length after a full chunk means the log ended on a chunk boundary.
3. Before the first chunk we wait the normal response timeout; if nothing comes at all the log
   is empty (the 2017 MX Proxy code saw servers that send nothing for an empty log), logged.

Rejected: a *trailing marker command* (e.g. ``GetServiceList`` written right after the
``calllog`` request, taking its direct response as proof that every chunk was sent). It would be
exact and instant **if** the MX emitted the whole log before it processed the next command. No
source shows that: the chunks are events (id 9999), not responses, and an MX that builds the log
asynchronously (database query, multi-site) would answer the marker first, and the client would
then silently return a truncated log. A wrong "done" loses data; a 1-second idle gap only costs
time, and only for logs that end exactly on a chunk boundary. Robustness wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CallLogCompletion"]


@dataclass
class CallLogCompletion:
    """Feed it each chunk's size; it says whether the log is complete and how long to wait."""

    chunk_size: int = 21
    idle: float = 1.0
    first_timeout: float = 7.0
    chunks: int = 0
    records: int = 0
    done: bool = False
    ended_by: str = field(default="")  # "short-chunk" | "idle-gap" | "no-reply"

    def add(self, count: int) -> bool:
        """Record a chunk of ``count`` records; True when the log is complete."""
        self.chunks += 1
        self.records += count
        if count < self.chunk_size:
            self.done, self.ended_by = True, "short-chunk"
        return self.done

    def wait_time(self) -> float:
        """Seconds to wait for the next chunk."""
        return self.first_timeout if self.chunks == 0 else self.idle

    def timed_out(self) -> None:
        """No chunk arrived within ``wait_time()``: the log is complete as it stands."""
        self.done = True
        self.ended_by = "no-reply" if self.chunks == 0 else "idle-gap"

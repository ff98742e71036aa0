"""Ports for a process that binds them later (a child ``mxproxy serve``, a receiver restarted on
the same port).

``bind(("127.0.0.1", 0))`` hands out a port from Linux's ephemeral range (32768–60999), the range
every outgoing connection of every process takes its local port from too: between our probe and
the later bind, another test's connection (or a parallel xdist worker's probe) may take it, and
the test fails with "address already in use". These ports come from below that range, from a
band of their own per xdist worker, and are never handed out twice by one process.
"""

from __future__ import annotations

import os
import random
import socket

FIRST = 20000  # below /proc/sys/net/ipv4/ip_local_port_range's default start (32768)
BAND = 1500  # ports per xdist worker; 8 bands fit below 32768
_handed_out: set[int] = set()


def unused_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    base = FIRST + (int(worker) % 8 if worker.isdigit() else 0) * BAND
    for _ in range(1000):
        port = base + random.randrange(BAND)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no unused port in {base}-{base + BAND - 1}")

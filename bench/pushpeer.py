"""The far side of ``bench/push.py`` in its own process: the MX simulator plus the local APNs and
FCM servers of ``tests/push``, timestamping both ends of every push.

    python bench/pushpeer.py --dir TMPDIR --users 400

* Writes the test PKI into ``--dir`` (CA, APNs server certificate, push certificate ``phone.p12``
  with password ``secret``, Firebase service account ``service-account.json``), starts the three
  servers on 127.0.0.1 and prints one line ``READY {"sim": port, "apns": port, "fcm": port, ...}``.
* Send time: ``time.monotonic_ns()`` when the simulator builds a ``DeliveredEvent`` frame (it is
  written to the socket right after), keyed by call id. Arrival time: ``monotonic_ns()`` when the
  local APNs has the whole request (end of stream) / when the local FCM handler has the body.
  CLOCK_MONOTONIC is system-wide on Linux, so the proxy process could read the same clock.
* A push is *cold* when it is the first request on its provider connection (APNs: the server's
  connection number; FCM: the client's TCP port).

Then it answers JSON commands, one per stdin line, with one JSON line each (see ``Peer.handle``),
and exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mxproxy.simulator import Fixture, Quirks, SimUser, Simulator  # noqa: E402
from mxproxy.simulator import messages as sim_messages  # noqa: E402
from mxproxy.localpush.apns import LocalAPNs  # noqa: E402
from mxproxy.localpush.pki import make_ca, make_push_p12, make_server_cert, make_service_account  # noqa: E402
from mxproxy.localpush.fcm import LocalFCM  # noqa: E402

BUNDLE = "com.example.phone"
FCM_APP = "com.example.phone"
FCM_PROJECT = "mx-bench"
P12_PASSWORD = "secret"

APNS, FCM = 0, 1


class Recorder:
    """Send and arrival times. ``arrivals`` rows: (provider, call id, arrival ns, cold)."""

    def __init__(self) -> None:
        self.sent: dict[int, int] = {}
        self.arrivals: list[tuple[int, int, int, bool]] = []
        self.other = [0, 0]  # requests without a call id (the baselines), per provider
        self.last_other = [0, 0]  # arrival ns of the latest of those
        self._apns_connections: set[int] = set()
        self._fcm_ports: set[int] = set()

    def delivered_frame(self, call_id: int) -> None:
        self.sent[call_id] = time.monotonic_ns()

    def apns(self, body: bytes, connection: int) -> None:
        now = time.monotonic_ns()
        cold = connection not in self._apns_connections
        if cold:
            self._apns_connections.add(connection)
        call_id = _call_id(body)
        if call_id is None:
            self.other[APNS] += 1
            self.last_other[APNS] = now
        else:
            self.arrivals.append((APNS, call_id, now, cold))

    def fcm(self, body: bytes, port: int) -> None:
        now = time.monotonic_ns()
        cold = port not in self._fcm_ports
        if cold:
            self._fcm_ports.add(port)
        call_id = None
        try:
            value = json.loads(body)["message"]["data"].get("callId")
            call_id = int(value) if value is not None else None
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
        if call_id is None:
            self.other[FCM] += 1
            self.last_other[FCM] = now
        else:
            self.arrivals.append((FCM, call_id, now, cold))


def _call_id(body: bytes) -> int | None:
    try:
        value = json.loads(body).get("callId")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


class _TimedRequests(list):
    """Stands in for ``LocalAPNs.requests``: records the arrival instead of keeping the request."""

    def __init__(self, recorder: Recorder) -> None:
        super().__init__()
        self.recorder = recorder

    def append(self, request: Any) -> None:  # type: ignore[override]
        self.recorder.apns(request.body, request.connection)


class _Discard(list):
    def append(self, item: Any) -> None:  # type: ignore[override]
        pass


class TimedFCM(LocalFCM):
    """LocalFCM that timestamps each send request (body read) before answering it as usual."""

    recorder: Recorder
    delay: float = 0.0  # seconds before answering a send: an Internet round trip to Google

    async def _send(self, request):  # type: ignore[no-untyped-def, override]
        body = await request.body()  # cached by Starlette: the parent handler reads it again
        self.recorder.fcm(body, request.client.port if request.client else 0)
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super()._send(request)

    def drop_connections(self) -> int:
        connections = list(self._server.server_state.connections) if self._server else []
        for protocol in connections:
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transport.close()
        return len(connections)


def timed_simulator_messages(recorder: Recorder) -> None:
    """Stamp each DeliveredEvent frame as the simulator builds it (it is written right after)."""
    original = sim_messages.delivered

    def delivered(cross_ref: int, call_id: int, *args: Any, **kwargs: Any) -> str:
        xml = original(cross_ref, call_id, *args, **kwargs)
        recorder.delivered_frame(call_id)
        return xml

    sim_messages.delivered = delivered  # type: ignore[assignment]


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Peer:
    def __init__(self, directory: Path, users: int) -> None:
        self.dir = directory
        self.users = users
        self.recorder = Recorder()
        self.sim: Simulator | None = None
        self.apns: LocalAPNs | None = None
        self.fcm: TimedFCM | None = None

    async def start(self) -> dict[str, Any]:
        ca = make_ca()
        ca_file = ca.write(self.dir / "ca.pem")
        cert, key = make_server_cert(ca, self.dir)
        make_push_p12(ca, self.dir / "phone.p12", BUNDLE, password=P12_PASSWORD)

        self.apns = LocalAPNs(str(cert), str(key), client_ca=str(ca_file))
        self.apns.requests = _TimedRequests(self.recorder)
        await self.apns.start()

        self.fcm = TimedFCM()
        self.fcm.recorder = self.recorder
        self.fcm.sends = _Discard()
        self.fcm.reserve_port()
        sa_key = make_service_account(self.dir / "service-account.json", self.fcm.token_uri, FCM_PROJECT)
        self.fcm.public_keys[f"push@{FCM_PROJECT}.iam.gserviceaccount.com"] = sa_key.public_key()
        await self.fcm.start()

        timed_simulator_messages(self.recorder)
        fixture = Fixture(users=[SimUser(login="bench", password="bench-pw", ext="201", jid=1001, first_name="Bench")])
        fixture.add_users(self.users, password="pw")
        self.sim = Simulator(fixture, host="127.0.0.1", port=0, quirks=Quirks(presence_after_login=False))
        await self.sim.start()
        return {"sim": self.sim.port, "apns": self.apns.port, "fcm": self.fcm.port, "fcmSendURL": self.fcm.send_url,
                "bundle": BUNDLE, "fcmApp": FCM_APP, "p12Password": P12_PASSWORD, "pid": os.getpid()}

    async def stop(self) -> None:
        if self.sim is not None:
            await self.sim.stop()
        if self.apns is not None:
            await self.apns.stop()
        if self.fcm is not None:
            await self.fcm.stop()

    # commands ----------------------------------------------------------------------------------
    async def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd.get("op")
        if op == "inject":
            return await self.inject(cmd["exts"], float(cmd["rate"]), int(cmd["count"]))
        if op == "fcm_delay":
            assert self.fcm is not None
            self.fcm.delay = float(cmd["seconds"])
            return {}
        if op == "drop":
            return self.drop()
        if op == "counts":
            return {"arrivals": len(self.recorder.arrivals), "other": self.recorder.other,
                    "lastOther": self.recorder.last_other, "now": time.monotonic_ns()}
        if op == "report":
            return self.report(int(cmd["first"]), int(cmd["last"]))
        raise ValueError(f"unknown op {op!r}")

    async def inject(self, exts: list[str], rate: float, count: int) -> dict[str, Any]:
        """``count`` incoming calls to ``exts`` round robin, paced at ``rate`` per second
        (``rate`` 0: as fast as the simulator goes). Returns the call id range."""
        assert self.sim is not None
        loop = asyncio.get_running_loop()
        start = loop.time()
        first = last = 0
        n = 0
        while n < count:
            due = count if rate <= 0 else min(count, int((loop.time() - start) * rate) + 1)
            while n < due:
                call_id = await self.sim.incoming_call(exts[n % len(exts)], "+15125550100", "Bench Caller")
                first = first or call_id
                last = call_id
                n += 1
                if rate <= 0 and n % 50 == 0:
                    break
            await asyncio.sleep(0.002 if rate > 0 else 0)
        injected = loop.time() - start
        await asyncio.sleep(0.05)  # the simulator sends events after its event gap (10 ms)
        return {"first": first, "last": last, "count": count, "seconds": injected}

    def drop(self) -> dict[str, Any]:
        assert self.apns is not None and self.fcm is not None
        apns = len(self.apns._transports)
        for transport in list(self.apns._transports):
            transport.close()
        return {"apns": apns, "fcm": self.fcm.drop_connections()}

    def report(self, first: int, last: int) -> dict[str, Any]:
        """Latencies (µs) of the pushes for call ids first..last, per provider and warm/cold, the
        span of their send and arrival times, and pushes missing a send stamp."""
        sent = self.recorder.sent
        out: dict[str, Any] = {}
        for provider, name in ((APNS, "apns"), (FCM, "fcm")):
            warm: list[int] = []
            cold: list[int] = []
            arrivals: list[int] = []
            unknown = 0
            for p, call_id, at, is_cold in self.recorder.arrivals:
                if p != provider or not first <= call_id <= last:
                    continue
                stamp = sent.get(call_id)
                if stamp is None:
                    unknown += 1
                    continue
                (cold if is_cold else warm).append((at - stamp) // 1000)
                arrivals.append(at)
            out[name] = {"warm": warm, "cold": cold, "unknown": unknown,
                         "firstArrival": min(arrivals, default=0), "lastArrival": max(arrivals, default=0)}
        stamps = [sent[c] for c in range(first, last + 1) if c in sent]
        out["firstSent"] = min(stamps, default=0)
        out["lastSent"] = max(stamps, default=0)
        out["sent"] = len(stamps)
        return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--cpus", default="", help="comma-separated CPU numbers to pin this process to")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    raise_nofile()
    peer = Peer(args.dir, args.users)
    ready = await peer.start()
    print("READY " + json.dumps(ready), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            try:
                answer = await peer.handle(json.loads(line))
            except Exception as exc:  # noqa: BLE001 - report to the parent, keep serving
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        await peer.stop()


if __name__ == "__main__":
    asyncio.run(main())

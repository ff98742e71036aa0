"""An MX server that speaks Zultys CSTA over TLS: the peer of the test suite, the demo's backend
and the benchmarks' target. See docs/simulator.md."""

from mxproxy.simulator.fixture import (
    CallLogEntry,
    Conference,
    ConfServerInfo,
    DirectoryEntry,
    Fixture,
    FixtureError,
    MailItem,
    Person,
    Service,
    SimUser,
    demo_fixture,
    load_fixture,
)
from mxproxy.simulator.quirks import QuirkError, Quirks
from mxproxy.simulator.server import Simulator, SimulatorError
from mxproxy.simulator.session import SessionInfo, password_hash

__all__ = [
    "Simulator", "SimulatorError", "Fixture", "FixtureError", "SimUser", "DirectoryEntry", "Person", "Service",
    "CallLogEntry", "MailItem", "Conference", "ConfServerInfo", "Quirks", "QuirkError", "SessionInfo",
    "load_fixture", "demo_fixture", "password_hash",
]

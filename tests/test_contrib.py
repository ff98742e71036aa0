"""``contrib/``: the systemd unit is valid (``systemd-analyze verify`` where it exists) and runs
``mxproxy serve`` the way docs/operations.md says."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[1] / "contrib" / "systemd" / "mxproxy.service"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_runs_serve_unprivileged_and_does_not_restart_on_a_config_error() -> None:
    unit = _unit()
    service = unit["Service"]
    argv = service["ExecStart"].split()
    assert argv[0].endswith("/mxproxy") and argv[1] == "serve" and "--config" in argv
    assert service["User"] not in ("", "root") and service["NoNewPrivileges"] == "yes"
    assert service["RestartPreventExitStatus"] == "2"  # exit 2 = config error (docs/operations.md)
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) > 10 + 15
    assert service["Environment"].startswith("DB=/var/lib/mxproxy/") and service["StateDirectory"] == "mxproxy"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify checks that ExecStart's binary exists: point it at this checkout's mxproxy
    mxproxy = Path(sys.executable).parent / "mxproxy"
    assert mxproxy.exists()
    unit = tmp_path / "mxproxy.service"
    unit.write_text(UNIT.read_text().replace("/opt/mxproxy/.venv/bin/mxproxy", str(mxproxy)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # unknown or misspelt keys are only warnings: any line about our file is a failure
    assert str(unit) not in proc.stderr + proc.stdout, proc.stderr

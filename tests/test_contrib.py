"""``contrib/``: the systemd unit is valid (``systemd-analyze verify`` where it exists) and runs
``mxproxy serve`` the way docs/operations.md says."""

from __future__ import annotations

import configparser
import os
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


# -- several instances: the systemd template and the nginx upstream -------------------------------

TEMPLATE = UNIT.with_name("mxproxy@.service")
NGINX = UNIT.parents[1] / "nginx" / "mxproxy-cluster.conf"


def _template() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(TEMPLATE.read_text())
    return parser


def _instance_environment(number: str) -> dict[str, str]:
    """The template's ``Environment=`` for instance ``number``, specifiers expanded as systemd does."""
    import socket

    line = _template()["Service"]["Environment"].replace("%i", number).replace("%H", socket.gethostname())
    return dict(item.split("=", 1) for item in line.split())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_an_instance_of_the_template(tmp_path: Path) -> None:
    mxproxy = Path(sys.executable).parent / "mxproxy"
    unit = tmp_path / "mxproxy@01.service"
    unit.write_text(TEMPLATE.read_text().replace("/opt/mxproxy/.venv/bin/mxproxy", str(mxproxy)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert str(unit) not in proc.stderr + proc.stdout, proc.stderr


def test_the_template_gives_each_instance_its_own_ports_and_id_and_shares_the_store() -> None:
    unit = _template()
    service = unit["Service"]
    assert service["EnvironmentFile"] == "/etc/mxproxy/cluster.env"  # DB and MXPROXY_STORE_KEY, shared
    assert service["ExecStart"] == _unit()["Service"]["ExecStart"]
    assert service["RestartPreventExitStatus"] == "2" and service["User"] == "mxproxy"
    one, two = _instance_environment("01"), _instance_environment("02")
    assert one["PORT"] == "127.0.0.1:8001" and one["ADMIN"] == "127.0.0.1:8101"
    assert len({one["PORT"], one["ADMIN"], two["PORT"], two["ADMIN"]}) == 4
    assert one["INSTANCE_ID"] != two["INSTANCE_ID"]
    # the handover (leaseTTL 15 s) + requests (10 s) + MX logouts (15 s) fit in the stop timeout
    assert int(service["TimeoutStopSec"]) >= 15 + 10 + 15
    # hardened like the single unit
    single = _unit()["Service"]
    for key in ("NoNewPrivileges", "ProtectSystem", "RestrictAddressFamilies", "CapabilityBoundingSet"):
        assert service[key] == single[key], key


def test_the_nginx_upstream_lists_the_templates_first_instances_and_streams() -> None:
    text = NGINX.read_text()
    for number in ("01", "02"):
        assert f"server {_instance_environment(number)['PORT']} " in text
    assert "proxy_buffering off;" in text and "proxy_next_upstream error timeout;" in text


def _nginx() -> str | None:
    return os.environ.get("NGINX") or shutil.which("nginx")


@pytest.mark.skipif(_nginx() is None, reason="nginx not installed (set NGINX=/path/to/nginx)")
def test_nginx_accepts_the_upstream_snippet(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {NGINX};
}}
""")
    proc = subprocess.run([_nginx(), "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr

"""``mxproxy demo``: the MX simulator and the proxy in one process, on the README's demo data.

It exists so that someone can try the whole thing in a minute: it starts the simulator with the
demo fixture, points a proxy at it through a static provisioning table (the README's account
``dmitrys@xyzrd.com`` / ``78561`` and client ``client7664``), and prints curl commands that work
as pasted. The printed commands are built from the same ``DemoRequest`` objects the tests execute.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import shlex
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mxproxy import runtime
from mxproxy.config import ConfigError

log = logging.getLogger("mxproxy.demo")

DEMO_CLIENT_ID = "client7664"
DEMO_CLIENT_SECRET = "Mmx0OlWEDIDhPGgGpLQFxBwpCSPp9IIY"
DEMO_USERNAME = "dmitrys@xyzrd.com"
DEMO_PASSWORD = "78561"
DEMO_EXT = "3095"  # Dmitry Sedykh, the README's signed-in user
DEMO_APN_TOPIC = "com.connector73.vialer.voip"
DEMO_APN_TOKEN = "7C179108B7BF759DED2D9CBED7969DE6623D34E200E46387E7D713917E0F3EB8"
TOKEN_VAR = "$TOKEN"


@dataclass(frozen=True)
class DemoRequest:
    """One printed curl command, in a form a test can execute with httpx."""

    title: str
    method: str
    url: str  # may contain $TOKEN-free URLs only; the bearer goes in headers
    headers: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] | None = None  # application/x-www-form-urlencoded body, sent as is
    body: str | None = None  # raw body (with a Content-Type header)
    output: str | None = None  # curl -o FILE
    capture_token: bool = False  # the sign-in: prints TOKEN=$(...) so later commands can use it

    def curl(self) -> str:
        parts = ["curl", "-sS"]
        if self.method != ("POST" if (self.form is not None or self.body is not None) else "GET"):
            parts += ["-X", self.method]
        for name, value in self.headers.items():
            header = f"{name}: {value}"
            # keep $TOKEN expandable by the shell, quote everything else
            parts.append("-H")
            parts.append(f'"{header}"' if TOKEN_VAR in header else shlex.quote(header))
        if self.form is not None:
            parts += ["--data-raw", shlex.quote("&".join(f"{k}={v}" for k, v in self.form.items()))]
        if self.body is not None:
            parts += ["--data-raw", shlex.quote(self.body)]
        if self.output:
            parts += ["-o", shlex.quote(self.output)]
        parts.append(shlex.quote(self.url))
        command = " ".join(parts)
        if self.capture_token:
            extract = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
            return f"TOKEN=$({command} | {extract}); echo $TOKEN"
        return command


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


BEARER = {"Authorization": f"Bearer {TOKEN_VAR}"}


# --------------------------------------------------------------------------------------------
# configuration of the proxy for the demo fixture


def _attr(obj: Any, *names: str, default: Any = None) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value not in (None, ""):
            return value
    return default


def sign_in_name(user: Any) -> str:
    """The name the app types: the user's e-mail when the fixture has one (the README's form)."""
    return str(_attr(user, "email", "login"))


def _readme_user(fixture: Any) -> Any:
    """The fixture's user behind ``dmitrys@xyzrd.com``: by e-mail, else the README's Dmitry Sedykh
    (ext 3095), else login ``dmitrys``."""
    candidates = [u for u in fixture.users if _attr(u, "login") and _attr(u, "password")]
    for user in candidates:
        if sign_in_name(user).casefold() == DEMO_USERNAME:
            return user
    for user in candidates:
        if str(_attr(user, "ext")) == DEMO_EXT:
            return user
    for user in candidates:
        if str(user.login).casefold() == DEMO_USERNAME.split("@")[0]:
            return user
    return candidates[0] if candidates else None


#: scrypt cost of the demo's sign-in password hashes: cheap (the passwords are printed anyway), but
#: hashed, as the docs ask for real installs, so the demo starts without plain-text warnings.
DEMO_SCRYPT_N = 2**8


def demo_config_data(fixture: Any, mx_port: int, *, db: str, log_name: str,
                     port: str, admin: str) -> dict[str, Any]:
    """A complete config (as parsed TOML) pointing a static provisioning table at the simulator."""
    from mxproxy.provisioning import hash_password

    def entry(password: str, mx_login: str, mx_password: str) -> dict[str, str]:
        return {"password": hash_password(password, n=DEMO_SCRYPT_N), "mxLogin": mx_login, "mxPassword": mx_password}

    users: dict[str, dict[str, str]] = {}
    for user in fixture.users:
        login, password = _attr(user, "login"), _attr(user, "password")
        if not login or not password:
            continue
        users[sign_in_name(user)] = entry(str(password), str(login), str(password))
    # The README's account always signs in with the README's password, whatever the fixture says.
    readme_user = _readme_user(fixture)
    if readme_user is not None:
        users.pop(sign_in_name(readme_user), None)
        users[DEMO_USERNAME] = entry(DEMO_PASSWORD, str(readme_user.login), str(readme_user.password))
    static: dict[str, Any] = {"mode": "users", "host": f"127.0.0.1:{mx_port}", "users": users}
    server_id = _attr(fixture, "serial_number", "server_id", "sn")
    if server_id:
        static["serverId"] = str(server_id)
    return {
        "apps": {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET},
        "logName": log_name,
        "server": {"port": port, "admin": admin, "db": db},
        "mx": {"connectTimeout": "5s", "responseTimeout": "5s", "reconnectMin": "500ms", "reconnectMax": "5s"},
        "static": static,
    }


# --------------------------------------------------------------------------------------------
# the demo


class Demo:
    """The simulator plus a proxy on it; ``start``/``stop`` and the printable requests."""

    def __init__(self, *, port: str = "8000", admin: str = "127.0.0.1:8043", mx_port: int = 7778,
                 control: str | None = "127.0.0.1:7780", db: str | None = None) -> None:
        self.port = port
        self.admin = admin
        self.mx_port = mx_port
        self.control = control or None
        self.db = db
        self.simulator: Any = None
        self.proxy: Any = None
        self.fixture: Any = None
        self.proxy_error: str | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    async def start(self) -> None:
        from mxproxy.simulator import Simulator, demo_fixture

        self.fixture = demo_fixture()
        self.simulator = Simulator(self.fixture, host="127.0.0.1", port=self.mx_port, control=self.control)
        await self.simulator.start()
        try:
            await self._start_proxy()
        except ImportError as exc:  # parts of the proxy missing (development tree): simulator only
            self.proxy = None
            self.proxy_error = f"the proxy cannot start ({exc}); running the MX simulator alone"
            log.warning("%s", self.proxy_error)
        except BaseException:
            await self.stop()
            raise

    async def _start_proxy(self) -> None:
        from mxproxy.config import parse_config
        from mxproxy.server import LOOPBACK, ProxyServer, admin_listen, parse_listen

        self._tmp = tempfile.TemporaryDirectory(prefix="mxproxy-demo-")
        base = Path(self._tmp.name)
        db = self.db or str(base / "mxproxy.db")
        data = demo_config_data(self.fixture, self.simulator.port, db=db, log_name=str(base / "mxproxy.log"),
                                port=self.port, admin=self.admin)
        config = parse_config(data, base_dir=base)
        # the demo's passwords are printed on the screen: a bare port binds loopback only
        public = parse_listen(self.port, 8000, LOOPBACK, key="--port")
        admin = admin_listen(self.admin, config.server.admin_token)
        # No APNs/FCM credentials in the demo: accept registrations for the README's topic so the
        # token commands work (they show up in the admin API), nothing is delivered.
        from mxproxy.push.topics import PushTopics

        topics = PushTopics.of(apn=[(DEMO_APN_TOPIC, False), (DEMO_APN_TOPIC, True)])
        self.proxy = ProxyServer(config, public=public, admin=admin, admin_enabled=admin is not None, db=db,
                                 push_topics=topics)
        await self.proxy.start()

    async def stop(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
            self.proxy = None
        if self.simulator is not None:
            await self.simulator.stop()
            self.simulator = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- what to print ------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.proxy.public_url

    @property
    def admin_url(self) -> str | None:
        return self.proxy.admin_url if self.proxy is not None else None

    def demo_user(self) -> Any:
        return _readme_user(self.fixture)

    def voicemail_id(self) -> str | None:
        """The id of a voicemail in the demo user's mailbox, for the download example."""
        mailboxes = _attr(self.fixture, "mailboxes", default={}) or {}
        items = mailboxes.get(_attr(self.demo_user(), "login"), []) if isinstance(mailboxes, Mapping) else []
        for item in items:
            if str(_attr(item, "media_type", "mediaType", default="VoiceMail")) == "VoiceMail":
                return str(_attr(item, "id", "mail_id"))
        return None

    def requests(self) -> list[DemoRequest]:
        api = self.api_url
        user = self.demo_user()
        requests = [
            DemoRequest(
                "Sign in (the README's request); keeps the access token in $TOKEN", "POST", f"{api}/auth",
                headers={"Authorization": basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
                         "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                form={"username": DEMO_USERNAME.replace("@", "%40"), "password": DEMO_PASSWORD,
                      "grant_type": "password"},
                capture_token=True,
            ),
            DemoRequest("Who am I on the MX", "GET", f"{api}/auth", headers=BEARER),
            DemoRequest("Contacts", "GET", f"{api}/contacts", headers=BEARER),
            DemoRequest("Call history", "GET", f"{api}/calls", headers=BEARER),
            DemoRequest("Voicemail list", "GET", f"{api}/voicemails", headers=BEARER),
        ]
        mail_id = self.voicemail_id()
        if mail_id is not None:
            requests.append(DemoRequest("Download a voicemail", "GET", f"{api}/voicemails/{mail_id}",
                                        headers=BEARER, output="vm.wav"))
        requests.append(DemoRequest(
            "Register an APNs VoIP device token", "PUT", f"{api}/tokens/apn/{DEMO_APN_TOPIC}/{DEMO_APN_TOKEN}",
            headers=BEARER,
        ))
        if self.simulator is not None and self.simulator.control_url:
            ext = _attr(user, "ext", default="3044")
            requests.append(DemoRequest(
                "Make the MX ring the demo user (simulator control API)", "POST",
                f"{self.simulator.control_url}/calls",
                headers={"Content-Type": "application/json"},
                body='{"to": "%s", "from": "3044", "name": "Peter Hyde"}' % ext,
            ))
        return requests

    def instructions(self) -> str:
        lines: list[str] = []
        sim = self.simulator
        lines.append(f"MX simulator: CSTA over TLS on 127.0.0.1:{sim.port}"
                     + (f", control API {sim.control_url}" if sim.control_url else ""))
        if self.proxy is None:
            lines.append(self.proxy_error or "the proxy is not running")
            accounts = ", ".join(f"{_attr(u, 'login')}/{_attr(u, 'password')}" for u in self.fixture.users)
            lines.append(f"MX accounts (login/password): {accounts}")
            return "\n".join(lines)
        lines.append(f"mxproxy: public API {self.api_url}")
        lines.append(f"demo account: {DEMO_USERNAME} / {DEMO_PASSWORD}, "
                     f"OAuth2 client {DEMO_CLIENT_ID}:{DEMO_CLIENT_SECRET}")
        lines.append("")
        for request in self.requests():
            lines.append(f"# {request.title}")
            lines.append(request.curl())
            lines.append("")
        if self.admin_url:
            admin = self.admin_url
            lines.append("# Admin API")
            for path in ("/users", "/connections", "/tokens", "/apps"):
                lines.append(f"curl -sS {admin}{path}")
            lines.append("")
        lines.append("Press Ctrl-C to stop.")
        return "\n".join(lines)


async def run_demo(demo: Demo) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await demo.start()
        print(demo.instructions(), flush=True)
        await stop.wait()
        print("stopping…", file=sys.stderr, flush=True)
    finally:
        await demo.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of ``mxproxy demo``."""
    demo = Demo(port=str(args.port), admin=args.admin, mx_port=args.mx_port, control=args.control, db=args.db)
    try:
        return runtime.run(run_demo(demo))
    except ConfigError as exc:
        print(f"mxproxy demo: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"mxproxy demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0

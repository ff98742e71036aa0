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
import json
import logging
import secrets
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
DEMO_APN_BUNDLE = "com.connector73.vialer"
DEMO_APN_TOPIC = f"{DEMO_APN_BUNDLE}.voip"
DEMO_APN_TOKEN = "7C179108B7BF759DED2D9CBED7969DE6623D34E200E46387E7D713917E0F3EB8"
DEMO_FCM_APP = "vialer-android"
DEMO_FCM_PROJECT = "mxproxy-demo"
DEMO_FCM_TOKEN = "demo-fcm-registration-token-3095"
#: How the demo's local provider sinks label what they print: they are not Apple's or Google's.
APNS_SINK_LABEL = "[demo APNs sink on 127.0.0.1, not Apple]"
FCM_SINK_LABEL = "[demo FCM sink on 127.0.0.1, not Google]"
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


    @classmethod
    def from_curl(cls, command: str, title: str = "") -> "DemoRequest":
        """The request a ``curl`` command line sends (the inverse of ``curl()``), for the flags the
        README and docs use: ``-s``/``-S``, ``-X``, ``-H``, ``-d``/``--data``/``--data-raw`` (curl's
        form Content-Type unless a header sets one), ``-u user:password``, ``-o``. A URL without a
        scheme is http, as curl takes it. Anything else is a ValueError naming it."""
        words = shlex.split(command)
        if not words or words[0] != "curl":
            raise ValueError(f"not a curl command: {command!r}")
        method: str | None = None
        headers: dict[str, str] = {}
        body: str | None = None
        output: str | None = None
        url: str | None = None
        words_left = iter(words[1:])

        def value(flag: str) -> str:
            try:
                return next(words_left)
            except StopIteration:
                raise ValueError(f"curl flag {flag} needs a value: {command!r}") from None

        for word in words_left:
            if word in ("-s", "-S", "-sS", "-Ss"):
                continue
            if word == "-X":
                method = value(word)
            elif word == "-H":
                name, _, text = value(word).partition(":")
                headers[name.strip()] = text.strip()
            elif word in ("-d", "--data", "--data-raw"):
                body = value(word)
            elif word == "-u":
                user, _, password = value(word).partition(":")
                headers["Authorization"] = basic(user, password)
            elif word == "-o":
                output = value(word)
            elif word.startswith("-"):
                raise ValueError(f"curl flag {word!r} is not supported here: {command!r}")
            elif url is None:
                url = word if "://" in word else f"http://{word}"
            else:
                raise ValueError(f"more than one URL in {command!r}")
        if url is None:
            raise ValueError(f"no URL in {command!r}")
        if body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
        method = method or ("POST" if body is not None else "GET")
        return cls(title or command, method, url, headers=headers, body=body, output=output)


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
                     port: str, admin: str, push: Mapping[str, Any] | None = None) -> dict[str, Any]:
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
        # traceDir: the demo's own folder, so docs/simulator.md's `POST /trace` line works here too
        "mx": {"connectTimeout": "5s", "responseTimeout": "5s", "reconnectMin": "500ms", "reconnectMax": "5s",
               "traceDir": "traces"},
        "static": static,
        **(push or {}),
    }


class PushSinks:
    """The demo's local APNs and FCM (``mxproxy.localpush``, loopback only) and the ``[voip]`` /
    ``[push]`` config pointing the proxy at them; every push they receive becomes a printed line."""

    def __init__(self, folder: Path, show: Any) -> None:
        self.folder = folder
        self.show = show  # called with each printable line
        self.apns: Any = None
        self.fcm: Any = None

    async def start(self) -> None:
        from mxproxy.localpush.apns import LocalAPNs
        from mxproxy.localpush.fcm import LocalFCM
        from mxproxy.localpush.pki import make_ca, make_p8, make_server_cert, make_service_account

        ca = make_ca()
        cert, key = make_server_cert(ca, self.folder)
        self.ca_file = ca.write(self.folder / "demo-push-ca.pem")
        make_p8(self.folder / "AuthKey_DEMO000001.p8")
        self.apns = await LocalAPNs(str(cert), str(key), on_push=self._apns_push).start()
        self.fcm = LocalFCM(on_send=self._fcm_send)
        self.fcm.reserve_port()
        account = make_service_account(self.folder / "demo-service-account.json", self.fcm.token_uri, DEMO_FCM_PROJECT)
        self.fcm.public_keys[f"push@{DEMO_FCM_PROJECT}.iam.gserviceaccount.com"] = account.public_key()
        await self.fcm.start()

    async def stop(self) -> None:
        if self.fcm is not None:
            await self.fcm.stop()
        if self.apns is not None:
            await self.apns.stop()

    def config(self) -> dict[str, Any]:
        return {
            "voip": {
                "apnToken": {"keyFile": "AuthKey_DEMO000001.p8", "keyId": "DEMO000001", "teamId": "DEMOTEAM01",
                             "topics": [DEMO_APN_BUNDLE]},
                "fcm": {DEMO_FCM_APP: "demo-service-account.json"},
            },
            "push": {
                "apns": {"production": self.apns.endpoint, "development": self.apns.endpoint,
                         "caFile": str(self.ca_file)},
                "fcm": {"sendURL": self.fcm.send_url},
            },
        }

    def _apns_push(self, request: Any) -> None:
        kind = request.headers.get("apns-push-type", "?")
        self.show(f"{APNS_SINK_LABEL} {kind} push to device {request.token[:8]}… "
                  f"(apns-topic {request.headers.get('apns-topic', '')}): {request.body.decode(errors='replace')}")

    def _fcm_send(self, request: Any) -> None:
        message = request.message
        android = message.get("android", {})
        self.show(f"{FCM_SINK_LABEL} {android.get('priority', '?')}-priority message to device "
                  f"{str(message.get('token', ''))[:8]}…: {json.dumps(message.get('data', {}), ensure_ascii=False)}")


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
        self.sinks: PushSinks | None = None
        self.pushes: list[str] = []  # what the push sinks received, as printed
        self.echo = False  # print each push as it arrives (``mxproxy demo``; tests read ``pushes``)
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
        self.sinks = PushSinks(base, self._show_push)
        await self.sinks.start()
        db = self.db or str(base / "mxproxy.db")
        data = demo_config_data(self.fixture, self.simulator.port, db=db, log_name=str(base / "mxproxy.log"),
                                port=self.port, admin=self.admin, push=self.sinks.config())
        if self.db is None:  # a throw-away store: a throw-away key (no "store key beside the db" warning)
            data["server"]["storeKey"] = secrets.token_urlsafe(32)
        config = parse_config(data, base_dir=base)
        # the demo's passwords are printed on the screen: a bare port binds loopback only
        public = parse_listen(self.port, 8000, LOOPBACK, key="--port")
        admin = admin_listen(self.admin, config.server.admin_token)
        self.proxy = ProxyServer(config, public=public, admin=admin, admin_enabled=admin is not None, db=db)
        await self.proxy.start()

    def _show_push(self, line: str) -> None:
        self.pushes.append(line)
        if self.echo:
            print(line, flush=True)

    async def stop(self) -> None:
        if self.proxy is not None:
            await self.proxy.stop()
            self.proxy = None
        if self.simulator is not None:
            await self.simulator.stop()
            self.simulator = None
        if self.sinks is not None:
            await self.sinks.stop()
            self.sinks = None
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
        requests.append(DemoRequest(
            "Register an FCM (Android) device token", "PUT", f"{api}/tokens/fcm/{DEMO_FCM_APP}/{DEMO_FCM_TOKEN}",
            headers=BEARER,
        ))
        if self.simulator is not None and self.simulator.control_url:
            ext = _attr(user, "ext", default="3044")
            requests.append(DemoRequest(
                "Make the MX ring the demo user (simulator control API): the pushes the phones get print below",
                "POST",
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
        lines.append(f"mxproxy: public API {self.api_url} (API documentation: {self.api_url}/docs)")
        if self.sinks is not None:
            lines.append(f"push sinks (demo only, loopback, nothing leaves this machine): APNs {self.sinks.apns.endpoint}, "
                         f"FCM {self.sinks.fcm.base_url}; each push they get is printed, labelled "
                         f"{APNS_SINK_LABEL} / {FCM_SINK_LABEL}")
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
        demo.echo = True
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

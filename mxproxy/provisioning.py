"""Where a user's MX host and credentials come from.

Two sources:

* **URL mode** (the original's behaviour, spec §6): ``GET <provisioning>`` with the user's Basic
  credentials or their Azure AD id_token passed through; the JSON's ``MX`` object names the MX
  login, password, address and CSTA port. Its failures map to HTTP statuses as in §6.3, except that
  a response without ``MX`` is a 403 instead of the original's crash.
* **Static mode** (small installs, the demo): a ``[static]`` table in the config, either a list of
  users (``mode = "users"``) or ``mode = "direct"`` where the credentials typed at sign-in are the
  MX credentials and the MX itself is the judge.

Nothing here caches credentials: every sign-in asks the source again.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import binascii
import getpass
import hashlib
import hmac
import json
import logging
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from http import HTTPStatus
from typing import Any, Iterable, Mapping

import httpx

from mxproxy import outbound
from mxproxy.config import Config, ConfigError, resolve_secret, unknown_key
from mxproxy.connectors.base import MXAccount

log = logging.getLogger(__name__)

USER_AGENT = "MXProxy/2.3"
DEFAULT_TIMEOUT = 10.0
DEFAULT_CSTA_PORT = 7778
MAX_REDIRECTS = 10  # Go's http.Client default

MSG_NOT_CONFIGURED = "mx provisioning is not configured"
MSG_UNPROTECTED = "unprotected connection to mx server is not supported"
MSG_FORBIDDEN = "forbidden"


@dataclass(frozen=True)
class ProvisionedAccount:
    """Who the user is on the MX and where that MX is."""

    login: str  # account_name: store key, JWT "sub", one MX session per login
    account: MXAccount  # host, port, login (MX login), password (clear)
    server_id: str = ""  # "sn" from provisioning, informational
    sign_in_name: str = ""  # what the user signed in as (stored: the admin API accepts it too)


class ProvisioningError(Exception):
    """Provisioning refused or failed; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"ProvisioningError({self.status}, {self.message!r})"


class Provisioner(abc.ABC):
    """A source of MX accounts."""

    @abc.abstractmethod
    async def by_password(self, username: str, password: str) -> ProvisionedAccount:
        """The OAuth2 password grant's username/password."""

    @abc.abstractmethod
    async def by_bearer(self, id_token: str) -> ProvisionedAccount:
        """An Azure AD id_token, as the original: forwarded to the provisioning URL unchecked."""

    async def by_identity(self, username: str) -> ProvisionedAccount:
        """A user whose identity the API already verified (Azure id_token validated locally).

        Only the static user table can answer this; other sources refuse with 403."""
        raise ProvisioningError(403, MSG_FORBIDDEN)

    async def aclose(self) -> None:
        """Release the HTTP client if we own one."""


# ----------------------------------------------------------------------------------------------
# helpers shared by both modes
# ----------------------------------------------------------------------------------------------


def _port(value: Any) -> int | None:
    """A TCP port from a string (the original's type) or an integer (accepted as an extension)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        port = value
    elif isinstance(value, str) and value.strip().isdigit():
        port = int(value.strip())
    else:
        return None
    return port if 0 < port < 65536 else None


def split_host(value: str, default_port: int = DEFAULT_CSTA_PORT) -> tuple[str, int]:
    """``"host:port"``/``"host"``/``"[v6]:port"`` → (host, port). Raises ValueError."""
    text = value.strip()
    if not text:
        raise ValueError("empty host")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"bad host {value!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad host {value!r}")
        port_text = rest[1:] if rest else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""  # bare name, or a bare IPv6 address
    if not host:
        raise ValueError(f"bad host {value!r}")
    if not port_text:
        return host, default_port
    port = _port(port_text)
    if port is None:
        raise ValueError(f"bad port in {value!r}")
    return host, port


# ----------------------------------------------------------------------------------------------
# URL mode
# ----------------------------------------------------------------------------------------------


def _get_ci(data: Mapping[str, Any], name: str) -> Any:
    """Go's encoding/json key matching: exact name first, then case-insensitive."""
    if name in data:
        return data[name]
    lowered = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _string_field(mx: Mapping[str, Any], name: str) -> str:
    value = _get_ci(mx, name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ProvisioningError(
            502, f"json: cannot unmarshal {_json_type(value)} into Go struct field .MX.{name} of type string"
        )
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def parse_provisioning(document: Any) -> ProvisionedAccount:
    """Turn a provisioning JSON document into an account, applying the §6.3 checks."""
    if not isinstance(document, dict):
        raise ProvisioningError(502, f"json: cannot unmarshal {_json_type(document)} into Go value of type config")
    mx = _get_ci(document, "MX")
    if mx is None:
        raise ProvisioningError(403, MSG_NOT_CONFIGURED)
    if not isinstance(mx, dict):
        raise ProvisioningError(502, f"json: cannot unmarshal {_json_type(mx)} into Go struct field .MX of type object")
    account_name = _string_field(mx, "account_name")
    account_pwd = _string_field(mx, "account_pwd")
    address = _string_field(mx, "address")
    server_id = _get_ci(mx, "sn")
    server_id = "" if server_id is None else str(server_id)
    raw_port = _get_ci(mx, "csta_port")
    if raw_port is None or raw_port == "":
        port_text = ""
    elif isinstance(raw_port, (str, int)) and not isinstance(raw_port, bool):
        port_text = str(raw_port)  # a number is accepted too (the original answered 502)
    else:
        raise ProvisioningError(
            502, f"json: cannot unmarshal {_json_type(raw_port)} into Go struct field .MX.csta_port of type string"
        )
    ssl = _get_ci(mx, "csta_ssl")
    if ssl is not None and not isinstance(ssl, bool):
        raise ProvisioningError(
            502, f"json: cannot unmarshal {_json_type(ssl)} into Go struct field .MX.csta_ssl of type bool"
        )
    if not (account_name and account_pwd and address and port_text):
        raise ProvisioningError(403, MSG_NOT_CONFIGURED)
    if ssl is not True:
        raise ProvisioningError(403, MSG_UNPROTECTED)
    port = _port(port_text)
    if port is None:
        raise ProvisioningError(502, f"provisioning: bad csta_port {port_text!r}")
    host = address.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return ProvisionedAccount(
        login=account_name,
        account=MXAccount(host=host, port=port, login=account_name, password=account_pwd),
        server_id=server_id,
    )


def _status_text(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"status {status}"


class URLProvisioner(Provisioner):
    """The original provisioning service: one GET per sign-in, no caching."""

    def __init__(self, url: str, *, http: httpx.AsyncClient | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self._own_http = http is None
        # Go's http.Client (the original) follows up to 10 redirects; httpx drops the
        # Authorization header when a redirect leaves the origin, as Go does for another host.
        self._http = http if http is not None else outbound.httpx_client(
            timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS)

    async def by_password(self, username: str, password: str) -> ProvisionedAccount:
        return replace(await self._fetch(httpx.BasicAuth(username, password)), sign_in_name=username)

    async def by_bearer(self, id_token: str) -> ProvisionedAccount:
        return await self._fetch(f"Bearer {id_token}")

    async def _fetch(self, auth: httpx.BasicAuth | str) -> ProvisionedAccount:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        kwargs: dict[str, Any] = {"headers": headers, "timeout": self.timeout}
        if isinstance(auth, str):
            headers["Authorization"] = auth
        else:
            kwargs["auth"] = auth
        try:
            response = await self._http.get(self.url, **kwargs)
        except httpx.TimeoutException as exc:
            log.warning("provisioning %s: timeout (%s)", self.url, type(exc).__name__)
            raise ProvisioningError(504, f"provisioning timeout: {exc or type(exc).__name__}") from None
        except httpx.TooManyRedirects:
            log.warning("provisioning %s: more than %d redirects", self.url, MAX_REDIRECTS)
            raise ProvisioningError(502, "provisioning: too many redirects") from None
        except (httpx.HTTPError, OSError) as exc:
            log.warning("provisioning %s: %s", self.url, exc)
            raise ProvisioningError(503, f"provisioning unavailable: {exc or type(exc).__name__}") from None
        if response.status_code != 200:
            log.info("provisioning %s answered %d", self.url, response.status_code)
            raise ProvisioningError(response.status_code, _status_text(response.status_code))
        try:
            document = json.loads(response.content)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise ProvisioningError(502, f"provisioning: bad json: {exc}") from None
        return parse_provisioning(document)

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()


# ----------------------------------------------------------------------------------------------
# Static mode
# ----------------------------------------------------------------------------------------------

SCRYPT_PREFIX = "scrypt$"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def hash_password(password: str, *, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P) -> str:
    """``scrypt$N$r$p$<salt b64>$<key b64>`` for the ``[static.users]`` ``password`` key."""
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(key)}"


@dataclass(frozen=True)
class _ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes = field(repr=False)
    key: bytes = field(repr=False)

    @classmethod
    def parse(cls, text: str, key_name: str) -> "_ScryptHash":
        parts = text.split("$")
        try:
            if len(parts) != 6 or parts[0] != "scrypt":
                raise ValueError
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt = base64.b64decode(parts[4], validate=True)
            key = base64.b64decode(parts[5], validate=True)
            if n < 2 or n & (n - 1) or r < 1 or p < 1 or not salt or len(key) < 16:
                raise ValueError
        except (ValueError, binascii.Error):
            raise ConfigError(f"{key_name}: malformed scrypt hash (expected scrypt$N$r$p$salt$key)") from None
        return cls(n, r, p, salt, key)

    def verify(self, password: str) -> bool:
        try:
            candidate = hashlib.scrypt(
                password.encode(), salt=self.salt, n=self.n, r=self.r, p=self.p, dklen=len(self.key),
                maxmem=256 * 1024 * 1024,
            )
        except ValueError:
            return False
        return hmac.compare_digest(candidate, self.key)


@dataclass(frozen=True)
class StaticUser:
    """One ``[static.users."<name>"]`` entry: the sign-in name and the MX account behind it."""

    name: str
    mx_login: str
    mx_password: str = field(repr=False)
    host: str
    port: int
    server_id: str = ""
    password_hash: _ScryptHash | None = field(default=None, repr=False)
    password_plain: str | None = field(default=None, repr=False)

    def check_password(self, password: str) -> bool:
        if self.password_hash is not None:
            return self.password_hash.verify(password)
        if self.password_plain is None:
            return False
        return hmac.compare_digest(self.password_plain.encode(), password.encode())

    def provisioned(self) -> ProvisionedAccount:
        return ProvisionedAccount(
            login=self.mx_login,
            account=MXAccount(host=self.host, port=self.port, login=self.mx_login, password=self.mx_password),
            server_id=self.server_id,
            sign_in_name=self.name,
        )


@dataclass(frozen=True)
class StaticConfig:
    mode: str  # "users" | "direct"
    host: str | None
    port: int
    server_id: str = ""
    users: Mapping[str, StaticUser] = field(default_factory=dict)


def _str_key(table: Mapping[str, Any], name: str, path: str, *, required: bool = False, default: str = "") -> str:
    value = table.get(name)
    if value is None:
        if required:
            raise ConfigError(f"{path}.{name}: required")
        return default
    if not isinstance(value, str):
        raise ConfigError(f"{path}.{name}: expected a string, got {type(value).__name__}")
    if required and not value:
        raise ConfigError(f"{path}.{name}: must not be empty")
    return value


def _parse_host(value: str, key: str) -> tuple[str, int]:
    try:
        return split_host(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc} (expected \"host:port\")") from None


def parse_static(data: Mapping[str, Any], base_dir: Path | None = None) -> StaticConfig:
    """Validate the ``[static]`` table; every error names the key. ``file:`` secrets are
    relative to ``base_dir`` (the config file's folder)."""
    if not isinstance(data, Mapping):
        raise ConfigError("static: expected a table")
    known = {"mode", "host", "serverId", "users"}
    for name in data:
        if name not in known:
            raise unknown_key("static", name, known)
    mode = _str_key(data, "mode", "static", default="users")
    if mode not in ("users", "direct"):
        raise ConfigError(f'static.mode: expected "users" or "direct", got {mode!r}')
    server_id = _str_key(data, "serverId", "static")
    host_text = _str_key(data, "host", "static")
    host, port = _parse_host(host_text, "static.host") if host_text else (None, DEFAULT_CSTA_PORT)

    users_raw = data.get("users", {})
    if not isinstance(users_raw, Mapping):
        raise ConfigError("static.users: expected a table")
    if mode == "direct":
        if host is None:
            raise ConfigError('static.host: required when static.mode = "direct"')
        if users_raw:
            raise ConfigError('static.users: not used when static.mode = "direct" (the MX checks the credentials)')
        return StaticConfig(mode=mode, host=host, port=port, server_id=server_id)

    if not users_raw:
        raise ConfigError('static.users: at least one user is needed when static.mode = "users"')
    users: dict[str, StaticUser] = {}
    plain: list[str] = []  # users whose sign-in password is not hashed: one warning for all of them
    user_keys = {"password", "mxLogin", "mxPassword", "host", "serverId"}
    for name, entry in users_raw.items():
        path = f'static.users."{name}"'
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{path}: expected a table")
        for key in entry:
            if key not in user_keys:
                raise unknown_key(path, key, user_keys)
        password = resolve_secret(_str_key(entry, "password", path, required=True), f"{path}.password", base_dir)
        pw_hash: _ScryptHash | None = None
        pw_plain: str | None = None
        if password.startswith(SCRYPT_PREFIX):
            pw_hash = _ScryptHash.parse(password, f"{path}.password")
        else:
            pw_plain = password
            plain.append(str(name))
        mx_login = _str_key(entry, "mxLogin", path, default=str(name)) or str(name)
        mx_password = resolve_secret(_str_key(entry, "mxPassword", path, required=True), f"{path}.mxPassword", base_dir)
        if not mx_password:
            raise ConfigError(f"{path}.mxPassword: must not be empty")
        user_host = _str_key(entry, "host", path)
        if user_host:
            u_host, u_port = _parse_host(user_host, f"{path}.host")
        elif host is not None:
            u_host, u_port = host, port
        else:
            raise ConfigError(f"{path}.host: required (no static.host default is set)")
        key = str(name)
        if key.casefold() in {k.casefold() for k in users}:
            raise ConfigError(f"{path}: duplicate user (names are case-insensitive)")
        users[key] = StaticUser(
            name=key,
            mx_login=mx_login,
            mx_password=mx_password,
            host=u_host,
            port=u_port,
            server_id=_str_key(entry, "serverId", path, default=server_id) or server_id,
            password_hash=pw_hash,
            password_plain=pw_plain,
        )
    if plain:
        shown = ", ".join(plain[:3]) + (f" and {len(plain) - 3} more" if len(plain) > 3 else "")
        log.warning("config: static.users password is plain text for %d user(s) (%s); use scrypt hashes "
                    "(python -m mxproxy.provisioning) outside demos", len(plain), shown)
    return StaticConfig(mode=mode, host=host, port=port, server_id=server_id, users=users)


def _dummy_user(users: Iterable[StaticUser]) -> StaticUser:
    """A user no password opens, hashed like the costliest configured hash (plain text when none
    is hashed): checking a name that is not configured costs what checking a real one does."""
    hashes = [u.password_hash for u in users if u.password_hash is not None]
    costliest = max(hashes, key=lambda h: (h.n * h.r * h.p, len(h.key), len(h.salt)), default=None)
    secret = base64.b64encode(os.urandom(24)).decode()
    if costliest is None:
        return StaticUser(name="", mx_login="", mx_password="", host="", port=0, password_plain=secret)
    dummy = _ScryptHash(costliest.n, costliest.r, costliest.p, os.urandom(len(costliest.salt)),
                        os.urandom(len(costliest.key)))
    return StaticUser(name="", mx_login="", mx_password="", host="", port=0, password_hash=dummy)


class StaticProvisioner(Provisioner):
    """Accounts from the config file (no provisioning server)."""

    def __init__(self, static: StaticConfig) -> None:
        self.config = static
        self._by_folded = {name.casefold(): user for name, user in static.users.items()}
        self._dummy = _dummy_user(static.users.values())

    def _user(self, username: str) -> StaticUser | None:
        return self.config.users.get(username) or self._by_folded.get(username.casefold())

    async def by_password(self, username: str, password: str) -> ProvisionedAccount:
        if self.config.mode == "direct":
            if not username or not password:
                raise ProvisioningError(403, MSG_FORBIDDEN)
            assert self.config.host is not None
            return ProvisionedAccount(
                login=username,
                account=MXAccount(host=self.config.host, port=self.config.port, login=username, password=password),
                server_id=self.config.server_id,
                sign_in_name=username,
            )
        if not password:
            raise ProvisioningError(403, MSG_FORBIDDEN)
        # an unknown name costs the same hashing as a known one, and gets the same answer
        user = self._user(username) or self._dummy
        if user.password_hash is not None:
            ok = await asyncio.to_thread(user.check_password, password)  # scrypt is deliberately slow
        else:
            ok = user.check_password(password)
        if not ok or user is self._dummy:
            raise ProvisioningError(403, MSG_FORBIDDEN)
        return user.provisioned()

    async def by_bearer(self, id_token: str) -> ProvisionedAccount:
        # A static table cannot judge a token; the API validates Azure tokens and calls by_identity.
        raise ProvisioningError(403, MSG_FORBIDDEN)

    async def by_identity(self, username: str) -> ProvisionedAccount:
        if self.config.mode == "users":
            user = self._user(username)
            if user is not None:
                return user.provisioned()
        raise ProvisioningError(403, MSG_FORBIDDEN)


# ----------------------------------------------------------------------------------------------


def create_provisioner(config: Config, *, http: httpx.AsyncClient | None = None) -> Provisioner:
    """``[static]`` present → static table; otherwise the provisioning URL (the original's way)."""
    if config.static:
        return StaticProvisioner(parse_static(config.static, config.base_dir))
    timeout = config.mx.provisioning_timeout
    return URLProvisioner(config.provisioning, http=http, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    """``python -m mxproxy.provisioning`` prints a scrypt hash for ``[static.users]`` ``password``."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print("usage: python -m mxproxy.provisioning   (reads the password twice from the terminal)")
        return 0
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("empty password", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

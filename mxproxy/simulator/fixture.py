"""What the simulated MX knows: users, directory, services, call logs, mailboxes, conferences.

A ``Fixture`` is a plain mutable dataclass. The running ``Simulator`` uses it as its live state
(a deleted voicemail disappears from ``fixture.mailboxes``), so tests can build one in code,
inspect it afterwards, or load one from a JSON/TOML file whose keys follow the MX Proxy README's
JSON (camelCase, ``id``/``from``/``ext``), see docs/simulator.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from mxproxy.simulator.audio import tone_wav, wav_of_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "Person", "SimUser", "DirectoryEntry", "Service", "CallLogEntry", "MailItem", "Conference",
    "ConfServerInfo", "Fixture", "FixtureError", "load_fixture", "demo_fixture", "DEMO_FIXTURE_PATH",
    "MEDIA_TYPES",
]

MEDIA_TYPES = ("VoiceMail", "Recording", "Fax", "Undefined")
DEMO_FIXTURE_PATH = Path(__file__).parent / "fixtures" / "demo.json"


class FixtureError(ValueError):
    """A fixture file or value that cannot describe an MX (names the offending key)."""


@dataclass(kw_only=True)
class Person:
    """An address-book entry (spec §4.2)."""

    jid: int = 0
    ext: str = ""
    first_name: str = ""
    last_name: str = ""
    home_phone: str = ""
    cell_phone: str = ""
    email: str = ""
    did: str = ""
    home_system: int = 0
    exchange_id: str = ""
    presence: str = "Available"
    presence_note: str = ""

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.ext


@dataclass(kw_only=True)
class DirectoryEntry(Person):
    """A person in the address book who cannot log in."""


@dataclass(kw_only=True)
class SimUser(Person):
    """A person who can log in. ``ldap`` users reject the hashed password (Code 4) and accept the
    clear one; ``server`` users may log in with ``type="Server"`` and monitor any extension."""

    login: str
    password: str = field(repr=False)
    soft_phone_pwd: str = field(default="", repr=False)
    ldap: bool = False
    server: bool = False

    def __post_init__(self) -> None:
        if not self.login:
            raise FixtureError("a user needs a login")
        if not self.soft_phone_pwd:
            digest = hashlib.sha256(f"softphone:{self.login}:{self.jid}".encode()).digest()
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
            self.soft_phone_pwd = "".join(alphabet[b % len(alphabet)] for b in digest)


@dataclass(kw_only=True)
class Service:
    id: str
    name: str
    type: str
    ext: str
    home_system: int = 0


@dataclass(kw_only=True)
class CallLogEntry:
    """One ``callinfo`` record (spec §4.3)."""

    record_id: int
    direction: str = "incoming"
    missed: bool = False
    gcid: str = ""
    connect_timestamp: int = 0
    disconnect_timestamp: int = 0
    calling_party_no: str = ""
    original_called_party_no: str = ""
    first_name: str = ""
    last_name: str = ""
    extension: str = ""
    service_name: str = ""
    service_extension: str = ""
    call_type: int = 0
    leg_type: int = 0
    self_leg_type: int = 0
    monitor_type: int = 0

    @property
    def time(self) -> int:
        """The moment the ``timestamp`` filter compares against."""
        return self.disconnect_timestamp or self.connect_timestamp


@dataclass(kw_only=True)
class MailItem:
    """One voicemail / recording / fax. Content comes from ``audio`` bytes, else ``audio_file``
    (relative to the fixture file), else a generated tone as long as ``duration``."""

    mail_id: int = 0
    media_type: str = "VoiceMail"
    from_number: str = ""
    from_name: str = ""
    caller_name: str = ""
    to: str = ""
    owner_type: str = "user"
    received: int = 0
    duration: int = 0
    read: bool = False
    note: str = ""
    gcid: str = ""
    private: bool = False
    urgent: bool = False
    file_format: str = "wav"
    document_name: str = ""
    audio: bytes | None = field(default=None, repr=False)
    audio_file: str = ""

    def __post_init__(self) -> None:
        if self.media_type not in MEDIA_TYPES:
            raise FixtureError(f"mediaType {self.media_type!r}: expected one of {', '.join(MEDIA_TYPES)}")

    def content(self, base_dir: Path | None = None) -> bytes:
        if self.audio is None:
            if self.audio_file:
                path = Path(self.audio_file)
                if not path.is_absolute() and base_dir is not None:
                    path = base_dir / path
                try:
                    self.audio = path.read_bytes()
                except OSError as exc:
                    raise FixtureError(f"mail {self.mail_id}: cannot read audio file {path}: {exc.strerror}") from None
            else:
                self.audio = tone_wav(max(1, min(self.duration or 1, 10)), 440.0)
        return self.audio


@dataclass(kw_only=True)
class Conference:
    conf_id: str = ""
    owner_id: int = 0
    name: str = ""
    access_id: int = 0
    description: str = ""
    type: str = "Once"
    start_date: int = 0
    duration: int = 0
    wait_for_owner: bool = False
    del_on_owner_leave: bool = False
    ws: str = "None"
    ws_type: str = "Undefined"


@dataclass(kw_only=True)
class ConfServerInfo:
    extension: str = ""
    did: str = ""
    invite_subject: str = ""
    invite_body: str = ""
    invite_meeting: str = ""


@dataclass
class Fixture:
    users: list[SimUser] = field(default_factory=list)
    directory: list[DirectoryEntry] = field(default_factory=list)
    services: list[Service] = field(default_factory=list)
    call_logs: dict[str, list[CallLogEntry]] = field(default_factory=dict)  # by login
    mailboxes: dict[str, list[MailItem]] = field(default_factory=dict)  # by login, all media types
    conferences: list[Conference] = field(default_factory=list)
    conf_server: ConfServerInfo = field(default_factory=ConfServerInfo)
    sn: str = "63022"
    api_version: int = 11
    base_dir: Path | None = None  # where relative audio files live

    # -- lookups -------------------------------------------------------------------------------

    def user(self, login: str) -> SimUser:
        for u in self.users:
            if u.login == login:
                return u
        raise FixtureError(f"no user with login {login!r}")

    def people(self) -> list[Person]:
        return [*self.users, *self.directory]

    def next_mail_id(self) -> int:
        return 1 + max((m.mail_id for box in self.mailboxes.values() for m in box), default=0)

    # -- builders for big synthetic fixtures (tests, benchmarks) --------------------------------

    def add_users(self, n: int, *, prefix: str = "user", password: str = "secret", first_ext: int = 10000,
                  first_jid: int = 50_000_000_000_000_000) -> list[SimUser]:
        """``n`` users ``user0…`` with extensions from ``first_ext`` and one shared password."""
        added = [
            SimUser(login=f"{prefix}{i}", password=password, ext=str(first_ext + i), jid=first_jid + i,
                    first_name=prefix.capitalize(), last_name=f"No{i}")
            for i in range(n)
        ]
        self.users.extend(added)
        return added

    def add_directory_entries(self, n: int, *, first_ext: int = 5000, first_jid: int = 40_000_000_000_000_000) -> list[DirectoryEntry]:
        """``n`` people without a login (to make the address book span pages)."""
        added = [
            DirectoryEntry(jid=first_jid + i, ext=str(first_ext + i), first_name=f"Person{i}", last_name=f"Sample{i:05d}",
                           email=f"person{i}@example.org")
            for i in range(n)
        ]
        self.directory.extend(added)
        return added

    def set_call_log(self, login: str, n_entries: int, *, first_record_id: int = 1, start_time: int = 1_500_000_000,
                     step: int = 60) -> list[CallLogEntry]:
        """Replace ``login``'s call log with ``n_entries`` alternating incoming/outgoing records."""
        entries = []
        for i in range(n_entries):
            t = start_time + i * step
            incoming = i % 2 == 0
            entries.append(CallLogEntry(
                record_id=first_record_id + i, direction="incoming" if incoming else "outgoing",
                missed=incoming and i % 4 == 0, gcid=f"{self.sn}-00-0000D-{first_record_id + i:03X}",
                connect_timestamp=t if incoming else 0, disconnect_timestamp=t + 30,
                calling_party_no="3044" if incoming else "3095", original_called_party_no="3095" if incoming else "3044",
                call_type=1, leg_type=1, self_leg_type=9 if incoming else 1,
            ))
        self.call_logs[login] = entries
        return entries

    def add_voicemail(self, login: str, *, audio: bytes | None = None, audio_size: int | None = None,
                      media_type: str = "VoiceMail", from_number: str = "3044", from_name: str = "Peter Hyde",
                      duration: int = 5, received: int = 1_500_000_000, read: bool = False, note: str = "",
                      mail_id: int | None = None) -> MailItem:
        """Add a mail to ``login``'s mailbox; ``audio_size`` makes a valid WAV of exactly that many bytes."""
        if audio is None and audio_size is not None:
            audio = wav_of_size(audio_size)
        user = self.user(login)
        item = MailItem(
            mail_id=mail_id if mail_id is not None else self.next_mail_id(), media_type=media_type,
            from_number=from_number, from_name=from_name, caller_name=from_name, to=user.ext,
            received=received, duration=duration, read=read, note=note, audio=audio,
        )
        if not item.document_name:
            item.document_name = f"u{user.jid:017d}/m{item.mail_id:04d}.{item.file_format}"
        self.mailboxes.setdefault(login, []).append(item)
        return item


# -- loading -----------------------------------------------------------------------------------

_ALIASES: dict[type, dict[str, str]] = {
    MailItem: {"id": "mail_id", "mailId": "mail_id", "from": "from_number", "fileFormat": "file_format"},
    Conference: {"id": "conf_id", "Id": "conf_id", "confId": "conf_id", "wsType": "ws_type"},
    CallLogEntry: {"ext": "extension"},
    ConfServerInfo: {"ext": "extension", "DID": "did", "subject": "invite_subject", "body": "invite_body",
                     "meeting": "invite_meeting", "inviteMXmeeting": "invite_meeting"},
    SimUser: {"softPhonePwd": "soft_phone_pwd", "userId": "jid"},
}

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()


def _coerce(where: str, type_name: str, value: Any) -> Any:
    try:
        if type_name == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if type_name == "str":
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if type_name == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            raise ValueError
    except (TypeError, ValueError):
        raise FixtureError(f"{where}: {value!r} is not a valid {type_name}") from None
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise FixtureError(f"{where}: expected an object")
    types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    aliases = _ALIASES.get(cls, {})
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = aliases.get(key) or _snake(key)
        if name not in types or name in ("audio", "base_dir"):
            raise FixtureError(f"{where}: unknown key {key!r}")
        type_name = types[name]
        kwargs[name] = _coerce(f"{where}.{key}", type_name, value) if type_name in ("int", "str", "bool") else value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise FixtureError(f"{where}: {exc}") from None


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise FixtureError(f"{key}: expected a list")
    return value


def _per_login(data: Mapping[str, Any], key: str) -> dict[str, list[Any]]:
    value = data.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(v, list) for v in value.values()):
        raise FixtureError(f"{key}: expected an object mapping logins to lists")
    return dict(value)


_TOP_KEYS = {"sn", "apiVersion", "users", "directory", "services", "callLogs", "mailboxes", "conferences", "confServer"}


def fixture_from_dict(data: Mapping[str, Any], base_dir: Path | None = None) -> Fixture:
    if not isinstance(data, Mapping):
        raise FixtureError("a fixture is an object")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise FixtureError(f"unknown top-level key(s): {', '.join(sorted(unknown))}")
    fx = Fixture(
        users=[_build(SimUser, u, f"users[{i}]") for i, u in enumerate(_list(data, "users"))],
        directory=[_build(DirectoryEntry, u, f"directory[{i}]") for i, u in enumerate(_list(data, "directory"))],
        services=[_build(Service, s, f"services[{i}]") for i, s in enumerate(_list(data, "services"))],
        conferences=[_build(Conference, c, f"conferences[{i}]") for i, c in enumerate(_list(data, "conferences"))],
        conf_server=_build(ConfServerInfo, data.get("confServer", {}), "confServer"),
        sn=_coerce("sn", "str", data.get("sn", "63022")),
        api_version=_coerce("apiVersion", "int", data.get("apiVersion", 11)),
        base_dir=base_dir,
    )
    logins = {u.login for u in fx.users}
    if len(logins) != len(fx.users):
        raise FixtureError("users: logins must be unique")
    for key, attr, cls in (("callLogs", "call_logs", CallLogEntry), ("mailboxes", "mailboxes", MailItem)):
        for login, items in _per_login(data, key).items():
            if login not in logins:
                raise FixtureError(f"{key}: {login!r} is not a user's login")
            getattr(fx, attr)[login] = [_build(cls, item, f"{key}.{login}[{i}]") for i, item in enumerate(items)]
    seen: set[int] = set()
    for login, box in fx.mailboxes.items():
        user = fx.user(login)
        for item in box:
            if item.mail_id <= 0:
                item.mail_id = fx.next_mail_id()
            if item.mail_id in seen:
                raise FixtureError(f"mailboxes: mail id {item.mail_id} is used twice")
            seen.add(item.mail_id)
            if not item.to:
                item.to = user.ext
            if not item.document_name:
                item.document_name = f"u{user.jid:017d}/m{item.mail_id:04d}.{item.file_format}"
    return fx


def load_fixture(path: str | Path) -> Fixture:
    """Read a ``.json`` or ``.toml`` fixture; relative audio files resolve next to it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FixtureError(f"cannot read fixture {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FixtureError(f"{path}: {exc}") from None
    return fixture_from_dict(data, base_dir=path.parent)


def demo_fixture() -> Fixture:
    """A fresh copy of the README's world: people, dmitrys' call log, services, voicemails 82/117."""
    return load_fixture(DEMO_FIXTURE_PATH)


def iter_people(fixture: Fixture) -> Iterable[Person]:
    return fixture.people()

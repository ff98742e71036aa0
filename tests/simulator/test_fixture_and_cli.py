"""Fixture loading (JSON/TOML, errors), the demo data, quirk parsing, the certificate and the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import ssl
import sys
import wave
from io import BytesIO
from pathlib import Path

import pytest

from mxproxy.simulator import (
    FixtureError,
    QuirkError,
    Quirks,
    demo_fixture,
    load_fixture,
)
from mxproxy.simulator.fixture import DEMO_FIXTURE_PATH


def test_demo_fixture_has_the_readme_people_calls_services_and_voicemails() -> None:
    fx = demo_fixture()
    assert len(fx.users) == 17 and fx.sn == "63022"
    dmitrys = fx.user("dmitrys")
    assert (dmitrys.ext, dmitrys.jid, dmitrys.password) == ("3095", 43884851147406145, "78561")
    assert fx.user("peterh").soft_phone_pwd == "EqNe45DYvZH2va1gesL7AA1ldtP04j4a"
    assert len({u.login for u in fx.users}) == 17 and all(u.password for u in fx.users)
    assert [e.record_id for e in fx.call_logs["dmitrys"]][:3] == [973, 975, 976]
    assert len(fx.call_logs["dmitrys"]) == 27 and len(fx.services) == 6
    assert [m.mail_id for m in fx.mailboxes["dmitrys"]] == [82, 117]
    assert fx.conf_server.invite_meeting.endswith("/join?id=%ID%")


def test_demo_audio_is_playable_8khz_16bit_mono_and_small() -> None:
    fx = demo_fixture()
    sizes = []
    for item in fx.mailboxes["dmitrys"]:
        data = item.content(fx.base_dir)
        with wave.open(BytesIO(data)) as w:
            assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
            assert w.getnframes() >= 8000 * 3
        sizes.append(len(data))
    assert all(s < 500_000 for s in sizes) and max(sizes) > 32 * 1024


def test_demo_voicemail_durations_equal_the_length_of_their_wav() -> None:
    fx = demo_fixture()
    items = [m for box in fx.mailboxes.values() for m in box if m.audio_file]
    assert items
    for item in items:
        with wave.open(BytesIO(item.content(fx.base_dir))) as w:
            seconds = w.getnframes() / w.getframerate()
        assert item.duration == round(seconds), (item.mail_id, item.duration, seconds)


def test_json_and_toml_fixtures_load_with_relative_audio(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFFdata")
    data = {"sn": "1X", "users": [{"login": "bob", "password": "pw", "ext": "100", "jid": "123456789012345678901"[:17]}],
            "mailboxes": {"bob": [{"id": "5", "from": "200", "audioFile": "a.wav"}]},
            "callLogs": {"bob": [{"record_id": 1, "direction": "incoming", "ext": "200"}]}}
    (tmp_path / "f.json").write_text(json.dumps(data))
    fx = load_fixture(tmp_path / "f.json")
    assert fx.user("bob").jid == 12345678901234567
    assert fx.mailboxes["bob"][0].content(fx.base_dir) == b"RIFFdata" and fx.mailboxes["bob"][0].to == "100"
    assert fx.call_logs["bob"][0].extension == "200"
    (tmp_path / "f.toml").write_text('sn = "2Y"\n[[users]]\nlogin = "amy"\npassword = "pw"\next = "101"\njid = 7\nldap = true\n')
    toml = load_fixture(tmp_path / "f.toml")
    assert toml.sn == "2Y" and toml.user("amy").ldap is True


@pytest.mark.parametrize("data, message", [
    ({"users": [{"login": "a", "password": "p", "colour": "red"}]}, "unknown key 'colour'"),
    ({"users": [{"login": "a", "password": "p", "jid": "x"}]}, "users[0].jid"),
    ({"people": []}, "unknown top-level"),
    ({"mailboxes": {"ghost": []}}, "not a user's login"),
    ({"users": [{"login": "a", "password": "p"}], "mailboxes": {"a": [{"mediaType": "Video"}]}}, "mediaType"),
])
def test_bad_fixture_files_name_the_problem(tmp_path: Path, data: dict, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FixtureError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_fixture(path)


def test_unreadable_fixture_is_a_fixture_error(tmp_path: Path) -> None:
    with pytest.raises(FixtureError):
        load_fixture(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(FixtureError):
        load_fixture(tmp_path / "broken.json")


def test_quirk_overrides_convert_and_validate() -> None:
    q = Quirks().with_overrides(["recording_layout=root", "call-log-chunk=5", "monitor_required_for_mail=yes",
                                 "event_gap=0"])
    assert (q.recording_layout, q.call_log_chunk, q.monitor_required_for_mail, q.event_gap) == ("root", 5, True, 0.0)
    for bad in (["nope=1"], ["recording_layout=sideways"], ["call_log_chunk=x"], ["mail_chunk_size=70000"], ["x"]):
        with pytest.raises(QuirkError):
            Quirks().with_overrides(bad)


async def test_cert_fingerprint_matches_what_a_client_sees(start_simulator) -> None:
    sim = await start_simulator()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port, ssl=ctx)
    der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    assert hashlib.sha256(der).hexdigest() == sim.cert_fingerprint
    # the PEM works as a CA file for a verifying client
    verifying = ssl.create_default_context(cadata=sim.cert_pem.decode())
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port, ssl=verifying, server_hostname="localhost")
    writer.close()


async def test_cli_runs_prints_where_it_listens_and_stops_on_sigint(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mxproxy", "simulator", "--port", "0", "--control", "127.0.0.1:0",
        "--fixture", str(DEMO_FIXTURE_PATH), "--quirk", "event_gap=0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 30)).decode() for _ in range(3)]
        assert "listening on 127.0.0.1:" in lines[0]
        assert lines[2].startswith("control API: http://127.0.0.1:")
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_cli_refuses_a_bad_quirk_with_exit_code_2() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mxproxy", "simulator", "--port", "0", "--quirk", "bogus=1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"unknown quirk" in err

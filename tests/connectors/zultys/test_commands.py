"""Command builders and the safe XML layer: exact shapes, escaping, refusal of what XML cannot carry,
redaction of frame logs."""

from __future__ import annotations

import base64
import hashlib
import xml.etree.ElementTree as ET

import pytest

from mxproxy.connectors.base import CallMode, Conference
from mxproxy.connectors.errors import MXBadRequest, MXProtocolError
from mxproxy.connectors.zultys import commands, parsers
from mxproxy.connectors.zultys.client import redact
from mxproxy.connectors.zultys.xml import parse

HOSTILE = [
    "</note><read>true</read><note>",
    "a & b < c > d \" e ' f",
    "<![CDATA[x]]>",
    "&amp;&lt;&#x41;",
    "line1\nline2\r\n\ttab",
    "]]>",
    "Привет 👋",
]


def test_login_request_is_exactly_what_mx_proxy_sends() -> None:
    digest = base64.b64encode(hashlib.sha1(b"78561").digest()).decode()
    assert commands.login("dmitrys", "78561") == (
        '<loginRequest type="User" platform="iPhone" version="7.0" loginCapab="Audio" '
        'mediaCapab="Voicemail|CallRec" push_ntf="false"><userName>dmitrys</userName>'
        f"<pwd>{digest}&#xA;</pwd></loginRequest>")


def test_clear_text_login_sends_the_raw_password_without_newline() -> None:
    root = ET.fromstring(commands.login("carol", "p<w>&d", clear_text=True))
    assert root.findtext("pwd") == "p<w>&d"


def test_an_already_hashed_password_is_sent_unchanged() -> None:
    hashed = commands.password_hash("secret")
    assert commands.looks_hashed(hashed) and not commands.looks_hashed("secret\n")
    assert ET.fromstring(commands.login("u", hashed)).findtext("pwd") == hashed


@pytest.mark.parametrize("text", HOSTILE)
def test_user_text_cannot_change_the_command_structure(text: str) -> None:
    for xml in (commands.mail_note("82", text, None), commands.make_call(text, text),
                commands.assign_device(text), commands.presence("Available", text)):
        root = ET.fromstring(xml)
        leaves = [el for el in root.iter() if len(el) == 0]
        assert all(el.text in (text, "82", None) for el in leaves), xml
    assert ET.fromstring(commands.mail_note("82", text, None)).findtext("note") == text


@pytest.mark.parametrize("text", ["bell\x07", "nul\x00", "esc\x1b[0m", "\ufffe"])
def test_characters_xml_cannot_carry_are_a_bad_request(text: str) -> None:
    with pytest.raises(MXBadRequest):
        commands.mail_note("82", text, None)
    with pytest.raises(MXBadRequest):
        commands.make_call("201", text)


def test_call_control_shapes() -> None:
    assert commands.clear_connection(123, "3095") == (
        "<ClearConnection><connectionToBeCleared><callID>123</callID><deviceID>3095</deviceID>"
        "</connectionToBeCleared></ClearConnection>")
    assert commands.make_call("3095", "79031744437") == (
        '<MakeCall><callingDevice typeOfNumber="deviceID">3095</callingDevice>'
        "<calledDirectoryNumber>79031744437</calledDirectoryNumber></MakeCall>")
    assert commands.recording(True, 18, "sipPhone") == (
        "<StartRecording><Call><callID>18</callID><deviceID>sipPhone</deviceID></Call></StartRecording>")
    assert commands.mail_receive("82", None, next_chunk=True) == (
        "<MailReceiveIncoming><faxSessionID>82</faxSessionID><nextChunk></nextChunk></MailReceiveIncoming>")
    assert commands.call_mode(CallMode(remote=True, device="79031744445")) == (
        '<iq type="set" id="mode" mode="remote" ringdelay="1" vmdelay="30"><address>79031744445</address></iq>')
    assert commands.call_log(None) == '<iq type="get" id="calllog" timestamp="-1"></iq>'


def test_conference_commands_carry_all_twelve_fields() -> None:
    root = ET.fromstring(commands.create_conference(Conference(name="Weekly", owner_id=7, access_id=47281964)))
    assert [el.tag for el in root] == ["confId", "ownerId", "name", "accessId", "description", "type", "startDate",
                                       "duration", "waitForOwner", "delOnOwnerLeave", "ws", "wsType"]
    assert root.findtext("waitForOwner") == "false" and root.findtext("accessId") == "47281964"


def test_redaction_removes_passwords_and_softphone_secrets_and_shortens_audio() -> None:
    login = commands.login("dmitrys", "78561").encode()
    text = redact(login)
    assert commands.password_hash("78561").strip() not in text and "[redacted]" in text
    reply = b'<loginResponce Code="0" softPhonePwd="yTEu334X" ext="1">Login OK</loginResponce>'
    assert "yTEu334X" not in redact(reply)
    audio = base64.b64encode(b"\x01" * 3000)
    shortened = redact(b"<r><mediaContent>" + audio + b"</mediaContent></r>")
    assert len(shortened) < 120 and "bytes" in shortened


def test_parse_refuses_an_entity_bomb_without_expanding_it() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10) for i in range(1, 10))
            + b']><lolz>&lol9;</lolz>')
    with pytest.raises(MXProtocolError):
        parse(bomb)


@pytest.mark.parametrize("payload", [
    b"<x>&ext;</x>",
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>',
    "<?xml version='1.0' encoding='UTF-16'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>".encode("utf-16"),
    b"<unclosed",
    b"x" * 70000,
])
def test_parse_refuses_unsafe_or_malformed_xml(payload: bytes) -> None:
    with pytest.raises(MXProtocolError):
        parse(payload)


def test_parse_strips_namespaces_and_accepts_a_prolog() -> None:
    root = parse(b'<?xml version="1.0" encoding="utf-8"?><CSTAErrorCode xmlns="http://www.ecma-international.org/'
                 b'standards/ecma-323/csta/ed4"><operation>invalidCallIdentifier</operation></CSTAErrorCode>')
    assert root.tag == "CSTAErrorCode"
    assert parsers.csta_error_text(root) == "invalidCallIdentifier"


def test_login_code_is_read_case_insensitively() -> None:
    assert parsers.login_code(parse(b'<loginFailed Code="4" apiversion="11">LDAP</loginFailed>')) == 4
    assert parsers.login_code(parse(b'<loginFailed code="2">bad</loginFailed>')) == 2


def test_bad_base64_in_a_voicemail_chunk_is_a_protocol_error() -> None:
    el = parse(b'<MailReceiveIncomingResponse mailId="1" chunkNumber="1" totalChunks="1">'
               b"<mediaContent>not*base64!</mediaContent></MailReceiveIncomingResponse>")
    with pytest.raises(MXProtocolError):
        parsers.mail_chunk(el)


def test_recording_state_reads_the_call_at_the_root_or_under_connection() -> None:
    root_form = parse(b"<RecordingStateEvent><callID>18</callID><deviceID>199</deviceID>"
                      b"<RecIsAvailable>true</RecIsAvailable><RecIsActive>1</RecIsActive></RecordingStateEvent>")
    conn_form = parse(b"<RecordingStateEvent><connection><callID>18</callID><deviceID>199</deviceID></connection>"
                      b"<RecIsAvailable>true</RecIsAvailable><RecIsActive>false</RecIsActive></RecordingStateEvent>")
    a, b = parsers.recording_state(root_form), parsers.recording_state(conn_form)
    assert (a.call_id, a.device_id, a.active) == (18, "199", True)
    assert (b.call_id, b.device_id, b.active) == (18, "199", False)

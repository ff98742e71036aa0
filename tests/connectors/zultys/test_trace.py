"""CSTA trace lines: secrets and audio never written, pseudonyms consistent across frames."""

from __future__ import annotations

import base64

from mxproxy.connectors.zultys.trace import Pseudonyms, redact_for_trace


def test_passwords_and_audio_are_redacted_and_the_audio_stays_valid_base64() -> None:
    audio = base64.b64encode(b"secret voice" * 10).decode()
    xml = redact_for_trace(f'<x softPhonePwd="s3cr3t"><pwd>hunter2&#xA;</pwd><mediaContent>{audio}</mediaContent></x>')
    assert "hunter2" not in xml and "s3cr3t" not in xml and audio not in xml
    body = xml.split("<mediaContent>")[1].split("</mediaContent>")[0]
    assert len(body) == len(audio) and base64.b64decode(body) == bytes(len(base64.b64decode(audio)))


def test_pseudonyms_are_consistent_between_commands_and_replies() -> None:
    names = Pseudonyms()
    out = redact_for_trace("<MakeCall><callingDevice>3095</callingDevice>"
                           "<calledDirectoryNumber>+15125550136</calledDirectoryNumber></MakeCall>", names)
    back = redact_for_trace('<ablist><abentry jid="43884851428118509"><firstName>Peter</firstName>'
                            "<businessPhone>3095</businessPhone><cellPhone>+15125550136</cellPhone>"
                            '<email>peterh@xyzrd.com</email></abentry><mail from="3095" fromName="Peter"/></ablist>',
                            names)
    assert "3095" not in out + back and "5550136" not in out + back and "Peter" not in back and "xyzrd" not in back
    caller = out.split("<callingDevice>")[1].split("<")[0]
    assert f"<businessPhone>{caller}</businessPhone>" in back and f'from="{caller}"' in back and len(caller) == 4
    assert 'jid="43884851428118509"' in back  # ids are not personal: kept, so replies still match
    first = back.split("<firstName>")[1].split("<")[0]
    assert f'fromName="{first}"' in back

"""MX Proxy JSON item shapes: omit-empty rules, exact 64-bit ids, key order."""

from __future__ import annotations

from mxproxy.api.render import (
    call_log_entry_json,
    conference_json,
    contact_json,
    contacts_json,
    dumps,
    service_json,
    voicemail_json,
)
from mxproxy.connectors.base import (
    CallLogEntry,
    Conference,
    Contact,
    Service,
    Voicemail,
)

BIG = 43884851147406145  # > 2**53: a float would change it


def test_contact_omits_empty_fields_but_keeps_names_and_ext() -> None:
    assert contact_json(Contact(jid=BIG, first_name="A", last_name="", ext="3095")) == {
        "jid": str(BIG), "firstName": "A", "lastName": "", "ext": "3095"}
    full = contact_json(Contact(jid=1, ext="1", home_system=BIG, did="5", exchange_id="x", presence="Available"))
    assert full["homeSystem"] == str(BIG) and "presence" not in full


def test_contacts_sorted_by_extension_string() -> None:
    out = contacts_json([Contact(jid=2, ext="3099"), Contact(jid=1, ext="3010"), Contact(jid=3, ext="*86")])
    assert [c["ext"] for c in out] == ["*86", "3010", "3099"]


def test_call_log_entry_always_has_missed_and_maps_extension_to_ext() -> None:
    out = call_log_entry_json(CallLogEntry(record_id=BIG, direction="outgoing", extension="3044"))
    assert out["missed"] is False and out["ext"] == "3044" and out["record_id"] == BIG
    assert "connectTimestamp" not in out and "callType" not in out


def test_ids_survive_json_exactly() -> None:
    assert str(BIG).encode() in dumps({"x": BIG})
    assert dumps({"a": []}) == b'{\n    "a": []\n}\n'


def test_service_and_voicemail_shapes() -> None:
    assert service_json(Service(id=BIG, name="vm", type="VM", ext="*86")) == {
        "id": str(BIG), "name": "vm", "type": "VM", "ext": "*86"}
    vm = voicemail_json(Voicemail(mail_id="82", sender="3095", to="3095", owner_type="user", received=5))
    assert list(vm) == ["from", "to", "ownerType", "id", "mediaType", "received"]
    assert vm["mediaType"] == "VoiceMail"


def test_conference_keeps_capital_id_and_numeric_owner() -> None:
    out = conference_json(Conference(conf_id="5", owner_id=BIG, name="c"))
    assert list(out)[:2] == ["Id", "ownerId"] and out["ownerId"] == BIG and "description" not in out


def _stdlib(data: object) -> bytes:
    import json

    return (json.dumps(data, indent=4, ensure_ascii=False) + "\n").encode("utf-8")


def test_fast_dumps_writes_exactly_what_the_standard_library_writes() -> None:
    shapes: list[object] = [
        {}, [], "", 0, -1, True, False, None, BIG, 2**63 - 1, -(2**63), 2**70,
        {"a": {}, "b": [], "c": [[], {}], "d": [1, [2, [3]]], "e": None},
        {"text": 'quote " backslash \\ newline \n tab \t nul \x00 del \x7f', "ünï": "кириллица ✓ 😀"},
        ("tuple", 1), [{"x": True, "y": False}, {"z": [None]}],
        {"contacts": [contact_json(Contact(jid=BIG + i, first_name=f"P{i}", ext=str(3000 + i))) for i in range(5)]},
    ]
    for data in shapes:
        assert dumps(data) == _stdlib(data), data


def test_dumps_leaves_floats_and_non_string_keys_to_the_standard_library() -> None:
    for data in [{"f": 1.5, "n": float("nan")}, {1: "int key", None: "none key"}, [0.1, -0.0]]:
        assert dumps(data) == _stdlib(data)


def test_dumps_refuses_unknown_types_like_the_standard_library() -> None:
    import pytest

    with pytest.raises(TypeError):
        dumps({"x": object()})

"""``TypeFilter``: ``?types=`` of SSE and a webhook's ``events``."""

from __future__ import annotations

import pytest

from mxproxy.events.filters import TypeFilter
from mxproxy.events.model import CALL_TYPES, EVENT_TYPES


@pytest.mark.parametrize("text, expected", [
    ("call.*,voicemail.new", [*CALL_TYPES, "voicemail.new"]),
    ("voicemail.read", ["voicemail.read"]),
    (" presence.changed , contacts.changed ", ["presence.changed", "contacts.changed"]),
    ("*", list(EVENT_TYPES)),
    ("", list(EVENT_TYPES)),
    (None, list(EVENT_TYPES)),
    ("voicemail.*,voicemail.new", ["voicemail.new", "voicemail.read"]),
])
def test_parse_chooses_the_named_types_and_groups(text: str | None, expected: list[str]) -> None:
    chosen = TypeFilter.parse(text)
    assert chosen.names() == expected
    assert [t for t in EVENT_TYPES if chosen(t)] == expected


@pytest.mark.parametrize("text, named", [
    ("call.*,voicemail.neu", "'voicemail.neu'"),
    ("Call.ringing", "'Call.ringing'"),
    ("calls.*", "'calls.*'"),
    ("call.ringing,bogus,other", "'bogus', 'other'"),
])
def test_parse_refuses_unknown_types_naming_them(text: str, named: str) -> None:
    with pytest.raises(ValueError) as err:
        TypeFilter.parse(text)
    assert f"unknown event type {named} (" in str(err.value)


def test_of_takes_a_webhook_list_and_an_empty_one_means_every_type() -> None:
    assert TypeFilter.of(["call.ringing", "call.ended"]).names() == ["call.ringing", "call.ended"]
    assert TypeFilter.of([]).everything
    assert not TypeFilter.of(["call.ended"])("call.ringing")

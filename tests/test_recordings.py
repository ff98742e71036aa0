"""The per-user recordings list fed by MailIncomingReady events."""

from __future__ import annotations

from mxproxy.connectors.base import MailIncomingReady
from mxproxy.recordings import RecordingList


def test_only_recordings_are_kept_oldest_first_and_can_be_updated_and_removed() -> None:
    rec = RecordingList()
    rec.observe(MailIncomingReady(mail_id="7", media_type="Recording", received=200, sender="3044"))
    rec.observe(MailIncomingReady(mail_id="5", media_type="Recording", received=100))
    rec.observe(MailIncomingReady(mail_id="6", media_type="VoiceMail", received=150))
    assert [v.mail_id for v in rec.list()] == ["5", "7"]
    updated = rec.update("7", read=True, note="hi")
    assert updated is not None and updated.read and updated.note == "hi" and updated.sender == "3044"
    assert rec.update("nope", read=True) is None
    assert rec.remove("5") and not rec.remove("5")
    assert [v.mail_id for v in rec.list()] == ["7"]


def test_list_is_bounded() -> None:
    rec = RecordingList(limit=3)
    for i in range(5):
        rec.observe(MailIncomingReady(mail_id=str(i), media_type="Recording", received=i))
    assert [v.mail_id for v in rec.list()] == ["2", "3", "4"]

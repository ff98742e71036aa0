"""Call-log completion rules (docs/architecture.md, "Call-log completion")."""

from mxproxy.connectors.zultys.calllog import CallLogCompletion


def test_short_chunk_ends_the_log_at_once() -> None:
    c = CallLogCompletion(chunk_size=21, idle=1.0, first_timeout=7.0)
    assert c.wait_time() == 7.0
    assert not c.add(21)
    assert c.wait_time() == 1.0
    assert c.add(20) and c.ended_by == "short-chunk" and c.records == 41


def test_empty_chunk_is_an_end_marker() -> None:
    c = CallLogCompletion()
    assert not c.add(21)
    assert c.add(0) and c.records == 21


def test_idle_gap_after_a_full_chunk_ends_the_log() -> None:
    c = CallLogCompletion(chunk_size=21, idle=0.5)
    c.add(21)
    c.add(21)
    c.timed_out()
    assert c.done and c.ended_by == "idle-gap" and c.records == 42


def test_no_reply_at_all_is_an_empty_log() -> None:
    c = CallLogCompletion()
    c.timed_out()
    assert c.done and c.ended_by == "no-reply" and c.records == 0


def test_chunk_size_is_configurable() -> None:
    c = CallLogCompletion(chunk_size=5)
    assert not c.add(5)
    assert c.add(4)

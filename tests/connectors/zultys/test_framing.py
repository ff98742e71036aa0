"""Frame codec (spec §1.2–§1.4): round trips, split reads, size limits, bad headers, invoke ids."""

from __future__ import annotations

import asyncio

import pytest

from mxproxy.connectors.zultys.framing import (
    KEEPALIVE_FRAME,
    MAX_PAYLOAD,
    FrameDecoder,
    FrameError,
    InvokeIds,
    decode_header,
    encode_frame,
    read_frame,
)
from tests.rawcsta import build_frame


def test_encoded_frame_matches_an_independent_encoder() -> None:
    payload = "<MonitorStart><monitorObject><deviceObject>3095</deviceObject></monitorObject></MonitorStart>"
    assert encode_frame(42, payload) == build_frame(42, payload)
    assert encode_frame(42, payload)[4:8] == b"0042"


def test_keepalive_frame_is_the_fixed_21_bytes() -> None:
    assert KEEPALIVE_FRAME == build_frame(0, "<keepalive />") and len(KEEPALIVE_FRAME) == 21


def test_utf8_payload_length_counts_bytes_not_characters() -> None:
    frame = encode_frame(1, "<note>Привет</note>")
    assert int.from_bytes(frame[2:4], "big") == len(frame)
    assert decode_header(frame[:8]) == (len(frame) - 8, 1)


async def test_read_frame_round_trips_frames_split_at_every_byte() -> None:
    frames = [encode_frame(i, f"<x n='{i}'>{'y' * i}</x>") for i in (1, 2, 9998)] + [encode_frame(9999, b"")]
    data = b"".join(frames)
    reader = asyncio.StreamReader()

    async def feed() -> None:
        for i in range(len(data)):
            reader.feed_data(data[i:i + 1])
            await asyncio.sleep(0)
        reader.feed_eof()

    feeder = asyncio.create_task(feed())
    got = [await read_frame(reader) for _ in frames]
    await feeder
    assert [(f.invoke_id, f.payload) for f in got] == [
        (1, b"<x n='1'>y</x>"), (2, b"<x n='2'>yy</x>"), (9998, f"<x n='9998'>{'y' * 9998}</x>".encode()), (9999, b"")]
    with pytest.raises(asyncio.IncompleteReadError):
        await read_frame(reader)


def test_incremental_decoder_handles_split_and_coalesced_chunks() -> None:
    data = encode_frame(7, "<a/>") + encode_frame(9999, "<b/>")
    decoder = FrameDecoder()
    assert decoder.feed(data[:5]) == []
    got = decoder.feed(data[5:15]) + decoder.feed(data[15:])
    assert [(f.invoke_id, f.payload) for f in got] == [(7, b"<a/>"), (9999, b"<b/>")]
    assert decoder.pending == 0


def test_payload_at_the_limit_is_sent_and_one_byte_more_is_refused() -> None:
    assert len(encode_frame(1, b"x" * MAX_PAYLOAD)) == 65535
    with pytest.raises(FrameError):
        encode_frame(1, b"x" * (MAX_PAYLOAD + 1))


@pytest.mark.parametrize("header", [
    b"\x00\x00\x00\x10AB12",  # non-digit invoke id
    b"\x00\x00\x00\x0812 4",  # space inside the id
    b"\x00\x00\x00\x040001",  # length shorter than the header
    b"\x00\x00\x00",  # short header
])
def test_malformed_headers_are_rejected(header: bytes) -> None:
    with pytest.raises(FrameError):
        decode_header(header)


def test_invoke_ids_out_of_range_are_refused() -> None:
    with pytest.raises(FrameError):
        encode_frame(10000, "<x/>")


def test_invoke_ids_count_up_and_wrap_after_9998_to_1() -> None:
    ids = InvokeIds(9996)
    assert [ids.next(set()) for _ in range(4)] == [9997, 9998, 1, 2]


def test_invoke_id_wrap_skips_ids_still_pending() -> None:
    ids = InvokeIds(9997)
    pending = {9998, 1, 3}
    assert [ids.next(pending) for _ in range(3)] == [2, 4, 5]


def test_invoke_ids_never_hand_out_9999_or_0() -> None:
    ids = InvokeIds()
    seen = {ids.next(()) for _ in range(20000)}
    assert seen == set(range(1, 9999))


def test_all_ids_pending_is_an_error_not_a_hang() -> None:
    with pytest.raises(FrameError):
        InvokeIds().next(set(range(1, 9999)))

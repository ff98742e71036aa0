"""An MX answer larger than one CSTA frame (hundreds of conferences) written with its 16-bit
length wrapped (simulator quirk ``oversized_answer=wrap``): taken whole up to ``MAX_ANSWER``,
beyond it a clear ``MXAnswerTooLarge`` for that command only — never a timeout, and the session
stays in step for the next command."""

from __future__ import annotations

import pytest

from mxproxy.connectors.errors import MXAnswerTooLarge
from mxproxy.connectors.zultys.client import MAX_ANSWER, closes_its_root, is_frame_header
from mxproxy.simulator import Conference as SimConference
from mxproxy.simulator import Quirks
from tests.connectors.zultys.conftest import small_world

CONF_BYTES = 330  # about what one <conf> of the simulator's list takes on the wire


def world_with_conferences(count: int):  # type: ignore[no-untyped-def]
    fx = small_world()
    fx.conferences.extend(SimConference(conf_id=str(i), owner_id=43884851147406145, name=f"Conference {i:05d}",
                                        access_id=10_000_000 + i, description="d" * 120) for i in range(count))
    return fx


@pytest.mark.parametrize("count", [250, 1200])  # one wrap, several wraps
async def test_a_conference_list_over_one_frame_is_read_whole(start_simulator, connect, count: int) -> None:
    sim = await start_simulator(world_with_conferences(count), quirks=Quirks(oversized_answer="wrap"))
    session = await connect(sim, response_timeout=5.0)
    conferences = await session.conferences()
    assert len(conferences) == count
    assert conferences[-1].name == f"Conference {count - 1:05d}"
    assert await session.conference_server_info() is not None  # still in step


async def test_an_answer_over_the_limit_fails_its_command_clearly_and_the_session_goes_on(
        start_simulator, connect) -> None:
    count = MAX_ANSWER // CONF_BYTES + 500
    sim = await start_simulator(world_with_conferences(count), quirks=Quirks(oversized_answer="wrap"))
    session = await connect(sim, response_timeout=10.0)
    with pytest.raises(MXAnswerTooLarge, match="larger than 1048576 bytes"):
        await session.conferences()
    assert await session.conference_server_info() is not None


@pytest.mark.parametrize(("payload", "closed"), [
    (b"<a/>", True), (b"<a>x</a>  \n", True), (b'<?xml version="1.0"?>\n<ConfList><conf/></ConfList>', True),
    (b"<keepalive />", True), (b"", True), (b"<ConfList><conf>", False), (b"<ConfList><conf/></Conf", False),
])
def test_closes_its_root_tells_a_whole_message_from_a_first_part(payload: bytes, closed: bool) -> None:
    assert closes_its_root(payload) is closed


def test_xml_text_is_never_taken_for_a_frame_header() -> None:
    assert is_frame_header(b"\x00\x00\x00\x150042")
    assert not is_frame_header(b"<conf><n")
    assert not is_frame_header(b"\x00\x00\x00\x040042")  # shorter than its header

"""Framing: length-prefixed frames over a trio stream."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mesh.net.framing import Frame, FrameError, FramedStream, FrameType, LineStream, encode


async def test_round_trip_over_a_socket_pair():
    left, right = trio.testing.lockstep_stream_pair()
    a, b = FramedStream(left), FramedStream(right)
    sent = [
        Frame(type=FrameType.ACCEPT),
        Frame(type=FrameType.HEARTBEAT, body={"seq": 1}),
        Frame(type=FrameType.ALERT, body={"text": "port scan", "id": "a-1"}),
    ]
    got = []
    async with trio.open_nursery() as nursery:

        async def reader():
            for _ in sent:
                got.append(await b.receive())

        nursery.start_soon(reader)
        for frame in sent:
            await a.send(frame)
    assert got == sent
    await a.aclose()
    assert await b.receive() is None


async def test_frames_split_across_reads_and_many_in_one_read():
    left, right = trio.testing.memory_stream_pair()
    b = FramedStream(right)
    data = encode(Frame(type=FrameType.REPLICATE, body={"n": 1})) + encode(
        Frame(type=FrameType.FORWARD, body={"n": 2})
    )
    for i in range(len(data)):
        await left.send_all(data[i : i + 1])
    assert (await b.receive()).body == {"n": 1}
    assert (await b.receive()).type is FrameType.FORWARD


async def test_oversized_frame_refused_before_reading_it():
    left, right = trio.testing.memory_stream_pair()
    b = FramedStream(right, max_frame=16)
    await left.send_all((1 << 20).to_bytes(4, "big"))
    with pytest.raises(FrameError, match="limit is 16"):
        await b.receive()
    with pytest.raises(FrameError, match="exceeds"):
        encode(Frame(type=FrameType.ALERT, body={"text": "x" * 100}), max_frame=16)


@pytest.mark.parametrize(
    "payload, problem",
    [
        (b"\x63{}", "unknown frame type"),
        (b"\x03not json", "not JSON"),
        (b"\x03[1]", "not a JSON object"),
    ],
)
async def test_garbage_is_a_frame_error(payload, problem):
    left, right = trio.testing.memory_stream_pair()
    await left.send_all(len(payload).to_bytes(4, "big") + payload)
    with pytest.raises(FrameError, match=problem):
        await FramedStream(right).receive()


async def test_eof_mid_frame():
    left, right = trio.testing.memory_stream_pair()
    await left.send_all(b"\x00\x00\x00\x09\x03{")
    await left.aclose()
    with pytest.raises(FrameError, match="middle of a frame"):
        await FramedStream(right).receive()


def test_only_verdicts_and_a_decline_are_not_application_traffic():
    assert {t for t in FrameType if not t.is_application} == {
        FrameType.ACCEPT,
        FrameType.REFUSE,
        FrameType.DECLINE,
    }


async def test_line_stream_writes_json_lines_and_drains_input():
    left, right = trio.testing.memory_stream_pair()
    lines = LineStream(left)
    await lines.send(Frame(type=FrameType.FORWARD, body={"text": "scan"}))
    assert await right.receive_some(1024) == b'{"type":"forward","text":"scan"}\n'
    await right.send_all(b"anything at all")
    await right.aclose()
    assert await lines.receive() is None
    with pytest.raises(FrameError, match="exceeds"):
        await LineStream(left, max_frame=8).send(Frame(type=FrameType.ALERT, body={"t": "xx"}))

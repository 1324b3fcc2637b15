"""``close_now``: trio.aclose_forcefully's promise, with a fast path for sockets."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mesh.net.close_now import close_now


async def test_a_socket_is_closed_at_once_and_the_cancellation_is_not_raised():
    a, b = trio.socket.socketpair()
    stream = trio.SocketStream(a)
    with trio.CancelScope() as scope:
        scope.cancel()
        await close_now(stream)  # in a cancelled scope: returns, as a cleanup must
        assert a.fileno() == -1
        await trio.lowlevel.checkpoint()  # still cancelled: this one raises
    assert scope.cancelled_caught
    with pytest.raises(trio.ClosedResourceError):
        await stream.send_all(b"x")
    await close_now(stream)  # again: nothing to do, no error
    b.close()


async def test_any_other_stream_goes_to_trios_forceful_close():
    left, right = trio.testing.memory_stream_pair()
    await close_now(left)
    with pytest.raises(trio.ClosedResourceError):
        await left.send_all(b"x")
    assert await right.receive_some() == b""

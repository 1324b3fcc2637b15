"""serve_listener: one task per listener, handlers in the caller's nursery, streams closed."""

from __future__ import annotations

import errno

import pytest
import trio
import trio.testing

from mesh.net.accepting import serve_listener


async def test_each_connection_is_handled_in_the_given_nursery_and_closed_after():
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    served: list[bytes] = []

    async def echo_once(stream: trio.SocketStream) -> None:
        data = await stream.receive_some(100)
        served.append(data)
        await stream.send_all(data.upper())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_listener, listeners[0], echo_once, nursery)
        for word in (b"one", b"two"):
            client = await trio.open_tcp_stream("127.0.0.1", port)
            await client.send_all(word)
            assert await client.receive_some(100) == word.upper()
            assert await client.receive_some(100) == b""  # the server side closed it
            await client.aclose()
        # Only the listener's own task runs once the handlers are done.
        await trio.testing.wait_all_tasks_blocked()
        assert [t.name.rsplit(".", 1)[-1] for t in nursery.child_tasks] == ["serve_listener"]
        nursery.cancel_scope.cancel()
    assert served == [b"one", b"two"]


class _Failing(trio.abc.Listener[trio.SocketStream]):
    """A real listener whose first ``failures`` accepts fail with ``errno``."""

    def __init__(self, inner: trio.SocketListener, code: int, failures: int) -> None:
        self.inner, self.code, self.failures = inner, code, failures

    async def accept(self) -> trio.SocketStream:
        if self.failures:
            self.failures -= 1
            await trio.lowlevel.checkpoint()
            raise OSError(self.code, "accept failed")
        return await self.inner.accept()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_running_out_of_descriptors_is_reported_and_accepting_goes_on(autojump_clock):
    (inner,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = _Failing(inner, errno.EMFILE, 2)
    heard: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_listener, listener, lambda s: trio.lowlevel.checkpoint(), nursery,
                           lambda exc: heard.append(exc.errno))
        while len(heard) < 2:
            await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert heard == [errno.EMFILE, errno.EMFILE]


async def test_any_other_accept_error_ends_the_loop():
    (inner,) = await trio.open_tcp_listeners(0, host="127.0.0.1")
    with pytest.raises(ExceptionGroup) as info:
        async with trio.open_nursery() as nursery:
            await serve_listener(_Failing(inner, errno.EINVAL, 1),
                                 lambda s: trio.lowlevel.checkpoint(), nursery)
    (error,) = info.value.exceptions
    assert isinstance(error, OSError) and error.errno == errno.EINVAL

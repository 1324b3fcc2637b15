"""A long-running mesh command on a host of a run: the CRL server, the CRL proxy.

Such a command says when it is ready with one line on its standard output
(``mesh: serving ...``, ``mesh: proxying ...``); :meth:`HostService.launch`
starts it with ``ip netns exec`` and returns once that line came, so nothing
is probed and no sleep guesses. It keeps what the command printed, so a
command that exits first is one line with its last words.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Iterator

import trio

from mesh.errors import InputError
from mesh.hosts.netns import Host
from mesh.parent_watch import for_child

__all__ = ["HostService"]


class HostService:
    """One command running in ``host``'s namespace, its lines kept as they come."""

    def __init__(self, host: Host, nursery: trio.Nursery, *, what: str, timeout: float) -> None:
        self.host = host
        self.nursery = nursery
        #: For messages: "mesh crl serve".
        self.what = what
        self.timeout = timeout
        self.process: trio.Process | None = None
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = trio.Event()

    async def launch(self, argv: list[str], ready: str) -> None:
        """Run ``argv`` on the host; return once a line starting with ``ready`` came.

        Raises:
            InputError: it exited first, or said nothing within ``timeout``
                seconds (one line, with its last words).
        """
        env, fds = for_child({**os.environ, "PYTHONUNBUFFERED": "1"})  # ends if we are killed
        process = await trio.lowlevel.open_process(
            ["ip", "netns", "exec", self.host.namespace, *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, pass_fds=fds,
        )
        self.process = process
        self.stdout, self.stderr = [], []
        assert process.stdout is not None and process.stderr is not None
        self.nursery.start_soon(self._read, process.stdout, self.stdout)
        self.nursery.start_soon(self._read, process.stderr, self.stderr)
        with self.within(f"did not say {ready!r}"):
            while not any(line.startswith(ready) for line in self.stdout):
                if process.returncode is not None:
                    await process.wait()
                    self.process = None
                    said = self.stderr[-1] if self.stderr else f"exit status {process.returncode}"
                    raise InputError(f"{self.what} on {self.host.name}", "exited before it was ready",
                                     said)
                await self.changed()

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            if process.returncode is None:
                process.terminate()
            await process.wait()

    async def changed(self) -> None:
        """Return at the next line either stream brings (or at their end)."""
        await self._changed.wait()

    @contextlib.contextmanager
    def within(self, problem: str) -> Iterator[None]:
        """At most ``timeout`` seconds, or one line naming ``problem``."""
        try:
            with trio.fail_after(self.timeout):
                yield
        except trio.TooSlowError:
            raise InputError(f"{self.what} on {self.host.name}",
                             f"{problem} within {self.timeout:g} s",
                             self.stderr[-1] if self.stderr else "") from None

    async def _read(self, stream: trio.abc.ReceiveStream, into: list[str]) -> None:
        buffer = b""
        async for chunk in stream:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            into.extend(line.decode(errors="replace") for line in lines)
            self._poke()
        self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

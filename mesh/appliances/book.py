"""Every link record of a mesh (or of one ``mesh node``), and news that one changed.

``Mesh.settle`` waits on :meth:`LinkBook.wait_changed` instead of sleeping:
every change to a link record is followed by :meth:`LinkBook.touch`.
"""

from __future__ import annotations

from typing import Iterator

import trio

from mesh.appliances.link_state import Link

__all__ = ["LinkBook"]


class LinkBook:
    """Every link record, by (dialer, listener); wakes waiters on any change."""

    def __init__(self) -> None:
        self._links: dict[tuple[str, str], Link] = {}
        self._changed = trio.Event()

    def get(self, dialer: str, listener: str, *, mutual: bool = True) -> Link:
        key = (dialer, listener)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = Link(dialer=dialer, listener=listener, mutual=mutual)
        return link

    def find(self, dialer: str, listener: str) -> Link | None:
        return self._links.get((dialer, listener))

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._links.values()))

    def touch(self) -> None:
        """Something changed: wake every :meth:`wait_changed`."""
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def wait_changed(self) -> None:
        await self._changed.wait()

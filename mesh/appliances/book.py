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
        #: Each appliance's links, either end: a console of 5,000 sensors
        #: stopping (or reporting its status) must not walk every link of the mesh.
        self._by_end: dict[str, list[Link]] = {}
        self._changed = trio.Event()
        #: Changes so far (each :meth:`touch`): lets a waiter batch them.
        self.touches = 0

    def get(self, dialer: str, listener: str, *, mutual: bool = True) -> Link:
        key = (dialer, listener)
        link = self._links.get(key)
        if link is None:
            link = self._links[key] = Link(dialer=dialer, listener=listener, mutual=mutual)
            for end in dict.fromkeys(key):
                self._by_end.setdefault(end, []).append(link)
        return link

    def of(self, name: str) -> list[Link]:
        """The links ``name`` dials or answers, oldest first."""
        return list(self._by_end.get(name, ()))

    def find(self, dialer: str, listener: str) -> Link | None:
        return self._links.get((dialer, listener))

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._links.values()))

    def touch(self) -> None:
        """Something changed: wake every :meth:`wait_changed`."""
        self.touches += 1
        changed, self._changed = self._changed, trio.Event()
        changed.set()

    async def wait_changed(self) -> None:
        await self._changed.wait()

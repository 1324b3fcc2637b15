"""The book of link records wakes whoever waits for a change."""

from __future__ import annotations

import trio
import trio.testing

from mesh.appliances.book import LinkBook


async def test_link_book_keeps_one_record_per_pair_and_wakes_waiters():
    book = LinkBook()
    link = book.get("s", "c", mutual=False)
    assert book.get("s", "c") is link and book.find("c", "s") is None
    assert (list(book), link.mutual) == ([link], False)
    woke = []

    async def waiter():
        await book.wait_changed()
        woke.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert woke == []
        book.touch()
    assert woke == [True]

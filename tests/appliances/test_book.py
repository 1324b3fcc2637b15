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


def test_each_appliance_finds_its_own_links():
    book = LinkBook()
    ab, cb, aa = book.get("a", "b"), book.get("c", "b"), book.get("a", "a")
    assert book.of("b") == [ab, cb]
    assert book.of("a") == [ab, aa]  # a link to itself is listed once
    assert book.of("c") == [cb] and book.of("nobody") == []
    assert book.get("a", "b") is ab and book.of("b") == [ab, cb]  # found again, not re-listed

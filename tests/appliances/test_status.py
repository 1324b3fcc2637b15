"""Snapshots of a link and of an appliance, as a person reads them."""

from __future__ import annotations

from mesh.appliances.link_state import Link, LinkState
from mesh.appliances.status import LinkStatus


def test_a_new_link_is_connecting_and_counts_what_each_end_received():
    link = Link(dialer="s", listener="c")
    link.received["c"] += 2
    link.received["s"] += 1
    status = LinkStatus.of(link)
    assert (status.state, status.delivered, status.code, status.attempts) == (
        LinkState.CONNECTING, 3, None, 0
    )
    assert status.line() == "s -> c: connecting, 3 delivered"

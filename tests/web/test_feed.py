"""Which events an appliance's console lists, and how its pages keep stream positions."""

from __future__ import annotations

import datetime as dt

import pytest

from mesh.errors import FailureCode
from mesh.events import (
    CertificateRevoked,
    ClockAdvanced,
    CrlServerChanged,
    LinkHalted,
    MessageDelivered,
    ValidationSwitched,
)
from mesh.web.feed import concerns, event_page

AT = dt.datetime(2027, 1, 15, 9, tzinfo=dt.timezone.utc)
CM, S1, S2 = "cm", "s1", "s2"

HALTED = LinkHalted(at=AT, dialer=S1, listener=CM, refused_by=CM, code=FailureCode.REVOKED)
REVOKED = CertificateRevoked(at=AT, appliance=S1)
DELIVERED = MessageDelivered(at=AT, dialer=S2, listener=CM, sender=CM, receiver=S2,
                             message="alert", delivered=1)
CLOCK = ClockAdvanced(at=AT, delta=dt.timedelta(days=1), previous=AT)
CRL_SERVER = CrlServerChanged(at=AT, state="down", address="http://127.0.0.1:8099")


@pytest.mark.parametrize(
    "event, names",
    [
        (HALTED, {CM, S1}),          # dialer, listener, refused_by
        (REVOKED, {S1}),             # appliance: the revoked one's own event
        (DELIVERED, {CM, S2}),       # sender, receiver
        (CLOCK, {CM, S1, S2}),       # no appliance named: the whole mesh's
        (CRL_SERVER, {CM, S1, S2}),
    ],
)
def test_an_event_concerns_the_appliances_it_names(event, names):
    for name in (CM, S1, S2):
        assert concerns(event, name) is (name in names), name
        assert concerns(event.as_dict(), name) is (name in names), name  # as a node sends it


class Stream:
    """A backend's event stream: positions count from 0, the oldest ``dropped`` are gone."""

    name = CM

    def __init__(self, events, dropped=0):
        self.log, self.dropped = list(events), dropped

    def events_since(self, index):
        return self.log[max(index - self.dropped, 0):]

    def events_first(self):
        return self.dropped


def _switch(name, enabled=False):
    return ValidationSwitched(at=AT, appliance=name, enabled=enabled)


# Positions: 0 S1's, 1 CM's, 2 the whole mesh's, 3 S1's, 4 CM's (with S1), 5 S2's.
STREAM = [_switch(S1), _switch(CM), CLOCK, REVOKED, HALTED, _switch(S2)]


def _page(stream, since, limit=1000):
    page = event_page(stream, since=since, limit=limit)
    return page["since"], page["next"], page["dropped"], [e["kind"] for e in page["events"]]


@pytest.mark.parametrize(
    "since, limit, answer",
    [
        (0, 1000, (0, 6, 0, ["validation-switched", "clock-advanced", "link-halted"])),
        # A full page stops at the next event it would list; events that do not
        # concern the appliance are passed over on the way, never listed later.
        (0, 1, (0, 2, 0, ["validation-switched"])),
        (2, 1, (2, 4, 0, ["clock-advanced"])),
        (4, 1, (4, 6, 0, ["link-halted"])),
        (3, 1000, (3, 6, 0, ["link-halted"])),
        (5, 1000, (5, 6, 0, [])),
        (6, 1000, (6, 6, 0, [])),
    ],
)
def test_pages_count_positions_in_the_whole_stream(since, limit, answer):
    assert _page(Stream(STREAM), since, limit) == answer


def test_dropped_counts_positions_no_longer_kept_whoever_they_concerned():
    stream = Stream(STREAM[3:], dropped=3)
    assert _page(stream, 0) == (0, 6, 3, ["link-halted"])
    assert _page(stream, 4) == (4, 6, 0, ["link-halted"])

"""An appliance's ends of its links: who owns a record, and where the machine's news goes."""

from __future__ import annotations

from mesh.appliances.book import LinkBook
from mesh.appliances.dialer import RetryGate
from mesh.appliances.ends import LinkEnds
from mesh.appliances.link_state import LinkState, Outcome
from mesh.clock import EmulatedClock
from mesh.errors import FailureCode
from mesh.eventlog import EventLog
from mesh.events import LinkHalted
from mesh.net.links import Judgement


class Directory:
    """Only what LinkEnds asks: which appliances run in this process."""

    def __init__(self, *local: str) -> None:
        self.local = set(local)

    def is_local(self, name: str) -> bool:
        return name in self.local


def _ends(epoch, name, *local):
    clock = EmulatedClock(epoch)
    events, book, gate, errors = EventLog(), LinkBook(), RetryGate(clock), []
    ends = LinkEnds(
        name, clock=clock, events=events, book=book, directory=Directory(*local), gate=gate,
        error=errors.append,
    )
    return ends, events, book, gate, errors


def test_a_listener_owns_the_record_of_a_dialer_in_another_process(epoch):
    ends, events, book, gate, errors = _ends(epoch, "console", "console")
    gate.request()
    link = book.get("sensor-1", "console")
    assert ends.owns(link)
    ends.attempted(link)
    refusal = Judgement(by="console", accepted=False, code=FailureCode.EXPIRED, serial=7)
    ends.judged(link, Outcome.refused(refusal), refusal, None, generation=None)
    [halted] = events.of(LinkHalted)
    assert (halted.refused_by, halted.code, halted.serial) == ("console", FailureCode.EXPIRED, 7)
    assert errors == [halted.log_line()]  # its own refusal goes to its error lines
    # It counts the remote dialer's attempts, and its outcome answers every request so far.
    assert (link.state, link.attempts, link.done_generation) == (LinkState.HALTED, 1, 1)


def test_a_listener_leaves_the_record_of_a_dialer_in_this_process_to_the_dialer(epoch):
    ends, events, book, _gate, errors = _ends(epoch, "console", "console", "sensor-1")
    link = book.get("sensor-1", "console")
    assert not ends.owns(link)
    refusal = Judgement(by="console", accepted=False, code=FailureCode.REVOKED)
    ends.judged(link, Outcome.refused(refusal), refusal, None, generation=None)
    ends.lost(link, "sensor-1 closed the link")
    assert (link.state, link.attempts, link.done_generation) == (LinkState.CONNECTING, 0, -1)
    assert events.kinds() == ["link-halted"] and len(errors) == 1


def test_the_owner_reports_a_refusal_from_a_peer_in_another_process(epoch):
    ends, events, book, _gate, errors = _ends(epoch, "sensor-1", "sensor-1")
    link = book.get("sensor-1", "siem")
    theirs = Judgement(by="siem", accepted=False, code=FailureCode.VALIDATION_FAILED)
    mine = Judgement(by="sensor-1", accepted=True)
    ends.attempted(link)
    ends.judged(link, Outcome.refused(theirs), mine, theirs, generation=4)
    assert events.kinds() == ["link-connecting", "link-halted"]
    assert events.of(LinkHalted)[0].refused_by == "siem"
    assert errors == []  # not its own refusal
    assert (link.state, link.done_generation) == (LinkState.HALTED, 4)


def test_an_end_owns_only_links_it_is_on(epoch):
    ends, *_ = _ends(epoch, "console", "console")
    book = LinkBook()
    assert ends.owns(book.get("console", "ha"))  # it dials
    assert not ends.owns(book.get("remote-1", "remote-2"))  # someone else's link

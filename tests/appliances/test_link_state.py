"""The link as a state machine: the both-ends-accept rule, the transition table, what is news."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

from mesh.appliances.link_state import (
    TRANSITIONS,
    Attempted,
    Judged,
    Link,
    LinkEnd,
    LinkState,
    LinkStateError,
    Lost,
    Outcome,
    Rechecked,
    Stopped,
    Trigger,
    decide,
    next_state,
)
from mesh.errors import FailureCode
from mesh.events import LinkHalted, ValidationSkipped
from mesh.net.links import Judgement

AT = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
LATER = AT + dt.timedelta(minutes=1)


def accept(by, *, enforced=True, would_fail=(), serial=None):
    return Judgement(by=by, accepted=True, enforced=enforced, would_fail=would_fail, serial=serial)


def refuse(by, code=FailureCode.EXPIRED, serial=0xBEEF):
    return Judgement(by=by, accepted=False, code=code, subject="CN=x", serial=serial, detail="d")


def test_up_only_when_both_ends_accept():
    dialer, listener = Judgement(by="s", accepted=True), Judgement(by="c", accepted=True)
    assert decide(dialer, listener).state is LinkState.UP
    outcome = decide(dialer, refuse("c"))
    assert (outcome.state, outcome.primary.by) == (LinkState.HALTED, "c")
    outcome = decide(refuse("s", FailureCode.CHAIN_UNTRUSTED), listener)
    assert (outcome.state, outcome.primary.code) == (LinkState.HALTED, FailureCode.CHAIN_UNTRUSTED)
    both = decide(refuse("s", FailureCode.CHAIN_UNTRUSTED), refuse("c"))
    assert both.primary.by == "c"  # the listener's refusal is read first
    assert [j.by for j in both.refusals] == ["c", "s"]


def test_validation_off_is_up_unvalidated_but_not_checking_clients_is_not():
    off = Judgement(by="c", accepted=True, enforced=False, would_fail=(FailureCode.EXPIRED,))
    outcome = decide(Judgement(by="s", accepted=True), off)
    assert outcome.state is LinkState.UP_UNVALIDATED
    assert (outcome.unvalidated_by, outcome.would_fail) == (("c",), (FailureCode.EXPIRED,))
    assert decide(Judgement(by="c", accepted=True), Judgement.not_checked("siem")).state is (
        LinkState.UP
    )


def test_an_outcome_is_a_state_both_verdicts_can_lead_to():
    assert Outcome.refused(refuse("c")) == Outcome(
        state=LinkState.HALTED, primary=refuse("c"), refusals=(refuse("c"),)
    )
    for state in (LinkState.CONNECTING, LinkState.DOWN):
        with pytest.raises(ValueError, match=f"not {state.value}"):
            Outcome(state=state)


# -- the table, seen from the dialer's end ("s" dials "c"; both in one process) --


def _judged(dialer: Judgement, listener: Judgement, *, attempt=None) -> Judged:
    return Judged(outcome=decide(dialer, listener), mine=dialer, theirs=listener, attempt=attempt)


#: One event per trigger, as the dialer's end sees it.
EVENTS = {
    Trigger.ATTEMPTED: Attempted(),
    Trigger.ACCEPTED: _judged(accept("s"), accept("c")),
    Trigger.ACCEPTED_UNVALIDATED: _judged(accept("s"), accept("c", enforced=False)),
    Trigger.REFUSED: _judged(accept("s"), refuse("c")),  # "c" reports its own refusal
    Trigger.LOST: Lost(reason="c closed the link"),
    Trigger.STOPPED: Stopped(reason="s stopped"),
    Trigger.RECHECKED: Rechecked(),
}

#: How a dialer's end gets its link into each state: its first attempt, then an outcome.
SETUP = {
    LinkState.CONNECTING: [],
    LinkState.UP: [Trigger.ATTEMPTED, Trigger.ACCEPTED],
    LinkState.UP_UNVALIDATED: [Trigger.ATTEMPTED, Trigger.ACCEPTED_UNVALIDATED],
    LinkState.HALTED: [Trigger.ATTEMPTED, Trigger.REFUSED],
    LinkState.DOWN: [Trigger.ATTEMPTED, Trigger.LOST],
}

C, U, V, H, D = (
    LinkState.CONNECTING,
    LinkState.UP,
    LinkState.UP_UNVALIDATED,
    LinkState.HALTED,
    LinkState.DOWN,
)
T = Trigger

#: (state, trigger, next state, what the owner reports, whether the halted episode moves)
TABLE = [
    (C, T.ATTEMPTED, C, ["link-connecting"], False),
    (C, T.ACCEPTED, U, ["link-up"], False),
    (C, T.ACCEPTED_UNVALIDATED, V, ["link-up-unvalidated"], False),
    (C, T.REFUSED, H, [], False),
    (C, T.LOST, D, ["link-down"], False),
    (C, T.STOPPED, D, [], False),
    (U, T.ATTEMPTED, U, [], False),
    (U, T.ACCEPTED, U, [], False),
    (U, T.ACCEPTED_UNVALIDATED, V, ["link-up-unvalidated"], False),
    (U, T.REFUSED, H, [], False),
    (U, T.LOST, D, ["link-down"], False),
    (U, T.STOPPED, D, [], False),
    (U, T.RECHECKED, U, ["link-recheck"], False),
    (V, T.ATTEMPTED, V, [], False),
    (V, T.ACCEPTED, U, ["link-up"], False),
    (V, T.ACCEPTED_UNVALIDATED, V, [], False),
    (V, T.REFUSED, H, [], False),
    (V, T.LOST, D, ["link-down"], False),
    (V, T.STOPPED, D, [], False),
    (V, T.RECHECKED, V, ["link-recheck"], False),
    (H, T.ATTEMPTED, H, [], False),
    (H, T.ACCEPTED, U, ["link-up"], True),
    (H, T.ACCEPTED_UNVALIDATED, V, ["link-up-unvalidated"], True),
    (H, T.REFUSED, H, [], False),
    (H, T.LOST, D, ["link-down"], True),
    (H, T.STOPPED, D, [], True),
    (D, T.ATTEMPTED, D, [], False),
    (D, T.ACCEPTED, U, ["link-up"], False),
    (D, T.ACCEPTED_UNVALIDATED, V, ["link-up-unvalidated"], False),
    (D, T.REFUSED, H, [], False),
    (D, T.LOST, D, [], False),
    (D, T.STOPPED, D, [], False),
]

#: Only a live link can be closed for a re-check.
FORBIDDEN = [(C, T.RECHECKED), (H, T.RECHECKED), (D, T.RECHECKED)]


def _dialer_end_in(state: LinkState) -> LinkEnd:
    end = LinkEnd(me="s", link=Link(dialer="s", listener="c"))
    for trigger in SETUP[state]:
        end.handle(EVENTS[trigger], owner=True, at=AT)
    assert end.link.state is state
    return end


@pytest.mark.parametrize(
    "before, trigger, after, reports, new_episode",
    TABLE,
    ids=[f"{row[0].value}-{row[1].value}" for row in TABLE],
)
def test_the_owner_moves_the_record_as_the_table_says(before, trigger, after, reports, new_episode):
    end = _dialer_end_in(before)
    link = end.link
    since, episode, attempts = link.since, link.episode, link.attempts
    news = end.handle(EVENTS[trigger], owner=True, at=LATER)
    assert next_state(before, trigger) is after
    assert link.state is after
    assert [event.kind for event in news] == reports
    assert link.since == (LATER if after is not before else since)
    assert link.episode == episode + new_episode
    assert link.attempts == attempts + (trigger is T.ATTEMPTED)


@pytest.mark.parametrize("before, trigger", FORBIDDEN)
def test_a_transition_the_table_lacks_raises_naming_the_event_and_the_state(before, trigger):
    end = _dialer_end_in(before)
    with pytest.raises(LinkStateError) as info:
        end.handle(EVENTS[trigger], owner=True, at=LATER)
    assert str(info.value) == f"s -> c: a link cannot be {trigger.value} in state {before.value}"
    assert end.link.state is before


def test_the_table_lists_every_state_and_every_trigger_but_forbidden_rechecks():
    listed = {(state, trigger) for state, row in TRANSITIONS.items() for trigger in row}
    everything = {(state, trigger) for state in LinkState for trigger in Trigger}
    assert everything - listed == set(FORBIDDEN)
    assert {(row[0], row[1]) for row in TABLE} == listed


def test_the_record_keeps_the_reason_and_the_newest_attempt_answered():
    end = _dialer_end_in(LinkState.CONNECTING)
    link = end.link
    end.handle(_judged(accept("s"), accept("c"), attempt=3), owner=True, at=AT)
    assert (link.done_generation, link.reason, link.outcome.state) == (3, "", LinkState.UP)
    end.handle(Lost(reason="c closed the link", attempt=2), owner=True, at=AT)
    assert (link.done_generation, link.reason) == (3, "c closed the link")
    end.handle(Lost(reason="c is not reachable"), owner=True, at=AT)  # answers no attempt
    assert (link.done_generation, link.reason) == (3, "c is not reachable")


def test_a_recheck_counts_on_the_record_for_the_other_end_to_see():
    end = _dialer_end_in(LinkState.UP)
    [event] = end.handle(Rechecked(), owner=True, at=LATER)
    assert (event.state, end.link.rechecks) == ("up", 1)


def test_the_end_that_does_not_own_the_record_never_moves_it():
    link = Link(dialer="s", listener="c")
    dialer = LinkEnd(me="s", link=link)
    listener = LinkEnd(me="c", link=link)
    dialer.handle(Attempted(), owner=True, at=AT)
    dialer.handle(_judged(accept("s"), accept("c"), attempt=1), owner=True, at=AT)
    before = (link.state, link.since, link.attempts, link.done_generation, link.episode)
    for event in (
        Judged(outcome=Outcome.refused(refuse("c")), mine=refuse("c"), attempt=2),
        Lost(reason="s closed the link", attempt=2),
        Stopped(reason="c stopped"),
    ):
        listener.handle(event, owner=False, at=LATER)
    assert (link.state, link.since, link.attempts, link.done_generation, link.episode) == before


# -- what each end says about verdicts --


def _halted_by(news) -> list[str]:
    return [event.refused_by for event in news if isinstance(event, LinkHalted)]


def test_a_refusal_is_news_once_per_episode_and_again_after_this_end_accepted():
    link = Link(dialer="s", listener="c")
    dialer, listener = LinkEnd(me="s", link=link), LinkEnd(me="c", link=link)

    def attempt(dialer_says, listener_says):
        """Both ends record one attempt, the owner (the dialer) first; the listener's news."""
        outcome = decide(dialer_says, listener_says)
        dialer.handle(
            Judged(outcome=outcome, mine=dialer_says, theirs=listener_says), owner=True, at=AT
        )
        return listener.handle(
            Judged(outcome=outcome, mine=listener_says, theirs=dialer_says), owner=False, at=AT
        )

    assert _halted_by(attempt(accept("s"), refuse("c"))) == ["c"]
    assert _halted_by(attempt(accept("s"), refuse("c"))) == []  # a retry, the same refusal
    assert _halted_by(attempt(accept("s"), refuse("c", serial=0xCAFE))) == ["c"]  # a new one
    # The listener accepts while the dialer refuses: still halted, still the
    # same episode, but the listener's next refusal is news again.
    assert _halted_by(attempt(refuse("s"), accept("c"))) == []
    assert _halted_by(attempt(accept("s"), refuse("c", serial=0xCAFE))) == ["c"]
    # Down in between: a new episode.
    dialer.handle(Lost(reason="c stopped"), owner=True, at=AT)
    assert _halted_by(attempt(accept("s"), refuse("c", serial=0xCAFE))) == ["c"]
    [event] = attempt(accept("s"), refuse("c", FailureCode.REVOKED, serial=0xCAFE))
    assert (event.code, event.serial, event.subject, event.detail) == (
        FailureCode.REVOKED, 0xCAFE, "CN=x", "d"
    )


def test_the_owner_reports_the_refusal_of_a_peer_that_cannot_report_here():
    outcome = decide(accept("s"), refuse("c"))
    remote = Judged(outcome=outcome, mine=accept("s"), theirs=refuse("c"), peer_reports=False)
    local = Judged(outcome=outcome, mine=accept("s"), theirs=refuse("c"), peer_reports=True)
    assert _halted_by(LinkEnd(me="s", link=Link(dialer="s", listener="c")).handle(
        remote, owner=True, at=AT
    )) == ["c"]
    assert _halted_by(LinkEnd(me="s", link=Link(dialer="s", listener="c")).handle(
        local, owner=True, at=AT
    )) == []
    # A listener that does not own the record leaves that to the owner.
    listener_view = Judged(
        outcome=outcome, mine=accept("c"), theirs=refuse("s"), peer_reports=False
    )
    assert _halted_by(LinkEnd(me="c", link=Link(dialer="s", listener="c")).handle(
        listener_view, owner=False, at=AT
    )) == []


def test_validation_skipped_is_news_once_per_certificate_and_would_be_failures():
    end = LinkEnd(me="c", link=Link(dialer="s", listener="c"))
    expired = (FailureCode.EXPIRED,)

    def judged(mine):
        news = end.handle(
            Judged(outcome=decide(accept("s"), mine), mine=mine, theirs=accept("s")),
            owner=False,
            at=AT,
        )
        return [event for event in news if isinstance(event, ValidationSkipped)]

    [skipped] = judged(accept("c", enforced=False, would_fail=expired, serial=7))
    assert (skipped.appliance, skipped.peer, skipped.would_fail, skipped.serial) == (
        "c", "s", ("expired",), 7
    )
    assert skipped.messages == (FailureCode.EXPIRED.message,)
    assert judged(accept("c", enforced=False, would_fail=expired, serial=7)) == []
    assert len(judged(accept("c", enforced=False, would_fail=expired, serial=8))) == 1
    assert judged(accept("c")) == []  # validation back on: forgotten ...
    assert len(judged(accept("c", enforced=False, would_fail=expired, serial=8))) == 1  # ... news
    end.handle(Lost(reason="s closed the link"), owner=False, at=AT)
    assert len(judged(accept("c", enforced=False, would_fail=expired, serial=8))) == 1


def test_the_machine_is_pure_it_imports_neither_trio_nor_the_io_around_it():
    # Loaded on its own, without the engine package around it.
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('link_state', sys.argv[1])\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "roots = ('trio', 'httpx', 'mesh.net', 'mesh.appliances')\n"
        "print(','.join(sorted(m for m in sys.modules if m.startswith(roots))))\n"
    )
    import mesh.appliances.link_state as module

    out = subprocess.run(
        [sys.executable, "-c", code, module.__file__], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""

"""The link as a state machine: the both-ends-accept rule, the record and its snapshot."""

from __future__ import annotations

from mesh.appliances.link_state import Link, LinkState, decide
from mesh.errors import FailureCode
from mesh.net.links import Judgement


def refuse(by, code=FailureCode.EXPIRED):
    return Judgement(by=by, accepted=False, code=code, subject="CN=x", serial=0xBEEF, detail="d")


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


def test_a_new_link_is_connecting_and_counts_what_each_end_received():
    link = Link(dialer="s", listener="c")
    link.received["c"] += 2
    link.received["s"] += 1
    status = link.status()
    assert (status.state, status.delivered, status.code, status.attempts) == (
        LinkState.CONNECTING, 3, None, 0
    )
    assert status.line() == "s -> c: connecting, 3 delivered"

"""Links: verdict frames, the both-ends-accept rule, the link record."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mesh.errors import FailureCode, Severity
from mesh.net.framing import Frame, FrameError, FramedStream, FrameType, encode
from mesh.net.links import (
    Judgement,
    LinkBook,
    LinkState,
    PeerSilent,
    decide,
    exchange_verdicts,
)
from mesh.validation.finding import Finding
from mesh.validation.verdict import Verdict

ACCEPT = Judgement(by="console", accepted=True)


def refuse(by, code=FailureCode.EXPIRED):
    return Judgement(by=by, accepted=False, code=code, subject="CN=x", serial=0xBEEF, detail="d")


def test_judgement_from_a_refusing_verdict():
    finding = Finding(code=FailureCode.REVOKED, subject="CN=s", serial=7, detail="on CRL #2")
    judgement = Judgement.from_verdict("console", Verdict.judge([finding]), enforced=True)
    assert (judgement.accepted, judgement.code, judgement.serial) == (False, FailureCode.REVOKED, 7)
    assert judgement.would_fail == ()


def test_judgement_with_validation_off_lists_what_would_fail():
    findings = [
        Finding(code=FailureCode.EXPIRED),
        Finding(code=FailureCode.CHAIN_UNTRUSTED),
        Finding(code=FailureCode.NO_CDP, severity=Severity.NOTE),
    ]
    judgement = Judgement.from_verdict("c", Verdict.judge(findings, enabled=False), enforced=False)
    assert judgement.accepted and not judgement.enforced
    assert judgement.would_fail == (FailureCode.CHAIN_UNTRUSTED, FailureCode.EXPIRED)


@pytest.mark.parametrize("judgement", [ACCEPT, refuse("sensor-1"), Judgement.not_checked("siem")])
def test_verdict_frames_round_trip(judgement):
    frame = judgement.to_frame()
    assert frame.type is (FrameType.ACCEPT if judgement.accepted else FrameType.REFUSE)
    assert Judgement.from_frame(frame, default_by="?") == judgement


def test_a_refusal_from_a_foreign_peer_defaults_to_validation_failed():
    frame = Frame(type=FrameType.REFUSE, body={"code": "no-such-code"})
    judgement = Judgement.from_frame(frame, default_by="peer")
    assert (judgement.by, judgement.code) == ("peer", FailureCode.VALIDATION_FAILED)
    assert Judgement.from_frame(Frame(type=FrameType.REFUSE), default_by="p").code is (
        FailureCode.VALIDATION_FAILED
    )
    with pytest.raises(FrameError, match="expected the peer's verdict"):
        Judgement.from_frame(Frame(type=FrameType.HEARTBEAT), default_by="p")


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


async def test_exchange_sends_first_then_reads_both_ways():
    left, right = trio.testing.memory_stream_pair()
    a, b = FramedStream(left), FramedStream(right)
    results = {}

    async def side(name, framed, mine, peer):
        results[name] = await exchange_verdicts(framed, mine, peer_name=peer, timeout=5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(side, "dialer", a, Judgement(by="s", accepted=True), "c")
        nursery.start_soon(side, "listener", b, refuse("c"), "s")
    assert results["dialer"] == refuse("c")
    assert results["listener"].by == "s" and results["listener"].accepted


async def test_a_silent_or_closing_peer(autojump_clock):
    left, right = trio.testing.memory_stream_pair()
    with pytest.raises(PeerSilent, match="no verdict within 3 s"):
        await exchange_verdicts(FramedStream(left), ACCEPT, peer_name="c", timeout=3)
    await right.aclose()
    left, right = trio.testing.memory_stream_pair()
    await right.aclose()
    with pytest.raises(PeerSilent, match="closed the connection before"):
        await exchange_verdicts(FramedStream(left), ACCEPT, peer_name="c", timeout=3)


async def test_application_data_instead_of_a_verdict_is_a_protocol_error():
    left, right = trio.testing.memory_stream_pair()
    await right.send_all(encode(Frame(type=FrameType.HEARTBEAT)))
    with pytest.raises(FrameError):
        await exchange_verdicts(FramedStream(left), ACCEPT, peer_name="c", timeout=3)


async def test_link_book_wakes_waiters_and_snapshots():
    book = LinkBook()
    link = book.get("s", "c")
    assert book.get("s", "c") is link and book.find("c", "s") is None
    woke = []

    async def waiter():
        await book.wait_changed()
        woke.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        link.received["c"] += 2
        book.touch()
    assert woke == [True]
    status = link.status()
    assert (status.state, status.delivered, status.code) == (LinkState.CONNECTING, 2, None)
    assert "connecting" in status.line()

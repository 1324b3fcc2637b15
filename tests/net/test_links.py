"""Links on the wire: verdict frames and their exchange."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mesh.errors import FailureCode, Severity
from mesh.net.framing import Frame, FrameError, FramedStream, FrameType, encode
from mesh.net.links import (
    Judgement,
    PeerDeclined,
    PeerSilent,
    decline,
    exchange_verdicts,
    receive_verdict,
    send_verdict,
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


async def test_the_listener_reads_first_then_answers():
    left, right = trio.testing.memory_stream_pair()
    dialer, listener = FramedStream(left), FramedStream(right)
    results = {}

    async def dial():
        results["dialer"] = await exchange_verdicts(dialer, ACCEPT, peer_name="c", timeout=5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(dial)
        theirs = await receive_verdict(listener, peer_name="unknown client", timeout=5)
        assert theirs == ACCEPT
        await send_verdict(listener, refuse("c"), peer_name=theirs.by)
    assert results["dialer"] == refuse("c")


async def test_a_declined_dialer_learns_why():
    left, right = trio.testing.memory_stream_pair()
    dialer, listener = FramedStream(left), FramedStream(right)

    async def listen():
        theirs = await receive_verdict(listener, peer_name="unknown client", timeout=5)
        await decline(listener, by="c", reason=f"{theirs.by} is already connected to c")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(listen)
        with pytest.raises(PeerDeclined) as caught:
            await exchange_verdicts(dialer, Judgement(by="s", accepted=True), peer_name="c", timeout=5)
    assert str(caught.value) == "c declined the connection: s is already connected to c"
    assert isinstance(caught.value, PeerSilent)  # a dialer treats it as a link that never came up


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


def test_the_names_that_moved_to_the_engine_still_import_from_here():
    # mesh node imports LinkBook from here, the benchmarks LinkState.
    from mesh.appliances.book import LinkBook
    from mesh.appliances.link_state import LinkState
    from mesh.net.links import LinkBook as OldLinkBook
    from mesh.net.links import LinkState as OldLinkState

    assert (OldLinkBook, OldLinkState) == (LinkBook, LinkState)
    with pytest.raises(ImportError, match="cannot import name 'Link' "):
        from mesh.net.links import Link  # noqa: F401  (only the names still imported from here)

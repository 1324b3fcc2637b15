"""EventLog: memory, subscribers, JSON-lines sink."""

from __future__ import annotations

import io
import json

from mesh.errors import FailureCode
from mesh.eventlog import EventLog
from mesh.events import LinkDown, LinkHalted, LinkUp


def _halted(epoch, code=FailureCode.EXPIRED):
    return LinkHalted(at=epoch, dialer="s", listener="c", refused_by="c", code=code)


async def test_subscribers_get_every_later_event(epoch):
    log = EventLog()
    log.append(LinkUp(at=epoch, dialer="s", listener="c"))
    channel = log.subscribe()
    log.append(_halted(epoch))
    log.append(LinkDown(at=epoch, dialer="s", listener="c", reason="refused"))
    log.close()
    got = [event.kind async for event in channel]
    assert got == ["link-halted", "link-down"]
    assert log.kinds() == ["link-up", "link-halted", "link-down"]


async def test_a_closed_subscriber_is_dropped(epoch):
    log = EventLog()
    channel = log.subscribe()
    channel.close()
    log.append(_halted(epoch))
    assert len(log) == 1


def test_stream_sink_gets_one_json_object_per_line(epoch):
    out = io.StringIO()
    log = EventLog(out)
    log.append(_halted(epoch))
    log.append(_halted(epoch, FailureCode.REVOKED))
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["code"] for line in lines] == ["expired", "revoked"]
    assert log.to_jsonl() == out.getvalue()


def test_file_sink_appends(epoch, tmp_path):
    path = tmp_path / "events.jsonl"
    log = EventLog(path)
    log.append(_halted(epoch))
    log.close()
    log = EventLog(str(path))
    log.append(_halted(epoch))
    log.close()
    assert len(path.read_text().splitlines()) == 2


def test_of_filters_by_class_and_fields(epoch):
    log = EventLog()
    log.append(_halted(epoch))
    log.append(_halted(epoch, FailureCode.REVOKED))
    assert [e.code for e in log.of(LinkHalted, code=FailureCode.REVOKED)] == [
        FailureCode.REVOKED
    ]
    assert log.of(LinkUp) == []


def test_the_window_keeps_recent_events_and_counts_them_all(epoch):
    from mesh.events import ValidationSwitched

    log = EventLog(window=3)
    for n in range(5):
        log.append(ValidationSwitched(at=epoch, appliance=f"a{n}", enabled=True))
    assert len(log) == 5 and log.first == 2
    assert [e.appliance for e in log.events] == ["a2", "a3", "a4"]
    assert log.counts() == {"validation-switched": 5}
    assert [e.appliance for e in log.since(0)] == ["a2", "a3", "a4"]
    assert [e.appliance for e in log.since(4)] == ["a4"]
    assert log.since(5) == []


def test_the_sink_gets_every_event_whatever_the_window(epoch, tmp_path):
    from mesh.events import ValidationSwitched

    path = tmp_path / "events.jsonl"
    log = EventLog(path, window=1)
    for n in range(4):
        log.append(ValidationSwitched(at=epoch, appliance=f"a{n}", enabled=False))
    log.close()
    assert len(path.read_text().splitlines()) == 4


def test_head_keeps_the_first_events_however_long_the_run(epoch):
    log = EventLog(window=3, head=2)
    events = [LinkDown(at=epoch, dialer=f"s{i}", listener="c", reason="refused") for i in range(6)]
    for event in events:
        log.append(event)
    assert log.head == events[:2]
    assert log.events == events[3:]
    assert len(log) == 6
    assert EventLog().head == []

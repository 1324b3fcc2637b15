"""An appliance's own certificate nearing its end: certificate-expiring, once per crossing."""

from __future__ import annotations

import datetime as dt

import attrs
import trio
import trio.testing

from mesh.appliances.expiry_watch import ExpiryWatcher
from mesh.clock import EmulatedClock
from mesh.eventlog import EventLog
from mesh.events import CertificateExpiring
from mesh.pki.issue import CertificateAuthority, Issued

from .conftest import FAST


def _pair(deployment):
    deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    return deployment.mesh(
        [
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
            deployment.spec("console", "management-console"),
        ]
    )


def _issued(material) -> Issued:
    return Issued(cert=material.cert, key=material.issued.key, chain=material.chain)


def _certificate(keys, at: dt.datetime, days: int) -> Issued:
    root = CertificateAuthority.root("Expiry Root", not_before=at, key=keys(2048))
    return root.issue("sensor-1.contoso.test", not_before=at, days=days, key=keys(2048))


async def test_the_watcher_warns_once_as_time_passes_and_again_for_a_renewal(
    keys, epoch, autojump_clock
):
    clock, events = EmulatedClock(epoch), EventLog()
    current = [_certificate(keys, epoch, days=40)]
    watcher = ExpiryWatcher(
        "sensor-1", clock=clock, events=events, window=dt.timedelta(days=30),
        identity=lambda: current[0],
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watcher.watch)
        await trio.sleep(dt.timedelta(days=10).total_seconds() - 60)
        assert events.of(CertificateExpiring) == []  # a minute before the window opens
        await trio.sleep(120)
        [first] = events.of(CertificateExpiring)
        # Said the moment the window opened: thirty whole days left.
        assert (first.appliance, first.days_until_expiry, first.window_days) == ("sensor-1", 30, 30)
        watcher.check()
        await trio.sleep(dt.timedelta(days=5).total_seconds())
        assert events.of(CertificateExpiring) == [first]  # once per certificate
        current[0] = _certificate(keys, clock.now(), days=40)
        watcher.renewed()
        await trio.sleep(dt.timedelta(days=10).total_seconds() + 60)
        [_, second] = events.of(CertificateExpiring)
        assert second.serial == current[0].cert.serial_number
        nursery.cancel_scope.cancel()


async def test_without_a_window_the_watcher_says_nothing(keys, epoch):
    events = EventLog()
    certificate = _certificate(keys, epoch, days=1)
    watcher = ExpiryWatcher(
        "sensor-1", clock=EmulatedClock(epoch), events=events, window=None,
        identity=lambda: certificate,
    )
    watcher.check()
    await watcher.watch()  # returns at once
    assert events.of(CertificateExpiring) == []


def _expiring(mesh) -> list[tuple[str, int]]:
    return [(e.appliance, e.days_until_expiry) for e in mesh.events.of(CertificateExpiring)]


async def test_certificate_expiring_is_said_once_when_a_jump_carries_a_certificate_into_the_window(
    deployment, nursery
):
    mesh = _pair(deployment)
    await nursery.start(mesh.run)
    await mesh.settle()
    assert _expiring(mesh) == []  # a year left at start
    not_after = deployment.pki.appliances["sensor-1"].cert.not_valid_after_utc
    await mesh.advance(not_after - mesh.clock.now() - dt.timedelta(days=31))
    assert _expiring(mesh) == []  # one day short of the 30-day window
    await mesh.advance(dt.timedelta(days=2))
    # 29 days less the few real milliseconds the test has run, rounded down.
    assert sorted(_expiring(mesh)) == [("console", 28), ("sensor-1", 28)]
    [event] = mesh.events.of(CertificateExpiring, appliance="sensor-1")
    subject = deployment.pki.appliances["sensor-1"].cert.subject.rfc4514_string()
    assert event.describe() == f"sensor-1: The certificate {subject} expires in 28 days."
    assert (event.not_after, event.window_days, event.subject) == (not_after, 30, subject)
    assert '"kind":"certificate-expiring","severity":"warning"' in event.to_json()

    # Once per certificate per crossing: later jumps, a restart, a refresh say nothing new.
    await mesh.advance(dt.timedelta(days=10))
    await mesh.stop("sensor-1")
    await mesh.start("sensor-1")
    await mesh.refresh()
    assert len(_expiring(mesh)) == 2

    # A renewed certificate is outside the window; the console's is not news.
    renewed = deployment.pki.reissue("sensor-1", at=mesh.clock.now())
    verdict = await mesh.upload("sensor-1", _issued(renewed))
    assert verdict.accepted
    assert len(_expiring(mesh)) == 2


async def test_an_upload_already_inside_the_window_and_the_window_setting(deployment, nursery):
    deployment.build(("sensor-1", "sensor"), ("console", "management-console"))
    settings = attrs.evolve(FAST, expiry_window=dt.timedelta(days=400))
    mesh = deployment.mesh(
        [
            deployment.spec("console", "management-console"),
            deployment.spec("sensor-1", "sensor", connects_to=["console"]),
        ],
        settings=settings,
    )
    await nursery.start(mesh.run)
    # At start: a year-long certificate is within a 400-day window at once,
    # and the warning comes right after the appliance says it started.
    kinds = [(e.kind, getattr(e, "appliance", "")) for e in mesh.events]
    started = kinds.index(("appliance-started", "sensor-1"))
    assert kinds[started + 1] == ("certificate-expiring", "sensor-1")
    assert sorted(_expiring(mesh)) == [("console", 364), ("sensor-1", 364)]  # a year, less ms
    # After an upload: the new certificate is a new crossing.
    renewed = deployment.pki.reissue("sensor-1", at=mesh.clock.now())
    assert (await mesh.upload("sensor-1", _issued(renewed))).accepted
    [_, again] = mesh.events.of(CertificateExpiring, appliance="sensor-1")
    assert again.serial == renewed.cert.serial_number
    assert mesh.events.kinds()[-2:] == ["certificate-uploaded", "certificate-expiring"]


async def test_elapsed_time_alone_carries_a_certificate_into_the_window(
    deployment, nursery, mock_clock
):
    # No jump of the emulated clock: trio time passes (a long-running demo),
    # and the watcher notices when the window opens.
    mesh = _pair(deployment)  # the default window: 30 days
    await nursery.start(mesh.run)
    await mesh.settle()
    not_after = deployment.pki.appliances["sensor-1"].cert.not_valid_after_utc
    opens = (not_after - dt.timedelta(days=30) - mesh.clock.now()).total_seconds()
    mock_clock.jump(opens - 60)
    await trio.testing.wait_all_tasks_blocked()
    assert _expiring(mesh) == []
    mock_clock.jump(120)
    await trio.testing.wait_all_tasks_blocked()
    assert sorted(name for name, _ in _expiring(mesh)) == ["console", "sensor-1"]


async def test_one_shared_watch_warns_each_certificate_at_its_own_time(keys, epoch, autojump_clock):
    # A Mesh runs one ExpiryWatch task for all its appliances.
    from mesh.appliances.expiry_watch import ExpiryWatch

    clock, events = EmulatedClock(epoch), EventLog()
    certificates = {"sensor-1": _certificate(keys, epoch, days=40),
                    "sensor-2": _certificate(keys, epoch, days=50)}
    watchers = {
        name: ExpiryWatcher(name, clock=clock, events=events, window=dt.timedelta(days=30),
                            identity=lambda name=name: certificates[name])
        for name in certificates
    }
    shared = ExpiryWatch(clock)
    day = dt.timedelta(days=1).total_seconds()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(shared.run)
        for watcher in watchers.values():
            shared.add(watcher)
        await trio.sleep(10 * day + 60)
        assert [e.appliance for e in events.of(CertificateExpiring)] == ["sensor-1"]
        await trio.sleep(10 * day)
        assert [e.appliance for e in events.of(CertificateExpiring)] == ["sensor-1", "sensor-2"]
        certificates["sensor-1"] = _certificate(keys, clock.now(), days=40)
        watchers["sensor-1"].renewed()
        shared.discard(watchers["sensor-2"])
        await trio.sleep(10 * day + 60)
        assert [e.appliance for e in events.of(CertificateExpiring)] == ["sensor-1", "sensor-2",
                                                                        "sensor-1"]
        nursery.cancel_scope.cancel()

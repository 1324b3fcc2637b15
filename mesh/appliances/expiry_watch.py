"""An appliance watching its own certificate run out: ``certificate-expiring``, once per crossing.

When the appliance's certificate comes within ``EngineSettings.expiry_window``
of its notAfter, it says so once: at start, after an upload, after a clock
jump (``Mesh.advance`` calls :meth:`ExpiryWatcher.check`), or when plain
elapsed time gets there (:meth:`ExpiryWatcher.watch`). The window and the
wording are ``mesh.validation.expiry``'s, which the consoles share.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable

import trio

from mesh.clock import EmulatedClock
from mesh.eventlog import EventLog
from mesh.events import CertificateExpiring
from mesh.pki.issue import Issued
from mesh.validation.expiry import expiry_warning

__all__ = ["ExpiryWatch", "ExpiryWatcher"]


class ExpiryWatcher:
    """Warns when one appliance's certificate (whatever it is now) nears its end.

    Args:
        name: the appliance, as the event names it.
        window: how close to notAfter is worth a warning (None: never warn).
        identity: what the appliance presents now (an upload changes it).
    """

    def __init__(
        self,
        name: str,
        *,
        clock: EmulatedClock,
        events: EventLog,
        window: dt.timedelta | None,
        identity: Callable[[], Issued | None],
    ) -> None:
        self.name = name
        self.clock = clock
        self.events = events
        self.window = window
        self._identity = identity
        #: The identity a certificate-expiring event was last emitted for.
        self._warned: Issued | None = None
        self._sleep: trio.CancelScope | None = None

    def check(self) -> None:
        """Emit ``certificate-expiring`` if the certificate just came within the window.

        Once per certificate per crossing: an identity already warned about is
        not warned about again; an uploaded certificate is a new one.
        """
        window = self.window
        identity = self._identity()
        if window is None or identity is None or self._warned is identity:
            return
        warning = expiry_warning(identity.cert, at=self.clock.now(), window=window)
        if warning is None:
            return
        self._warned = identity
        self.events.append(
            CertificateExpiring(
                at=self.clock.now(),
                appliance=self.name,
                subject=warning.subject,
                serial=identity.cert.serial_number,
                not_after=warning.not_after,
                days_until_expiry=warning.days_until_expiry,
                window_days=warning.window_days,
            )
        )

    def renewed(self) -> None:
        """The appliance has a new certificate: check it now, and watch it from here on."""
        self.check()
        if self._sleep is not None:
            self._sleep.cancel()
        if self.shared is not None:
            self.shared.changed()

    #: The mesh-wide watch this watcher is part of while its appliance runs
    #: (:class:`ExpiryWatch`), or None: then :meth:`watch` runs as a task.
    shared: ExpiryWatch | None = None

    def opens(self) -> dt.datetime | None:
        """When the current certificate enters the window (None: never, or already warned)."""
        identity = self._identity()
        if self.window is None or identity is None or self._warned is identity:
            return None
        return identity.cert.not_valid_after_utc - self.window

    async def watch(self) -> None:
        """Check again whenever the clock could have carried the certificate into the window.

        Sleeps on the emulated clock until the window opens; a jump or a kick
        wakes it early to look again, and :meth:`renewed` restarts it for the
        new certificate. Runs until cancelled.
        """
        window = self.window
        if window is None:
            return
        while True:
            self.check()
            identity = self._identity()
            assert identity is not None
            opens = identity.cert.not_valid_after_utc - window
            remaining = (opens - self.clock.now()).total_seconds()
            with trio.CancelScope() as self._sleep:
                if self._warned is identity:
                    await trio.sleep_forever()  # until an upload brings a new one
                else:
                    await self.clock.sleep(max(remaining, 0.001))


class ExpiryWatch:
    """One task watching many appliances' certificates on one clock.

    What a ``Mesh`` runs instead of one :meth:`ExpiryWatcher.watch` task per
    appliance: thousands of sleeping tasks are memory and scheduling for an
    event that comes once a year. It sleeps until the earliest window opens;
    a clock jump or kick, a new watcher and a renewed certificate wake it to
    look again (every check is :meth:`ExpiryWatcher.check`, once per crossing).
    """

    def __init__(self, clock: EmulatedClock) -> None:
        self.clock = clock
        self._watchers: set[ExpiryWatcher] = set()
        self._sleep: trio.CancelScope | None = None

    def add(self, watcher: ExpiryWatcher) -> None:
        watcher.shared = self
        self._watchers.add(watcher)
        self.changed()

    def discard(self, watcher: ExpiryWatcher) -> None:
        watcher.shared = None
        self._watchers.discard(watcher)

    def changed(self) -> None:
        """Look again now (a watcher came, or a certificate changed)."""
        if self._sleep is not None:
            self._sleep.cancel()

    async def run(self) -> None:
        """Check every watcher whenever the earliest window may have opened; until cancelled."""
        while True:
            opens: dt.datetime | None = None
            for watcher in list(self._watchers):
                watcher.check()
                when = watcher.opens()
                if when is not None and (opens is None or when < opens):
                    opens = when
            with trio.CancelScope() as self._sleep:
                if opens is None:
                    await trio.sleep_forever()
                else:
                    remaining = (opens - self.clock.now()).total_seconds()
                    await self.clock.sleep(max(remaining, 0.001))
            self._sleep = None

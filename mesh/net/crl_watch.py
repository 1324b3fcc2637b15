"""Keeping ``mesh crl serve`` current: CRL files served anew when they change.

``mesh pki revoke`` (or ``pki crl --renew``, or a CA outside mesh) rewrites a
CRL file while the server runs; until now the server kept the bytes it read
at start, so a revocation never reached anyone who fetched from it.

- **A poll, not a notifier.** Every :data:`POLL_INTERVAL` seconds each file is
  ``stat``-ed: a changed (device, inode, size, mtime, ctime) means it was
  rewritten. A handful of ``stat`` calls a second costs nothing, works on
  every platform and filesystem (network mounts included, where inotify is
  silent), and needs no dependency. A rename over the file (how mesh writes
  every file: temp file, then ``os.replace``) changes the inode; an in-place
  rewrite changes size or mtime.
- **SIGHUP re-reads every file now**, changed signature or not: what an
  operator sends after copying a CRL with a tool that keeps the mtime. Its
  answer is exactly one line starting ``SIGHUP:`` (what it reloaded, or that
  nothing changed), so a program that rewrote the files and signalled knows
  when the server serves them (``mesh run --hosts`` waits for it).
- **Only a CRL is swapped in.** A changed file is parsed with the parser the
  appliances use (:func:`mesh.net.crl_parse.parse_crl`); a file that does
  not parse (empty, cut short by a writer that does not rename, HTML) or
  cannot be read is not served: the previous CRL stays, and one line says
  so. The line is not repeated at every poll; the file is tried again when
  it changes again.
- **A rewrite with the same bytes is no news.** ``mesh pki revoke`` rewrites
  every CRL file of the folder; the reload line names only those whose
  content changed.

The served URL paths come from ``pki.json`` at start; a manifest that names
other URLs needs a restart (the server's port may change with them).
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Mapping

import trio

from mesh.errors import ValidationFailed
from mesh.net.crl_parse import parse_crl
from mesh.net.crl_server import CrlServer

__all__ = ["CrlWatch", "POLL_INTERVAL"]

#: Seconds between two looks at the files' metadata.
POLL_INTERVAL = 1.0

_log = logging.getLogger("mesh.net")

#: What ``os.stat`` says about a file, enough to notice a rewrite (None: missing).
_Signature = tuple[int, int, int, int, int] | None


def _signature(path: Path) -> _Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class _File:
    __slots__ = ("path", "signature", "data")

    def __init__(self, path: Path, signature: _Signature, data: bytes) -> None:
        self.path = path
        self.signature = signature
        self.data = data


class CrlWatch:
    """Publishes each file's CRL on ``server`` at its URL path, and again when it changes.

    Args:
        server: the CRL server; the files are published on it at once.
        files: URL path -> the CRL file served there.
        interval: seconds between polls (:meth:`run`).

    Raises:
        OSError: a file cannot be read at start (the CLI checks them first).
    """

    def __init__(
        self,
        server: CrlServer,
        files: Mapping[str, Path],
        *,
        interval: float = POLL_INTERVAL,
    ) -> None:
        self.server = server
        self.interval = interval
        self._files: dict[str, _File] = {}
        for url_path, path in files.items():
            # The signature before the read: a rewrite in between is seen at the next poll.
            signature = _signature(Path(path))
            data = Path(path).read_bytes()
            self._files[url_path] = _File(Path(path), signature, data)
            server.publish(url_path, data)
        self._checks = 0
        self._checked = trio.Event()

    async def check(self, *, force: bool = False) -> list[str]:
        """Publish every file that changed (all re-read when ``force``); its URL paths.

        One line is logged naming what was reloaded (with ``force``, also
        when nothing was), and one per file that could not be taken.
        """
        reloaded: list[tuple[str, str]] = []
        for url_path, entry in self._files.items():
            signature = _signature(entry.path)
            if signature == entry.signature and not force:
                continue
            entry.signature = signature
            try:
                data = entry.path.read_bytes()
            except OSError as exc:
                self._refuse(entry, f"cannot be read ({exc.strerror or exc})")
                continue
            if data == entry.data:
                continue
            try:
                index = await parse_crl([data], len(data), str(entry.path))
            except ValidationFailed as exc:
                self._refuse(entry, exc.detail)
                continue
            entry.data = data
            self.server.publish(url_path, data)
            number = f"CRL number {index.number}" if index.number is not None else "no CRL number"
            reloaded.append((url_path, f"{entry.path} ({number}) at {url_path}"))
        # A forced check's line starts with "SIGHUP: ", whatever it found: who
        # sent the signal knows which line answers it (a poll's line may come first).
        cause = "SIGHUP: " if force else ""
        if len(reloaded) == 1:
            _log.info("%sreloaded %s", cause, reloaded[0][1])
        elif reloaded:
            _log.info("%sreloaded %d CRL files: %s", cause, len(reloaded),
                      ", ".join(r[1] for r in reloaded))
        elif force:
            _log.info("SIGHUP: no CRL file changed")
        self._checks += 1
        self._checked.set()
        self._checked = trio.Event()
        return [url_path for url_path, _ in reloaded]

    def _refuse(self, entry: _File, problem: str) -> None:
        _log.warning("%s: not reloaded: %s; still serving the previous CRL", entry.path, problem)

    async def run(self) -> None:
        """Poll every ``interval`` seconds until cancelled."""
        while True:
            await trio.sleep(self.interval)
            await self.check()

    async def reload_on_sighup(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Re-read every file at each SIGHUP until cancelled (started once it listens)."""
        with trio.open_signal_receiver(signal.SIGHUP) as signals:
            task_status.started()
            async for _ in signals:
                await self.check(force=True)

    async def wait_checks(self, count: int) -> None:
        """Return once :meth:`check` has run ``count`` times in all (readiness without sleeps)."""
        while self._checks < count:
            await self._checked.wait()

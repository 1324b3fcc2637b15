"""Who a listener's live inbound connections claim to be, and the conflicts between them.

A listener learns a dialer's name from the dialer's verdict (``mesh.net.links``)
and keys the link record by it. Two appliances configured with one name
would then share one record: the console would show one link for two
sensors, and whichever stopped last would decide its state. So the first
connection to claim a name holds it while it lives; a second one claiming it
meanwhile is declined (``duplicate-peer``), and the first is untouched.

The same certificate presented by two connected peers of different names is
not refused (the chain is valid) but is a warning (``certificate-shared``):
the source document asks for a unique certificate per appliance, and a
copied certificate makes two appliances indistinguishable to every check.

Both conflicts are kept, the latest per kind and peer, for the appliance's
status. A claim that is never released (a dialer whose host vanished without
closing, so its connection lingers half-open) holds its name until the
connection breaks: in the emulator connections end with their processes, so
that only happens across a network fault.
"""

from __future__ import annotations

import datetime as dt

from attrs import define, field
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from mesh.events import CertificateShared, DuplicatePeer, Event

__all__ = ["Claim", "Conflict", "PeerClaims"]


@define(frozen=True, kw_only=True)
class Conflict:
    """One conflict, for the status: its kind, the peer it is about, and a line."""

    kind: str
    peer: str
    message: str


@define(eq=False, kw_only=True)
class Claim:
    """One live inbound connection's hold on a name (and on its certificate)."""

    name: str
    address: str
    fingerprint: bytes | None


@define(kw_only=True)
class PeerClaims:
    """The names (and certificates) held by one listener's live inbound connections."""

    appliance: str
    _by_name: dict[str, Claim] = field(factory=dict, alias="_by_name")
    _by_certificate: dict[bytes, Claim] = field(factory=dict, alias="_by_certificate")
    _conflicts: dict[tuple[str, str], Conflict] = field(factory=dict, alias="_conflicts")

    def claim(
        self, name: str, *, address: str, leaf: x509.Certificate | None, at: dt.datetime
    ) -> tuple[Claim | None, list[Event]]:
        """Hold ``name`` for a new connection from ``address`` presenting ``leaf``.

        Returns the claim (None: declined, the name is held) and the events to log.
        """
        fingerprint = leaf.fingerprint(hashes.SHA256()) if leaf is not None else None
        held = self._by_name.get(name)
        if held is not None:
            event = DuplicatePeer(
                at=at, appliance=self.appliance, peer=name, live=held.address, refused=address
            )
            self._record("duplicate-peer", name, event)
            return None, [event]
        claim = self._by_name[name] = Claim(name=name, address=address, fingerprint=fingerprint)
        events: list[Event] = []
        if fingerprint is not None:
            other = self._by_certificate.get(fingerprint)
            if other is None:
                self._by_certificate[fingerprint] = claim
            elif other.name != name:
                assert leaf is not None
                shared = CertificateShared(
                    at=at,
                    appliance=self.appliance,
                    peer=name,
                    other=other.name,
                    subject=leaf.subject.rfc4514_string(),
                    serial=leaf.serial_number,
                )
                self._record("certificate-shared", name, shared)
                events.append(shared)
        return claim, events

    def release(self, claim: Claim) -> None:
        """The connection that held ``claim`` ended."""
        if self._by_name.get(claim.name) is claim:
            del self._by_name[claim.name]
        if claim.fingerprint is not None and self._by_certificate.get(claim.fingerprint) is claim:
            del self._by_certificate[claim.fingerprint]

    def conflicts(self) -> tuple[Conflict, ...]:
        """The latest conflict of each kind with each peer, oldest first."""
        return tuple(self._conflicts.values())

    def _record(self, kind: str, peer: str, event: Event) -> None:
        self._conflicts.pop((kind, peer), None)  # re-inserted: the latest goes last
        self._conflicts[(kind, peer)] = Conflict(kind=kind, peer=peer, message=event.log_line())

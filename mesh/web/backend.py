"""The one interface the consoles need from an appliance.

The REST API and the web page serve *one* appliance. They do not know the
engine: anything that offers the methods of :class:`ConsoleBackend` can be
served, an appliance of a running :class:`~mesh.appliances.Mesh` (through
:class:`mesh.web.mesh_backend.MeshConsole`) as well as a stand-alone one.

Two rules the backend keeps so the consoles stay honest:

* ``identity()`` is read at every TLS handshake: after an upload (through the
  API or any other way) the next connection presents the new certificate.
* ``upload`` raises :class:`~mesh.errors.ValidationFailed` with the code of the
  first failed check (the API answers 422 with its exact message) and
  :class:`~mesh.errors.InputError` for files that are not what they claim to
  be (the API answers 400). It returns only once the certificate is in use.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

from cryptography import x509

from mesh.errors import FailureCode
from mesh.pki.issue import Issued

if TYPE_CHECKING:  # the consoles do not import the engine
    from mesh.appliances.link_state import LinkState

__all__ = ["ConflictLike", "ConsoleBackend", "LinkLike", "NodeControl"]


class LinkLike(Protocol):
    """A link as the engine reports it (``mesh.appliances.LinkStatus`` has this shape).

    ``state`` is shown as ``str(state)`` (``up``, ``halted``, ...); ``code`` is a
    :class:`~mesh.errors.FailureCode`, its stable string, or None; ``message``
    may be None when ``code`` carries it. ``unvalidated_by`` and ``would_fail``
    explain an ``up-unvalidated`` link, ``reason`` a ``down`` one.
    """

    @property
    def dialer(self) -> str: ...
    @property
    def listener(self) -> str: ...
    @property
    def state(self) -> LinkState | str: ...
    @property
    def code(self) -> FailureCode | str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def refused_by(self) -> str | None: ...
    @property
    def unvalidated_by(self) -> Sequence[str]: ...
    @property
    def would_fail(self) -> Sequence[FailureCode | str]: ...
    @property
    def notes(self) -> Sequence[FailureCode | str]: ...
    @property
    def reason(self) -> str: ...


class ConflictLike(Protocol):
    """A conflict between peers (``mesh.appliances.claims.Conflict`` has this shape)."""

    @property
    def kind(self) -> str: ...
    @property
    def peer(self) -> str: ...
    @property
    def message(self) -> str: ...


@runtime_checkable
class ConsoleBackend(Protocol):
    """One appliance, as its web console and REST API see it."""

    @property
    def name(self) -> str:
        """The appliance's name (its CN for CA-signed certificates)."""

    @property
    def role(self) -> str:
        """``sensor``, ``management-console``, ``ha-console`` or ``forwarding-target``."""

    def identity(self) -> Issued:
        """The certificate, chain and key the appliance presents right now."""

    def trust_roots(self) -> Sequence[x509.Certificate]:
        """The roots the appliance trusts now (configured, or adopted at an upload):
        the status lists them, and a client certificate may chain to them
        (client certificates are optional)."""

    def now(self) -> dt.datetime:
        """The emulated instant: expiry is judged by it, never by the wall clock."""

    def validation_enabled(self) -> bool:
        """The appliance's validation switch."""

    def links(self) -> Sequence[LinkLike]:
        """Every link this appliance dials or answers, with its state."""

    def roles(self) -> Mapping[str, str]:
        """Name -> role of every appliance the topology graph should show."""

    def events_since(self, index: int) -> Sequence[Any]:
        """Events from position ``index`` of the stream on (``mesh.events.Event``
        objects or their ``as_dict()`` mappings), oldest first; from
        :meth:`events_first` on when ``index`` is older than what is kept.

        The stream as it is, other appliances' events included (an in-process
        mesh has one): the console lists those that concern this appliance
        (:mod:`mesh.web.feed`) and keeps counting positions in the whole stream."""

    def events_first(self) -> int:
        """The stream position of the oldest event still kept (0: nothing dropped)."""

    def conflicts(self) -> Sequence[ConflictLike]:
        """Conflicts between the appliance's peers (a name claimed twice, a shared certificate)."""

    async def upload(
        self, *, crt: bytes, key: bytes, chain: bytes | None, passphrase: str | None
    ) -> None:
        """Run the upload-time check and, if it passes, present the new certificate."""

    def set_validation(self, enabled: bool) -> None:
        """Switch certificate validation on or off for new connections."""

    def process_links(self) -> Sequence[LinkLike]:
        """Every link of every appliance that runs in this process with this one
        (a shard's, or a mesh's; a lone appliance's own): what a driver that
        refreshed a whole shard through one console reads back."""

    async def refresh_crls(self, timeout: float | None = None) -> Sequence[str]:
        """Refetch the cached CRLs now and judge every live link afresh.

        An appliance otherwise keeps a CRL until its nextUpdate. Returns once
        every link has its new outcome, or with the links (``"a -> b"``) that
        had none when no link had had a new one for ``timeout`` seconds
        (None: the backend's own limit).
        """


class NodeControl(Protocol):
    """What a ``mesh node`` process lets a console change beyond its appliance.

    A scenario step moves the emulated clock or stops an appliance; a
    driver reaching a fleet of running nodes does both through the API
    (``POST /api/v1/clock``, ``PUT /api/v1/running``). A console served
    inside a scenario run has none: the run's own steps do that there.

    In a shard (several appliances in one process) every console's control
    moves the same clock, the shard's: ``move_clock`` moves it *at least* to
    an instant, so asking each console of a shard for the same instant moves
    the clock once.
    """

    def running(self) -> bool:
        """True while the appliance listens and dials."""

    async def move_clock(self, to: dt.datetime) -> dt.datetime:
        """Move the emulated clock forward to ``to`` (not at all when it is past
        already); returns the new instant. Certificates the jump carries into
        their expiry window are reported before this returns."""

    async def stop(self) -> None:
        """Stop the appliance: its listener and links close, peers see them go
        down; the console keeps answering. Returns once it has stopped."""

    async def start(self) -> None:
        """Start a stopped appliance again, on its old address; returns once it listens."""

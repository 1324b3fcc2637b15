"""A stand-alone appliance for the console tests, and a PKI valid on the wall clock.

The console's TLS is checked by curl, httpx and chromium against the *wall*
clock, so this PKI starts a day before now; the appliance's emulated instant
(what expiry is judged by) is a separate, settable value.

``Appliance`` keeps the :class:`mesh.web.ConsoleBackend` contract with real
certificates: its upload check parses the files, checks the passphrase, the
key and the chain of trust (``cryptography``'s verifier), and raises the same
typed errors the engine's check does.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path

import pytest
import trio
from attrs import define, field
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from mesh.errors import FailureCode, InputError, ValidationFailed
from mesh.events import (
    CertificateUploaded,
    CrlsRefreshed,
    Event,
    LinkHalted,
    UploadRefused,
    ValidationSwitched,
)
from mesh.pki.issue import CertificateAuthority, Issued, self_signed_leaf
from mesh.web import ConsoleAddress, serve_console
from mesh.web.auth import DENIED_EVENT_INTERVAL, ConsoleAuth, new_token_file

NAME = "sensor-1.contoso.test"


@define(kw_only=True)
class Link:
    dialer: str
    listener: str
    state: str = "up"
    code: FailureCode | None = None
    message: str | None = None
    refused_by: str | None = None
    unvalidated_by: tuple[str, ...] = ()
    would_fail: tuple[FailureCode, ...] = ()
    notes: tuple[FailureCode, ...] = ()
    reason: str = ""


@define(kw_only=True, eq=False)
class Appliance:
    """One appliance, as far as its console needs: identity, switch, links, events."""

    name: str
    role: str
    current: Issued
    trust: tuple[x509.Certificate, ...]
    instant: dt.datetime
    validation: bool = True
    link_list: list[Link] = field(factory=list)
    peer_roles: dict[str, str] = field(factory=dict)
    log: list[Event] = field(factory=list)
    #: Events dropped from the front of ``log`` (their positions still count).
    dropped: int = 0
    #: Links ``refresh_crls`` reports as still without a new outcome.
    still_pending: tuple[str, ...] = ()
    #: The stall timeout each refresh was asked with (None: the default).
    refresh_timeouts: list[float | None] = field(factory=list)

    def identity(self) -> Issued:
        return self.current

    def trust_roots(self) -> tuple[x509.Certificate, ...]:
        return self.trust

    def now(self) -> dt.datetime:
        return self.instant

    def validation_enabled(self) -> bool:
        return self.validation

    def links(self) -> list[Link]:
        return list(self.link_list)

    def roles(self) -> dict[str, str]:
        return dict(self.peer_roles)

    def events_since(self, index: int) -> list[Event]:
        return self.log[max(index - self.dropped, 0):]

    def events_first(self) -> int:
        return self.dropped

    def conflicts(self) -> list:
        return []

    def forget(self, count: int) -> None:
        """Drop the oldest ``count`` events, as an appliance's bounded log does."""
        del self.log[:count]
        self.dropped += count

    def set_validation(self, enabled: bool) -> None:
        self.validation = enabled
        self.log.append(ValidationSwitched(at=self.instant, appliance=self.name, enabled=enabled))

    def process_links(self) -> list[Link]:
        return self.links()

    async def refresh_crls(self, timeout: float | None = None) -> tuple[str, ...]:
        await trio.lowlevel.checkpoint()
        self.refresh_timeouts.append(timeout)
        self.log.append(CrlsRefreshed(at=self.instant, appliance=self.name))
        return self.still_pending

    def halt(self, peer: str, code: FailureCode) -> None:
        """What the engine does when ``peer``'s certificate fails a check."""
        for link in self.link_list:
            if (link.dialer, link.listener) in ((self.name, peer), (peer, self.name)):
                link.state, link.code, link.message, link.refused_by = (
                    "halted", code, code.message, self.name)
                self.log.append(LinkHalted(at=self.instant, dialer=link.dialer,
                                           listener=link.listener, refused_by=self.name, code=code))

    async def upload(self, *, crt: bytes, key: bytes, chain: bytes | None,
                     passphrase: str | None) -> None:
        try:
            issued = self._check(crt, key, chain, passphrase)
        except ValidationFailed as exc:
            self.log.append(UploadRefused(at=self.instant, appliance=self.name, code=exc.code))
            raise
        await trio.lowlevel.checkpoint()
        self.current = issued
        self.log.append(CertificateUploaded(at=self.instant, appliance=self.name,
                                            subject=issued.cert.subject.rfc4514_string(),
                                            serial=issued.serial))

    def _check(self, crt: bytes, key: bytes, chain: bytes | None, passphrase: str | None) -> Issued:
        try:
            cert = x509.load_pem_x509_certificate(crt)
        except ValueError:
            raise InputError("crt", "is not a PEM certificate", "upload the .crt file") from None
        try:
            private = serialization.load_pem_private_key(
                key, passphrase.encode() if passphrase else None)
        except (TypeError, ValueError):
            if b"ENCRYPTED" in key:
                raise ValidationFailed(FailureCode.PASSPHRASE_MISMATCH) from None
            raise InputError("key", "is not a PEM private key", "upload the .key file") from None
        if private.public_key().public_numbers() != cert.public_key().public_numbers():
            raise ValidationFailed(FailureCode.KEY_MISMATCH)
        intermediates = x509.load_pem_x509_certificates(chain) if chain else []
        verifier = (PolicyBuilder().store(Store(list(self.trust))).time(self.instant)
                    .build_client_verifier())
        try:
            verifier.verify(cert, intermediates)
        except VerificationError as exc:
            raise ValidationFailed(FailureCode.CHAIN_UNTRUSTED, str(exc)) from None
        return Issued(cert=cert, key=private, chain=tuple(intermediates))


@define(frozen=True, kw_only=True)
class Pki:
    root: CertificateAuthority
    issuing: CertificateAuthority
    leaf: Issued
    self_signed: Issued
    stranger: Issued  # signed by a root nobody trusts
    now: dt.datetime


@pytest.fixture
def pki(keys) -> Pki:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    start = now - dt.timedelta(days=1)
    root = CertificateAuthority.root("Contoso Root CA", not_before=start, key=keys(2048))
    issuing = root.intermediate("Contoso Issuing CA", not_before=start, key=keys(2048))
    other = CertificateAuthority.root("Other Root CA", not_before=start, key=keys(2048))
    return Pki(
        root=root,
        issuing=issuing,
        leaf=issuing.issue(NAME, not_before=start, key=keys(2048)),
        self_signed=self_signed_leaf(NAME, not_before=start, key=keys(2048)),
        stranger=other.issue(NAME, not_before=start, key=keys(2048)),
        now=now,
    )


@pytest.fixture
def appliance(pki: Pki) -> Appliance:
    """A sensor still on its locally generated self-signed certificate."""
    return Appliance(
        name=NAME,
        role="sensor",
        current=pki.self_signed,
        trust=(pki.root.cert,),
        instant=pki.now,
        link_list=[Link(dialer=NAME, listener="console.contoso.test")],
        peer_roles={"console.contoso.test": "management-console"},
    )


@define(frozen=True, kw_only=True)
class Served:
    """A console serving, its credential, and the api-denied events it recorded."""

    address: ConsoleAddress
    auth: ConsoleAuth
    recorded: list[Event]

    @property
    def url(self) -> str:
        return self.address.url

    @property
    def host(self) -> str:
        return self.address.host

    @property
    def port(self) -> int:
        return self.address.port

    @property
    def headers(self) -> dict[str, str]:
        """What a script sends to change something: the console's token."""
        return {"Authorization": f"Bearer {self.auth.token}"}


def ticking(step: float = DENIED_EVENT_INTERVAL):
    """A clock for ``ConsoleAuth.monotonic`` that moves ``step`` at every reading:
    each refusal is far enough from the last to be an event of its own."""
    readings = itertools.count()
    return lambda: next(readings) * step


async def serve(nursery, backend, token_file: Path, *, operator_cas=(), admin_password=None,
                monotonic=None, **kwargs) -> Served:
    """``backend``'s console with a fresh token in ``token_file`` (0600).

    ``monotonic``: what spaces its api-denied events; by default every
    refusal is one (:func:`ticking`), the rate limit has tests of its own.
    """
    recorded: list[Event] = []
    auth = ConsoleAuth(token=new_token_file(token_file), token_file=token_file,
                       record=recorded.append, operator_cas=tuple(operator_cas),
                       admin_password=admin_password, monotonic=monotonic or ticking())
    address = await nursery.start(lambda task_status: serve_console(
        backend, auth=auth, task_status=task_status, **kwargs))
    return Served(address=address, auth=auth, recorded=recorded)


@pytest.fixture
async def console(nursery, appliance, tmp_path) -> Served:
    """The appliance's console, serving on a free port of 127.0.0.1."""
    return await serve(nursery, appliance, tmp_path / "console.api-token")


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(issued: Issued, passphrase: str | None = None) -> bytes:
    encryption = (serialization.BestAvailableEncryption(passphrase.encode())
                  if passphrase else serialization.NoEncryption())
    return issued.key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8, encryption)


def write_files(folder: Path, issued: Issued, root: x509.Certificate | None = None,
                passphrase: str | None = None) -> dict[str, Path]:
    """The files an admin uploads: .crt, .key (0600), .pem chain, and the root."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"crt": folder / "appliance.crt", "key": folder / "appliance.key",
             "chain": folder / "chain.pem"}
    paths["crt"].write_bytes(pem(issued.cert))
    fd = os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key_pem(issued, passphrase))
    paths["chain"].write_bytes(b"".join(pem(c) for c in issued.chain))
    if root is not None:
        paths["root"] = folder / "root.crt"
        paths["root"].write_bytes(pem(root))
    return paths

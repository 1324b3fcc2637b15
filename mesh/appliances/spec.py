"""What an appliance is before it runs: name, role, certificate, trust, links.

The channels come from the source document:

======================================  ==========================  ============
channel                                 who dials                   TLS
======================================  ==========================  ============
sensor -> management console            the sensor                  mutual
management console <-> HA console       one of them (see below)     mutual, both validate
console or sensor -> forwarding target  the forwarding appliance    server-auth
======================================  ==========================  ============

The source lets the management console and the HA console each open the
channel. The emulator keeps exactly one TCP connection per pair, so when two
specs name each other the dialer is chosen deterministically by
:func:`link_pairs`: the lower role rank dials (sensor, then management
console, then HA console, then forwarding target); equal ranks go by name.
Both ends validate either way, so which end dials changes no verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from attrs import define, field, validators
from cryptography import x509

from mesh.pki.issue import Issued
from mesh.roles import Role
from mesh.validation.policy import ValidationPolicy
from mesh.validation.revocation import CrlIndex

__all__ = ["Role", "ApplianceSpec", "LinkPair", "link_pairs"]


def _names(value: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    return tuple(str(v) for v in value)


def _role(value: Role | str) -> Role:  # a named converter: mypy's attrs plugin reads its type
    return Role.parse(value)


@define(frozen=True, kw_only=True)
class ApplianceSpec:
    """One appliance's configuration.

    Attributes:
        name: how the mesh, its links and its events call the appliance.
        hostname: its domain name, which peers expect its certificate to name
            (the "expected peer name" policy); None = the common name the PKI
            issued for it (``Mesh(pki=...)``), else ``name``.
        role: ``sensor``, ``management-console``, ``ha-console`` or
            ``forwarding-target``.
        identity: the certificate it presents; None = generate a locally
            self-signed one at first start (RSA 2048, CN = name).
        trust: the roots it trusts.
        validation: the validation switch (on by default).
        connects_to: appliances it dials (sensor -> console, console <-> HA).
        forwards_to: forwarding targets it sends alerts to (server-auth).
        crl_proxy: an HTTP proxy URL for CRL fetches.
        crl_files: CRLs given out of band; a certificate whose issuer has one
            is judged against it instead of fetching its CDP.
        crl_cache: a folder where its fetched CRLs are kept across restarts
            (:mod:`mesh.net.crl_store`); None: in memory only.
        policy: validation knobs beyond the switch (revocation hard/soft,
            allow_weak, ...); ``enabled``, ``purpose`` and ``expected_name``
            are set per link by the engine.
        check_names: whether a dialer requires the listener's certificate to
            name the listener (the "expected peer name" policy).
        host, port: where it listens (port 0 = pick one at first start and
            keep it across restarts).
        heartbeat_interval: emulated seconds between a sensor's heartbeats.
        revalidate_every: emulated seconds between re-validations of a live
            link's peer (None, the default: validate at connection start only,
            as the source does). A failed re-validation halts the live link.
    """

    name: str = field(validator=validators.min_len(1))
    role: Role = field(converter=_role)
    hostname: str | None = None
    identity: Issued | None = None
    trust: tuple[x509.Certificate, ...] = field(default=(), converter=tuple[x509.Certificate, ...])
    validation: bool = True
    connects_to: tuple[str, ...] = field(default=(), converter=_names)
    forwards_to: tuple[str, ...] = field(default=(), converter=_names)
    crl_proxy: str | None = None
    crl_files: tuple[CrlIndex, ...] = field(default=(), converter=tuple[CrlIndex, ...])
    crl_cache: Path | None = None
    policy: ValidationPolicy = field(factory=ValidationPolicy)
    check_names: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    heartbeat_interval: float = 30.0
    revalidate_every: float | None = None


@define(frozen=True, kw_only=True)
class LinkPair:
    """One link: who dials whom, and whether the listener asks for a client cert."""

    dialer: str
    listener: str
    mutual: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return (self.dialer, self.listener)


def link_pairs(specs: Iterable[ApplianceSpec]) -> list[LinkPair]:
    """Every link of a topology, one per pair of appliances, dialer chosen once.

    A name that is not in ``specs`` is still a link (to an appliance outside
    this mesh, or a typo the caller reports); its dialer is the spec naming it.
    """
    by_name = {s.name: s for s in specs}
    pairs: dict[frozenset[str], LinkPair] = {}
    for spec in by_name.values():
        wanted = [(peer, True) for peer in spec.connects_to]
        wanted += [(peer, False) for peer in spec.forwards_to]
        for peer, connects in wanted:
            if peer == spec.name:
                raise ValueError(f"appliance {spec.name!r} cannot connect to itself")
            key = frozenset((spec.name, peer))
            other = by_name.get(peer)
            dialer, listener = spec.name, peer
            if other is not None and spec.name in (*other.connects_to, *other.forwards_to):
                if (other.role.rank, other.name) < (spec.role.rank, spec.name):
                    dialer, listener = peer, spec.name
            if key in pairs:
                continue
            listener_spec = by_name.get(listener)
            if listener_spec is not None:
                mutual = listener_spec.role.validates_clients
            else:  # outside the mesh: a forwarding rule names a server-auth target
                mutual = connects if listener == peer else True
            pairs[key] = LinkPair(dialer=dialer, listener=listener, mutual=mutual)
    return list(pairs.values())

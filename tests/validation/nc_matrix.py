"""Measurement: the strict validator on a name-constraint matrix and RFC 4158 path building.

    PYTHONPATH=. .venv/bin/python tests/validation/nc_matrix.py [--sample N] [--seed S]
        [--family F ...] [--no-pyca] [--purpose server|none] [--shuffle SEED] [-v]

Two generated families, after the public test design of Netflix's bettertls
(its ``nameconstraints`` and ``pathbuilding`` suites), rebuilt here with
:mod:`hardpki`'s certificate helpers:

``nc`` — name constraints x hostnames. Chain: leaf <- ICA (a critical
nameConstraints) <- local root <- trust root; only the trust root is trusted,
the ICA and local root are presented. ECDSA P-256 / SHA-256. The product of
hostname type {DNS ``test.localhost``, IP ``127.0.0.1``}, CN type {DNS, IP} x
CN value {none, valid, invalid}, DNS SAN {none, ``test.localhost``,
``bad.example.com``}, IP SAN {none, 127.0.0.1, 1.1.1.1}, permitted DNS {none,
``localhost``, ``example.com``}, permitted IP {none, 127.0.0.0/24,
1.1.1.0/24}, excluded DNS {none, ``localhost``, ``bad.example.com``},
excluded IP {none, 127.0.0.0/24, 1.1.1.0/24}: 2*2*3**7 = 8,748 cases (the
CN type does not matter without a CN; the raw product is kept so the figures
count the same cases the original design counts). Expected (the rules): accept
iff the hostname is in a SAN of its own type (the CN is never used for
matching) and every dNSName/iPAddress SAN satisfies the constraints of its
type (constraints never apply to the CN). An ICA whose four constraints are
all "none" carries no nameConstraints extension.

``nc-extra`` — the hostname smuggled into other SAN forms, all expected
refused: the DNS host under every GeneralName tag 0-15 as a primitive (raw,
and inside http/https/spiffe/unspec URIs), the IP as 4 raw bytes and as text
under every tag, separator smuggling (``bad.example.com, DNS:test.localhost``
and its variants) under every tag, each beside a constraint that forbids the
smuggled value in a correctly typed SAN. Tags 0/3/4/5/9-15 as primitives make
the SAN extension malformed: refused, never a crash. 737 cases.

``pb`` — path building over RFC 4158's graphs: LINEAR, TWO_ROOTS,
FIGURE_SEVEN (2.3) and BRIDGE_CA_PKI (2.4). Each edge is a certificate issued
by the source node's key for the destination's subject and key (so many
certificates share a subject and key); the destination node's certificate is
the leaf (SAN DNS ``localhost``, KU digitalSignature, EKU serverAuth); the
trust anchor is the graph's source node, every other certificate an untrusted
intermediate. Invalid edges are broken one way: EXPIRED (its validity ends
before the instant judged), NAME_CONSTRAINTS (critical permitted DNS
``bad.example.com``), BAD_EKU (EKU emailProtection only), MISSING_BC (no
basicConstraints), NOT_A_CA (cA=FALSE), SHA1 (signed ecdsa-with-SHA1).
Expected: accept iff the graph still has a path from the anchor to the leaf
without the invalid edges. Three sets: ``pb`` (the original 81 cases),
``pb-sweep`` (every single edge x every reason, for the graphs and anchors of
the original; a leaf edge only with the reasons that break a leaf) and
``pb-pairs`` (every pair of CA edges of FIGURE_SEVEN x every reason).

One deliberate difference from the original's instant: there an EXPIRED case
expected to fail is judged after the leaf's notAfter (so everything has
expired) and one expected to pass at notBefore+1s (so the "expired" edge is
still valid). Here every case is judged at notBefore+1s and the expired
certificate's validity ends a day before that, so it is expired when judged
and the validator has to route around it.

Variants (not part of the reproduction, for probing): ``--family
nc-rollover`` runs the nc matrix with the constrained ICA's key rolled over
(the leaf is issued by a self-issued certificate the constrained ICA
signed; the expected answers do not change); ``--shuffle SEED`` presents
the intermediates in a shuffled order; ``--purpose none`` judges mesh with
no purpose in its policy (so no EKU is required anywhere).

Judges: mesh (:func:`oracles.mesh_verdict`: ``validate_peer``, strict
profile, ``ValidationPolicy(purpose="server", expected_name=host)``) and,
as an oracle column, pyca (:func:`oracles.pyca_verdict`:
``PolicyBuilder().store(...).time(...).build_server_verifier(...)``).

Output: per family, the totals (agree, false accepts, false rejects) for
mesh and pyca, then every class of mesh disagreement with its count, one
example, and how pyca answered on that class.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import itertools
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attrs import define, evolve, field  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtensionOID, NameOID  # noqa: E402

from hardpki import (  # noqa: E402
    EMAIL_PROTECTION,
    SERVER_AUTH,
    Authority,
    _children,
    _wrap,
    constraints,
    dns,
    ec_key,
    key_usage,
    make_cert,
    net,
)
from oracles import mesh_verdict, pyca_verdict  # noqa: E402

UTC = dt.timezone.utc
#: The emulated "now" the certificates are made around (never the wall clock).
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOT_BEFORE = NOW - dt.timedelta(hours=24)
NOT_AFTER = NOW + dt.timedelta(days=366)
#: Every case is judged at the leaf's notBefore + 1 s.
AT = NOT_BEFORE + dt.timedelta(seconds=1)
#: An EXPIRED edge: valid for a month that ended a day before AT.
EXPIRED_FROM = AT - dt.timedelta(days=30)
EXPIRED_TO = AT - dt.timedelta(days=1)

CERT_SIGN = key_usage(key_cert_sign=True)
ORG = "mesh nc matrix"


def name(common_name: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORG)]
    if common_name is not None:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


@define(frozen=True, kw_only=True)
class MatrixCase:
    """One generated case, shaped as :mod:`oracles` reads a case."""

    id: str
    family: str
    chain: tuple[x509.Certificate, ...]
    trust: tuple[x509.Certificate, ...]
    expected_name: str
    expect_valid: bool
    #: Why the expected answer is a refusal (empty when valid).
    reasons: tuple[str, ...] = ()
    #: The class of the case for grouping (e.g. "cn-only-host-match").
    tags: tuple[str, ...] = ()
    at: dt.datetime = AT
    purpose: str = "server"
    crls: tuple[Any, ...] = field(default=())

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self.chain[1:]


# -- family nc: name constraints x hostnames ----------------------------------------

NONE, VALID, INVALID = "n", "v", "i"
TRI = (NONE, VALID, INVALID)
HOST_DNS, HOST_IP = "test.localhost", "127.0.0.1"
BAD_DNS, BAD_IP = "bad.example.com", "1.1.1.1"
SAN_DNS_TAG, SAN_IP_TAG = 2, 7


@define(frozen=True)
class NcSpec:
    """One point of the matrix (values are NONE/VALID/INVALID, types "dns"/"ip")."""

    host: str  # "dns" | "ip"
    cn_type: str  # "dns" | "ip"
    cn: str
    dns_san: str
    ip_san: str
    permit_dns: str
    permit_ip: str
    exclude_dns: str
    exclude_ip: str

    @property
    def id(self) -> str:
        return (
            f"nc-{self.host}-cn{self.cn_type}{self.cn}-dns{self.dns_san}-ip{self.ip_san}"
            f"-pd{self.permit_dns}-pi{self.permit_ip}-xd{self.exclude_dns}-xi{self.exclude_ip}"
        )

    @property
    def hostname(self) -> str:
        return HOST_DNS if self.host == "dns" else HOST_IP

    @property
    def cn_value(self) -> str | None:
        if self.cn == NONE:
            return None
        good = self.cn == VALID
        if self.cn_type == "dns":
            return HOST_DNS if good else BAD_DNS
        return HOST_IP if good else BAD_IP


def nc_specs() -> Iterator[NcSpec]:
    """The full product, in the original's loop order."""
    for host, cn_type, cn, dns_san, ip_san, pd, pi, xd, xi in itertools.product(
        ("dns", "ip"), ("dns", "ip"), TRI, TRI, TRI, TRI, TRI, TRI, TRI
    ):
        yield NcSpec(host, cn_type, cn, dns_san, ip_san, pd, pi, xd, xi)


def _dns_in(name_: str, subtree: str) -> bool:
    name_, subtree = name_.lower(), subtree.lower()
    return name_ == subtree or name_.endswith("." + subtree)


_PERMIT_DNS = {VALID: "localhost", INVALID: "example.com"}
_EXCLUDE_DNS = {VALID: "localhost", INVALID: "bad.example.com"}
_NETS = {VALID: "127.0.0.0/24", INVALID: "1.1.1.0/24"}


def nc_expectation(spec: NcSpec) -> tuple[str, ...]:
    """Why the case must be refused (empty: accept). The written rules, not a validator."""
    reasons = []
    dns_names = {VALID: [HOST_DNS], INVALID: [BAD_DNS], NONE: []}[spec.dns_san]
    ip_names = {VALID: [HOST_IP], INVALID: [BAD_IP], NONE: []}[spec.ip_san]
    if spec.host == "dns" and HOST_DNS not in dns_names:
        reasons.append("host not in a dNSName SAN")
    if spec.host == "ip" and HOST_IP not in ip_names:
        reasons.append("host not in an iPAddress SAN")
    for value in dns_names:
        if spec.permit_dns != NONE and not _dns_in(value, _PERMIT_DNS[spec.permit_dns]):
            reasons.append(f"dNSName {value} outside permitted {_PERMIT_DNS[spec.permit_dns]}")
        if spec.exclude_dns != NONE and _dns_in(value, _EXCLUDE_DNS[spec.exclude_dns]):
            reasons.append(f"dNSName {value} inside excluded {_EXCLUDE_DNS[spec.exclude_dns]}")
    for value in ip_names:
        address = ipaddress.ip_address(value)
        if spec.permit_ip != NONE and address not in ipaddress.ip_network(_NETS[spec.permit_ip]):
            reasons.append(f"iPAddress {value} outside permitted {_NETS[spec.permit_ip]}")
        if spec.exclude_ip != NONE and address in ipaddress.ip_network(_NETS[spec.exclude_ip]):
            reasons.append(f"iPAddress {value} inside excluded {_NETS[spec.exclude_ip]}")
    return tuple(reasons)


def nc_tags(spec: NcSpec) -> tuple[str, ...]:
    """Facts a disagreement class is described by."""
    tags = []
    has_san = spec.dns_san != NONE or spec.ip_san != NONE
    cn_matches = spec.cn == VALID and spec.cn_type == spec.host
    if not has_san and cn_matches and spec.host == "dns":
        tags.append("cn-only-host-match")
    return tuple(tags)


class NcPki:
    """Keys and certificates of the nc family, each made once.

    ``rollover``: the variant ``nc-rollover``, where the constrained ICA has
    rolled its key over: the leaf is issued by a self-issued certificate
    (same name, new key, no constraints of its own) that the constrained ICA
    signed. RFC 5280 6.1.3 (b)/(c) apply the ICA's constraints to the leaf
    just the same, so every expected answer is the base matrix's.
    """

    def __init__(self, *, rollover: bool = False, trust: Authority | None = None) -> None:
        self.family = "nc-rollover" if rollover else "nc"
        self.trust = trust or Authority(
            make_cert(name("nc trust root"), ec_key("ncm-trust"), None, ca=True,
                      usage=CERT_SIGN, not_before=NOT_BEFORE, not_after=NOT_AFTER),
            ec_key("ncm-trust"),
        )
        self.local_root = Authority(
            make_cert(name("local_root"), ec_key("ncm-local-root"), self.trust, ca=True,
                      usage=CERT_SIGN, not_before=NOT_BEFORE, not_after=NOT_AFTER),
            ec_key("ncm-local-root"),
        )
        self._icas: dict[tuple[str, ...], Authority] = {}
        self._leaves: dict[tuple[Any, ...], x509.Certificate] = {}
        # Every ICA variant has the same name and key (so the same SKI): one
        # leaf (and one rollover certificate) serves them all.
        self._ica_for_leaves = self.ica(NONE, NONE, NONE, NONE)
        self.rollover: Authority | None = None
        if rollover:
            self.rollover = Authority(
                make_cert(name("local_ica"), ec_key("ncm-ica-new"), self._ica_for_leaves,
                          ca=True, usage=CERT_SIGN, not_before=NOT_BEFORE, not_after=NOT_AFTER),
                ec_key("ncm-ica-new"),
            )
            self._ica_for_leaves = self.rollover

    def ica(self, pd: str, pi: str, xd: str, xi: str) -> Authority:
        key = (pd, pi, xd, xi)
        cached = self._icas.get(key)
        if cached is not None:
            return cached
        permitted = []
        excluded = []
        if pd != NONE:
            permitted += dns(_PERMIT_DNS[pd])
        if pi != NONE:
            permitted.append(net(_NETS[pi]))
        if xd != NONE:
            excluded += dns(_EXCLUDE_DNS[xd])
        if xi != NONE:
            excluded.append(net(_NETS[xi]))
        nc = constraints(permitted, excluded) if (permitted or excluded) else None
        authority = Authority(
            make_cert(name("local_ica"), ec_key("ncm-ica"), self.local_root, ca=True,
                      usage=CERT_SIGN, name_constraints=nc,
                      not_before=NOT_BEFORE, not_after=NOT_AFTER),
            ec_key("ncm-ica"),
        )
        self._icas[key] = authority
        return authority

    def leaf(self, cn: str | None, sans: Sequence[tuple[int, bytes]]) -> x509.Certificate:
        key = (cn, tuple(sans))
        cert = self._leaves.get(key)
        if cert is None:
            extra = []
            if sans:
                extra.append((raw_san(sans), False))
            cert = self._leaves[key] = make_cert(
                name(cn), ec_key("ncm-leaf"), self._ica_for_leaves, ca=False,
                eku=[SERVER_AUTH], ski=False, extra=extra,
                not_before=NOT_BEFORE, not_after=NOT_AFTER,
            )
        return cert

    def case(self, spec: NcSpec) -> MatrixCase:
        sans: list[tuple[int, bytes]] = []
        if spec.dns_san != NONE:
            sans.append((SAN_DNS_TAG, (HOST_DNS if spec.dns_san == VALID else BAD_DNS).encode()))
        if spec.ip_san != NONE:
            address = HOST_IP if spec.ip_san == VALID else BAD_IP
            sans.append((SAN_IP_TAG, ipaddress.ip_address(address).packed))
        leaf = self.leaf(spec.cn_value, sans)
        ica = self.ica(spec.permit_dns, spec.permit_ip, spec.exclude_dns, spec.exclude_ip)
        reasons = nc_expectation(spec)
        cas = (ica.cert,) if self.rollover is None else (self.rollover.cert, ica.cert)
        return MatrixCase(
            id=spec.id if self.rollover is None else spec.id.replace("nc-", "ncr-", 1),
            family=self.family,
            chain=(leaf, *cas, self.local_root.cert, self.trust.cert),
            trust=(self.trust.cert,), expected_name=spec.hostname,
            expect_valid=not reasons, reasons=reasons, tags=nc_tags(spec),
        )


def raw_san(entries: Sequence[tuple[int, bytes]]) -> x509.UnrecognizedExtension:
    """A subjectAltName of context-specific primitives ``[tag] value``, as given
    (no checking: the point is to carry malformed names too)."""
    body = b"".join(_wrap(0x80 | tag, value) for tag, value in entries)
    return x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, _wrap(0x30, body))


# -- family nc-extra: smuggled SANs -------------------------------------------------


@define(frozen=True)
class ExtraSpec:
    id: str
    host: str
    dns_san: str
    ip_san: str
    permit_dns: str
    permit_ip: str
    exclude_dns: str
    exclude_ip: str
    tag: int
    value: bytes
    kind: str  # "hostname-encoding" | "ip-encoding" | "separator" | "uri"


def extra_specs() -> Iterator[ExtraSpec]:
    """The extra-SAN cases: all expected refused."""
    yield ExtraSpec("nc-extra-uri-foo-bar", "dns", INVALID, NONE, NONE, NONE, NONE, NONE,
                    6, b"http://foo.bar, DNS:test.localhost", "uri")
    encodings = [HOST_DNS] + [f"{s}://{HOST_DNS}" for s in ("http", "https", "spiffe", "unspec")]
    for tag in range(16):
        for index, text in enumerate(encodings):
            yield ExtraSpec(f"nc-extra-t{tag}-host{index}-permit", "dns", INVALID, NONE,
                            INVALID, NONE, NONE, NONE, tag, text.encode(), "hostname-encoding")
            yield ExtraSpec(f"nc-extra-t{tag}-host{index}-exclude", "dns", INVALID, NONE,
                            NONE, NONE, VALID, NONE, tag, text.encode(), "hostname-encoding")
        for index, raw in enumerate((ipaddress.ip_address(HOST_IP).packed, HOST_IP.encode())):
            yield ExtraSpec(f"nc-extra-t{tag}-ip{index}-permit", "ip", NONE, INVALID,
                            NONE, INVALID, NONE, NONE, tag, raw, "ip-encoding")
            yield ExtraSpec(f"nc-extra-t{tag}-ip{index}-exclude", "ip", NONE, INVALID,
                            NONE, NONE, NONE, VALID, tag, raw, "ip-encoding")
    for s_index, separator in enumerate((", ", ",", ";", ":")):
        for p_index, prefix in enumerate(("", "DNS:")):
            for l_index, leading in enumerate((BAD_DNS, "http://" + BAD_DNS)):
                value = (leading + separator + prefix + HOST_DNS).encode()
                for tag in range(16):
                    base = f"nc-extra-t{tag}-sep{s_index}{p_index}{l_index}"
                    yield ExtraSpec(base + "-permit", "dns", INVALID, NONE, INVALID, NONE,
                                    NONE, NONE, tag, value, "separator")
                    yield ExtraSpec(base + "-exclude", "dns", INVALID, NONE, NONE, NONE,
                                    VALID, NONE, tag, value, "separator")


def extra_tags(spec: ExtraSpec) -> tuple[str, ...]:
    malformed = spec.tag in (0, 3, 4, 5) or spec.tag >= 9
    if spec.tag == 7 and len(spec.value) not in (4, 16):
        malformed = True
    return (f"tag {spec.tag}", "malformed SAN" if malformed else "well-formed SAN", spec.kind)


def extra_case(pki: NcPki, spec: ExtraSpec) -> MatrixCase:
    sans: list[tuple[int, bytes]] = []
    if spec.dns_san != NONE:
        sans.append((SAN_DNS_TAG, (HOST_DNS if spec.dns_san == VALID else BAD_DNS).encode()))
    if spec.ip_san != NONE:
        address = HOST_IP if spec.ip_san == VALID else BAD_IP
        sans.append((SAN_IP_TAG, ipaddress.ip_address(address).packed))
    sans.append((spec.tag, spec.value))
    leaf = pki.leaf(None, sans)
    ica = pki.ica(spec.permit_dns, spec.permit_ip, spec.exclude_dns, spec.exclude_ip)
    return MatrixCase(
        id=spec.id, family="nc-extra",
        chain=(leaf, ica.cert, pki.local_root.cert, pki.trust.cert),
        trust=(pki.trust.cert,), expected_name=HOST_DNS if spec.host == "dns" else HOST_IP,
        expect_valid=False,
        reasons=("the smuggled name is never the host's SAN, and the typed SAN/NC refuse",),
        tags=extra_tags(spec),
    )


# -- family pb: RFC 4158 path building ----------------------------------------------

Edge = tuple[str, str]

GRAPHS: dict[str, tuple[Edge, ...]] = {
    "LINEAR": (("ICA", "EE"), ("Trust Anchor", "ICA")),
    # RFC 4158 2.3, figure 7
    "FIGURE_SEVEN": (
        ("B", "EE"), ("C", "B"), ("A", "B"), ("C", "A"), ("A", "C"),
        ("Trust Anchor", "C"), ("Trust Anchor", "A"),
    ),
    "TWO_ROOTS": (("ICA", "EE"), ("Root1", "ICA"), ("Root2", "ICA")),
    # RFC 4158 2.4, the bridge CA PKI
    "BRIDGE_CA_PKI": (
        ("F", "H"), ("F", "G"), ("G", "F"), ("H", "I"), ("I", "H"), ("G", "I"),
        ("TA W", "F"), ("TA W", "G"),
        ("J", "K"), ("N", "EE"), ("L", "N"), ("L", "M"), ("TA X", "J"), ("TA X", "L"),
        ("B", "E"), ("B", "D"), ("A", "B"), ("C", "B"), ("A", "C"), ("C", "A"),
        ("TA Y", "A"), ("TA Y", "C"),
        ("R", "S"), ("O", "R"), ("O", "Q"), ("P", "S"), ("TA Z", "O"), ("TA Z", "P"),
        ("TA W", "Bridge CA"), ("Bridge CA", "TA W"), ("TA X", "Bridge CA"),
        ("Bridge CA", "TA X"), ("TA Y", "Bridge CA"), ("Bridge CA", "TA Y"),
        ("TA Z", "Bridge CA"), ("Bridge CA", "TA Z"),
    ),
}

REASONS = ("EXPIRED", "NAME_CONSTRAINTS", "BAD_EKU", "MISSING_BC", "NOT_A_CA", "SHA1")
#: The reasons that break a leaf (a leaf without basicConstraints, or with
#: cA=FALSE, is a correct leaf).
LEAF_REASONS = ("EXPIRED", "NAME_CONSTRAINTS", "BAD_EKU", "SHA1")


def reachable(edges: Sequence[Edge], invalid: Iterable[Edge], src: str, dst: str) -> bool:
    """Is there a path from src to dst over the valid edges (depth first)?"""
    broken = set(invalid)
    stack, seen = [src], {src}
    while stack:
        node = stack.pop()
        if node == dst:
            return True
        for edge in edges:
            if edge[0] == node and edge not in broken and edge[1] not in seen:
                seen.add(edge[1])
                stack.append(edge[1])
    return False


@define(frozen=True)
class PbSpec:
    id: str
    family: str  # "pb" | "pb-sweep" | "pb-pairs"
    graph: str
    src: str
    dst: str
    invalid: tuple[Edge, ...] = ()
    reason: str | None = None

    @property
    def expect_valid(self) -> bool:
        return reachable(GRAPHS[self.graph], self.invalid, self.src, self.dst)


def _slug(text: str) -> str:
    return text.lower().replace(" ", "").replace("_", "")


def _pb_id(prefix: str, graph: str, src: str, dst: str, invalid: Sequence[Edge],
           reason: str | None) -> str:
    parts = [prefix, _slug(graph), _slug(src), _slug(dst)]
    for a, b in invalid:
        parts.append(f"{_slug(a)}to{_slug(b)}")
    if reason:
        parts.append(_slug(reason))
    return "-".join(parts)


#: The original's explicit cases: (graph, src, dst, invalid edges, reason or None = every reason).
_EXPLICIT: tuple[tuple[str, str, str, tuple[Edge, ...]], ...] = (
    ("LINEAR", "Trust Anchor", "EE", ()),
    ("LINEAR", "Trust Anchor", "EE", (("Trust Anchor", "ICA"),)),
    ("LINEAR", "ICA", "EE", (("Trust Anchor", "ICA"),)),
    ("TWO_ROOTS", "Root1", "EE", ()),
    ("TWO_ROOTS", "Root2", "EE", ()),
    ("TWO_ROOTS", "Root1", "EE", (("Root2", "ICA"),)),
    ("TWO_ROOTS", "Root2", "EE", (("Root1", "ICA"),)),
    ("TWO_ROOTS", "Root1", "EE", (("Root1", "ICA"),)),
    ("TWO_ROOTS", "Root2", "EE", (("Root2", "ICA"),)),
    ("FIGURE_SEVEN", "Trust Anchor", "EE", ()),
    ("FIGURE_SEVEN", "Trust Anchor", "EE", (("Trust Anchor", "C"), ("A", "B"))),
    ("FIGURE_SEVEN", "Trust Anchor", "EE", (("Trust Anchor", "A"), ("C", "B"))),
    ("BRIDGE_CA_PKI", "TA Z", "D", ()),
    ("BRIDGE_CA_PKI", "TA Z", "EE", ()),
    ("BRIDGE_CA_PKI", "TA Z", "EE", (("TA X", "Bridge CA"),)),
    ("BRIDGE_CA_PKI", "TA Z", "EE", (("Bridge CA", "TA X"),)),
    ("BRIDGE_CA_PKI", "TA Z", "EE", (("TA Z", "Bridge CA"),)),
)


def pb_specs() -> Iterator[PbSpec]:
    """The original 81, then the single-edge sweep, then FIGURE_SEVEN's pairs."""
    n = itertools.count()
    yield PbSpec(f"pb-{next(n):02d}-" + _pb_id("", "LINEAR", "Trust Anchor", "EE", (), None)[1:],
                 "pb", "LINEAR", "Trust Anchor", "EE")
    for root_ in ("Root1", "Root2"):
        yield PbSpec(f"pb-{next(n):02d}-" + _pb_id("", "TWO_ROOTS", root_, "EE", (), None)[1:],
                     "pb", "TWO_ROOTS", root_, "EE")
    for reason in REASONS:
        invalid = (("Trust Anchor", "ICA"),)
        yield PbSpec(
            f"pb-{next(n):02d}-" + _pb_id("", "LINEAR", "Trust Anchor", "EE", invalid, reason)[1:],
            "pb", "LINEAR", "Trust Anchor", "EE", invalid, reason,
        )
    for graph, src, dst, invalid in _EXPLICIT:
        for reason in (REASONS if invalid else (None,)):
            yield PbSpec(f"pb-{next(n):02d}-" + _pb_id("", graph, src, dst, invalid, reason)[1:],
                         "pb", graph, src, dst, invalid, reason)
    anchors = sorted({(g, s, d) for g, s, d, _ in _EXPLICIT}, key=lambda t: (t[0], t[1], t[2]))
    for graph, src, dst in anchors:
        for edge in GRAPHS[graph]:
            for reason in (LEAF_REASONS if edge[1] == dst else REASONS):
                yield PbSpec(_pb_id("pbs", graph, src, dst, (edge,), reason), "pb-sweep",
                             graph, src, dst, (edge,), reason)
    ca_edges = [e for e in GRAPHS["FIGURE_SEVEN"] if e[1] != "EE"]
    for pair in itertools.combinations(ca_edges, 2):
        for reason in REASONS:
            yield PbSpec(_pb_id("pbp", "FIGURE_SEVEN", "Trust Anchor", "EE", pair, reason),
                         "pb-pairs", "FIGURE_SEVEN", "Trust Anchor", "EE", pair, reason)


_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_ECDSA_SHA1 = bytes.fromhex("300906072a8648ce3d0401")


def resign_ecdsa_sha1(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """``cert`` signed ecdsa-with-SHA1 by ``key`` (cryptography will not build
    one; :func:`mesh.pki.faults.resign_sha1` does this for RSA only)."""
    parts = _children(cert.tbs_certificate_bytes)
    assert parts[2] == _ECDSA_SHA256, parts[2].hex()
    parts[2] = _ECDSA_SHA1
    tbs = _wrap(0x30, b"".join(parts))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA1()))  # noqa: S303 -- the point of the case
    der = _wrap(0x30, tbs + _ECDSA_SHA1 + _wrap(0x03, b"\x00" + signature))
    return x509.load_der_x509_certificate(der)


class PbPki:
    """The nodes' keys and self-signed identities (name, key, SKI), made once."""

    def __init__(self, trust: Authority) -> None:
        self.trust = trust
        self._nodes: dict[str, Authority] = {}

    def node(self, label: str) -> Authority:
        authority = self._nodes.get(label)
        if authority is None:
            key = ec_key(f"pb-node-{label}")
            authority = self._nodes[label] = Authority(
                make_cert(name(label), key, None, ca=True, usage=CERT_SIGN,
                          not_before=NOT_BEFORE, not_after=NOT_AFTER),
                key,
            )
        return authority

    def case(self, spec: PbSpec) -> MatrixCase:
        def who(label: str) -> Authority:
            return self.trust if label == spec.src else self.node(label)

        leaves, inters = [], []
        for edge in GRAPHS[spec.graph]:
            src, dst = who(edge[0]), who(edge[1])
            broken = spec.reason if edge in spec.invalid else None
            cert = edge_cert(src, dst, is_leaf=edge[1] == spec.dst, reason=broken)
            (leaves if edge[1] == spec.dst else inters).append(cert)
        assert len(leaves) == 1, spec
        tags = (spec.graph, spec.reason or "no invalid edge")
        return MatrixCase(
            id=spec.id, family=spec.family, chain=(*leaves, *inters),
            trust=(self.trust.cert,), expected_name="localhost",
            expect_valid=spec.expect_valid,
            reasons=() if spec.expect_valid else
            (f"every path uses an invalid edge ({spec.reason})",),
            tags=tags,
        )


def edge_cert(src: Authority, dst: Authority, *, is_leaf: bool, reason: str | None
              ) -> x509.Certificate:
    """The certificate ``src`` issues for ``dst``'s name and key, broken by ``reason``."""
    kw: dict[str, Any] = {"not_before": NOT_BEFORE, "not_after": NOT_AFTER}
    if is_leaf:
        subject = name("EE leaf")
        kw.update(ca=False, san=dns("localhost"), eku=[SERVER_AUTH], ski=False)
    else:
        subject = dst.name
        kw.update(ca=True, usage=CERT_SIGN)
    if reason == "EXPIRED":
        kw.update(not_before=EXPIRED_FROM, not_after=EXPIRED_TO)
    elif reason == "NAME_CONSTRAINTS":
        kw["name_constraints"] = constraints(dns("bad.example.com"))
    elif reason == "BAD_EKU":
        kw["eku"] = [EMAIL_PROTECTION]
    elif reason == "MISSING_BC":
        kw["basic_constraints"] = False
    elif reason == "NOT_A_CA":
        kw.update(ca=False, ski=False)  # keyCertSign kept, as the original's template
    cert = make_cert(subject, dst.key, src, **kw)
    if reason == "SHA1":
        assert isinstance(src.key, ec.EllipticCurvePrivateKey)
        cert = resign_ecdsa_sha1(cert, src.key)
    return cert


# -- the run --------------------------------------------------------------------------


@define(frozen=True)
class Result:
    case: MatrixCase
    mesh: bool
    mesh_code: str | None
    mesh_detail: str
    pyca: bool
    pyca_detail: str

    @property
    def mesh_agrees(self) -> bool:
        return self.mesh is self.case.expect_valid

    @property
    def pyca_agrees(self) -> bool:
        return self.pyca is self.case.expect_valid


#: The reproduction (run by default), then the variants (opt-in with --family).
REPRODUCTION = ("nc", "nc-extra", "pb", "pb-sweep", "pb-pairs")
FAMILIES = (*REPRODUCTION, "nc-rollover")


def all_specs(families: Sequence[str]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if "nc" in families:
        out += [("nc", s) for s in nc_specs()]
    if "nc-rollover" in families:
        out += [("nc-rollover", s) for s in nc_specs()]
    if "nc-extra" in families:
        out += [("nc-extra", s) for s in extra_specs()]
    pb = [s for s in pb_specs() if s.family in families]
    out += [(s.family, s) for s in pb]
    return out


class Builder:
    def __init__(self) -> None:
        self.nc = NcPki()
        self.pb = PbPki(self.nc.trust)
        self._rollover: NcPki | None = None

    def build(self, family: str, spec: Any) -> MatrixCase:
        if family == "nc":
            return self.nc.case(spec)
        if family == "nc-rollover":
            if self._rollover is None:
                self._rollover = NcPki(rollover=True, trust=self.nc.trust)
            return self._rollover.case(spec)
        if family == "nc-extra":
            return extra_case(self.nc, spec)
        return self.pb.case(spec)


def select(families: Sequence[str], sample: int | None, seed: int) -> list[tuple[str, Any]]:
    """Every spec of ``families``, or a deterministic sample of ``sample`` per family."""
    specs = all_specs(families)
    if sample is None:
        return specs
    by_family: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for item in specs:
        by_family[item[0]].append(item)
    rng = random.Random(seed)
    out = []
    for family in families:
        items = by_family.get(family, [])
        out += items if len(items) <= sample else rng.sample(items, sample)
    return out


def judge(case: MatrixCase, *, with_pyca: bool = True, purpose: str | None = "server"
          ) -> Result:
    """mesh's and pyca's answers. ``purpose`` is what mesh's policy asks of the
    leaf (None: no purpose, a variant); pyca always verifies a server."""
    accepted, code, detail = mesh_verdict(evolve(case, purpose=purpose))  # type: ignore[arg-type]
    if with_pyca:
        pyca_ok, pyca_why = pyca_verdict(case)  # type: ignore[arg-type]
    else:
        pyca_ok, pyca_why = case.expect_valid, "not run"
    return Result(case, accepted, code, detail, pyca_ok, pyca_why)


def shuffled(case: MatrixCase, seed: int) -> MatrixCase:
    """The case with its intermediates in a random (per case, reproducible) order."""
    rest = list(case.chain[1:])
    random.Random(f"{seed}:{case.id}").shuffle(rest)
    return evolve(case, chain=(case.chain[0], *rest))


def run(specs: Sequence[tuple[str, Any]], *, with_pyca: bool = True,
        purpose: str | None = "server", shuffle: int | None = None,
        progress: Callable[[int], None] | None = None) -> list[Result]:
    builder = Builder()
    results = []
    for index, (family, spec) in enumerate(specs):
        case = builder.build(family, spec)
        if shuffle is not None:
            case = shuffled(case, shuffle)
        results.append(judge(case, with_pyca=with_pyca, purpose=purpose))
        if progress and index % 500 == 499:
            progress(index + 1)
    return results


def refusal_kind(case: MatrixCase) -> str:
    """Why an expected refusal is refused, coarsely (for the code table)."""
    if case.family in ("nc", "nc-rollover"):
        host = any(r.startswith("host not in") for r in case.reasons)
        constrained = any(not r.startswith("host not in") for r in case.reasons)
        return " + ".join(k for k, on in (("host not in a SAN of its type", host),
                                           ("a SAN violates the constraints", constrained)) if on)
    if case.family == "nc-extra":
        return case.tags[1]
    return f"invalid edge {case.tags[1]}"


def _short(detail: str) -> str:
    """A mesh detail without the certificate-specific parts, for grouping."""
    text = detail.split(" (OpenSSL")[0]
    for marker in (": expected ", "; the certificate names"):
        text = text.split(marker)[0]
    if text.startswith("expected "):
        return "name mismatch"
    return text[:140]


def disagreement_class(result: Result) -> str:
    """A short description of why mesh disagrees with the expected answer."""
    case = result.case
    direction = "false accept" if result.mesh else "false reject"
    if case.family.startswith("nc") and "cn-only-host-match" in case.tags and result.mesh:
        return f"{direction}: cn-only-host-match"
    if result.mesh:
        why = "; ".join(case.reasons)
        return f"{direction} [{case.family}]: expected refusal because {why}" + (
            f" ({', '.join(case.tags)})" if case.family.startswith("pb") else ""
        )
    return (f"{direction} [{case.family}]: mesh {result.mesh_code}: {_short(result.mesh_detail)}"
            + (f" ({', '.join(case.tags)})" if case.family.startswith("pb") else ""))


def summarize(results: Sequence[Result], *, verbose: bool = False, out: Any = sys.stdout) -> None:
    by_family: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        by_family[result.case.family].append(result)
    for family in FAMILIES:
        rows = by_family.get(family)
        if not rows:
            continue
        print(f"\n== {family}: {len(rows)} cases "
              f"({sum(r.case.expect_valid for r in rows)} expected valid)", file=out)
        ran_pyca = any(r.pyca_detail != "not run" for r in rows)
        for judge_name, agrees, says in (
            ("mesh", lambda r: r.mesh_agrees, lambda r: r.mesh),
            ("pyca", lambda r: r.pyca_agrees, lambda r: r.pyca),
        ):
            if judge_name == "pyca" and not ran_pyca:
                print("  pyca: not run", file=out)
                continue
            fa = sum(1 for r in rows if says(r) and not r.case.expect_valid)
            fr = sum(1 for r in rows if not says(r) and r.case.expect_valid)
            print(f"  {judge_name}: agree {sum(agrees(r) for r in rows)}, "
                  f"false accepts {fa}, false rejects {fr}", file=out)
        codes = Counter((refusal_kind(r.case), r.mesh_code) for r in rows
                        if not r.case.expect_valid and not r.mesh)
        if codes:
            print("  mesh's primary code on the refusals it agrees with, by why they are refused:",
                  file=out)
            for (kind, code), count in sorted(codes.items()):
                print(f"      {count:5d}  {kind} -> {code}", file=out)
        classes: dict[str, list[Result]] = defaultdict(list)
        for r in rows:
            if not r.mesh_agrees:
                classes[disagreement_class(r)].append(r)
        cn_only = sum(len(v) for k, v in classes.items() if k.endswith("cn-only-host-match"))
        print(f"  mesh disagreements: {sum(len(v) for v in classes.values())} "
              f"(cn-only class {cn_only}, other {sum(len(v) for v in classes.values()) - cn_only})",
              file=out)
        for label, members in sorted(classes.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            pyca = Counter("pyca agrees with expected" if m.pyca_agrees else "pyca also disagrees"
                           for m in members)
            example = members[0]
            print(f"  - {len(members):5d}  {label}", file=out)
            print(f"           pyca: {dict(pyca)}", file=out)
            print(f"           e.g. {example.case.id}: mesh {example.mesh_code or 'valid'}: "
                  f"{example.mesh_detail[:300]}", file=out)
            if example.case.reasons:
                print(f"           expected refusal: {'; '.join(example.case.reasons)}", file=out)
            print(f"           pyca said: {example.pyca_detail[:200]}", file=out)
            if verbose:
                for m in members[1:]:
                    print(f"           also {m.case.id}", file=out)
        pyca_only: dict[str, list[Result]] = defaultdict(list)
        for r in rows:
            if not r.pyca_agrees:
                key = ("false accept" if r.pyca else "false reject") + ": " + r.pyca_detail[:90]
                pyca_only[key].append(r)
        if pyca_only:
            print("  pyca disagreements:", file=out)
            for label, members in sorted(pyca_only.items(), key=lambda kv: -len(kv[1])):
                both = sum(1 for m in members if not m.mesh_agrees)
                print(f"  - {len(members):5d}  {label}  (mesh also disagrees on {both}); "
                      f"e.g. {members[0].case.id}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=None,
                        help="judge a deterministic sample of N cases per family")
    parser.add_argument("--seed", type=int, default=4158)
    parser.add_argument("--family", action="append", choices=FAMILIES,
                        help="only these families (repeatable); default: the reproduction, "
                        "without the nc-rollover variant")
    parser.add_argument("--no-pyca", action="store_true", help="skip the pyca column")
    parser.add_argument("--purpose", choices=("server", "none"), default="server",
                        help="the purpose mesh's policy asks for (variant: none)")
    parser.add_argument("--shuffle", type=int, default=None, metavar="SEED",
                        help="present the intermediates in a shuffled order (variant)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every case of a class")
    args = parser.parse_args(argv)
    families = tuple(args.family or REPRODUCTION)
    started = time.perf_counter()
    specs = select(families, args.sample, args.seed)
    purpose = None if args.purpose == "none" else args.purpose
    print(f"{len(specs)} cases, judged at {AT.isoformat()}, mesh purpose {purpose}"
          + ("" if args.shuffle is None else f", intermediates shuffled (seed {args.shuffle})"),
          flush=True)
    results = run(specs, with_pyca=not args.no_pyca, purpose=purpose, shuffle=args.shuffle,
                  progress=lambda n: print(f"  ... {n}", file=sys.stderr, flush=True))
    summarize(results, verbose=args.verbose)
    print(f"\n{time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

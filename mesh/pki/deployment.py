"""A whole deployment's certificate material: build it, revoke, write it, read it back.

``Pki.build(at=..., intermediate=..., appliances=[ApplianceRequest(...)], ...)``
makes the CAs and one certificate per appliance; :meth:`Pki.revoke` and
:meth:`Pki.reissue` change it as a real CA would; :meth:`Pki.crl_documents`
is what a CRL server serves.

Which CA signs what. Healthy appliances (and most faults) are signed by the
issuing CA: the intermediate, or the root when there is none. Faults about a
CA get a CA of their own, so the healthy appliances stay healthy:
``expired-intermediate`` and ``revoked-intermediate`` each get a dedicated
intermediate ("<issuing name> (expired)"/"(revoked)"), ``untrusted`` an
unrelated root ("Unrelated Root CA") that is not in :meth:`Pki.trust_roots`,
and ``missing-intermediate`` without an intermediate gets one made for it.
Every CA publishes a CRL at ``<crl_base_url>/<slug of its name>.crl``.

Names: an appliance's certificate CN (and DNS SAN) is its name when the name
has a dot in it, else ``<name>.<domain>`` (``sensor-1.contoso.test``).

On disk: :mod:`mesh.pki.manifest` (``pki.write(folder)``, ``Pki.load(folder)``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import urlsplit

from attrs import define, field
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.errors import InputError
from mesh.pki.faults import (
    break_files,
    CA_BACKDATE,
    HEALTHY,
    Recipe,
    issue_leaf,
    recipe,
)
from mesh.pki.issue import CertificateAuthority, Issued, KeySource, slug
from mesh.pki.keys import fresh_keys

__all__ = [
    "ApplianceRequest",
    "ApplianceMaterial",
    "Pki",
    "DEFAULT_ROOT",
    "DEFAULT_INTERMEDIATE",
    "UNRELATED_ROOT",
    "DEFAULT_DOMAIN",
    "DEFAULT_PASSPHRASE",
    "DEFAULT_CRL_BASE_URL",
]

DEFAULT_ROOT = "Contoso Root CA"
DEFAULT_INTERMEDIATE = "Contoso Issuing CA"
UNRELATED_ROOT = "Unrelated Root CA"
DEFAULT_DOMAIN = "contoso.test"
#: Recorded for a ``wrong-passphrase`` appliance when the PKI has no passphrase.
DEFAULT_PASSPHRASE = "contoso"
DEFAULT_CRL_BASE_URL = "http://127.0.0.1/crl"

#: CAs are valid this long after ``at`` (they start CA_BACKDATE before it).
_ROOT_AHEAD = dt.timedelta(days=10 * 365)
_INTERMEDIATE_AHEAD = dt.timedelta(days=5 * 365)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

# CA purposes (keys of Pki.authorities).
_ROOT = "root"
_ISSUING = "issuing"  # the intermediate asked for
_INTERMEDIATE = "intermediate"  # made only for missing-intermediate when none was asked for
_EXPIRED = "expired-intermediate"
_REVOKED = "revoked-intermediate"
_UNRELATED = "unrelated-root"
_CROSS_SIGNER = "cross-signer"


@define(frozen=True, kw_only=True)
class ApplianceRequest:
    """One appliance a PKI should hold a certificate for."""

    name: str
    role: str = "sensor"
    fault: str = HEALTHY
    common_name: str | None = None
    #: More DNS names for its certificate's SAN, beside the common name (the
    #: name it is reached by elsewhere: an in-cluster Service name, say).
    dns_names: tuple[str, ...] = ()


@define(frozen=True, kw_only=True)
class ApplianceMaterial:
    """An appliance's certificate material, and what its files hold.

    ``issued`` is the certificate with its own key and its issuer's chain.
    The files can differ on purpose: ``key_file_key`` is what the .key file
    holds (another key for ``key-mismatch``), ``chain`` what the .pem holds
    (no issuing CA for ``missing-intermediate``), ``passphrase`` the one
    recorded for the upload and ``key_passphrase`` the one the key file is
    really encrypted with (they differ for ``wrong-passphrase``).
    ``issuer`` is the name of the CA that signed it (None: self-signed).
    """

    name: str
    role: str
    fault: str
    common_name: str
    issued: Issued
    key_file_key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...]
    passphrase: str | None
    key_passphrase: str | None
    issuer: str | None
    #: The DNS names its certificate carries beside the common name (kept
    #: for a reissue: ``ApplianceRequest.dns_names``).
    dns_names: tuple[str, ...] = ()

    @property
    def recipe(self) -> Recipe:
        return recipe(self.fault)

    @property
    def cert(self) -> x509.Certificate:
        return self.issued.cert

    @property
    def serial(self) -> int:
        return self.issued.cert.serial_number


def _utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        return at.replace(tzinfo=dt.timezone.utc)
    return at.astimezone(dt.timezone.utc)


@define(kw_only=True, eq=False)
class Pki:
    """Root, intermediates and one certificate per appliance, in memory.

    Mutable like a real CA: :meth:`revoke` and :meth:`reissue` change it.
    ``authorities`` maps a CA's purpose (``root``, ``issuing``,
    ``intermediate``, ``expired-intermediate``, ``revoked-intermediate``,
    ``unrelated-root``) to the CA.
    """

    at: dt.datetime
    authorities: dict[str, CertificateAuthority]
    appliances: dict[str, ApplianceMaterial] = field(factory=dict)
    crl_base_url: str = DEFAULT_CRL_BASE_URL
    crl_validity: dt.timedelta = dt.timedelta(days=7)
    key_size: int = 2048
    passphrase: str | None = None
    domain: str = DEFAULT_DOMAIN
    intermediate_name: str = DEFAULT_INTERMEDIATE
    keys: KeySource = fresh_keys
    #: The root's cross certificate from an older root (``cross_signed_by``),
    #: which healthy chains carry after the root itself; None without one.
    cross: x509.Certificate | None = None
    _crl_cache: dict[str, tuple[dt.datetime, int, x509.CertificateRevocationList]] = field(
        factory=dict, alias="_crl_cache"
    )

    # -- building --

    @classmethod
    def build(
        cls,
        *,
        at: dt.datetime,
        root: str = DEFAULT_ROOT,
        intermediate: str | None = DEFAULT_INTERMEDIATE,
        appliances: Iterable[ApplianceRequest] = (),
        key_size: int = 2048,
        crl_base_url: str = DEFAULT_CRL_BASE_URL,
        crl_validity: dt.timedelta = dt.timedelta(days=7),
        keys: KeySource | None = None,
        passphrase: str | None = None,
        domain: str = DEFAULT_DOMAIN,
        cross_signed_by: str | None = None,
    ) -> Pki:
        """A root CA, an optional intermediate and one certificate per appliance.

        ``cross_signed_by`` names an older root that cross-certifies the root:
        a root migration. Healthy chains then carry the root and its cross
        certificate after the issuing CA, so an appliance that trusts only the
        older root finds a path through the cross certificate (if its
        validator searches for one).

        Every instant is relative to ``at`` (the moment the deployment is
        judged at): healthy leaves are valid from ``at`` for a year, the CAs
        from three years before to five (intermediate) or ten (root) after.
        """
        _check_base_url(crl_base_url)
        if key_size not in (1024, 2048, 3072, 4096):
            raise InputError(
                "key size", f"{key_size} is not a supported RSA size", "use 2048 or 4096"
            )
        if not root.strip() or (intermediate is not None and not intermediate.strip()):
            raise InputError("CA name", "is empty", "give the CA a name")
        if intermediate is not None and slug(intermediate) == slug(root):
            raise InputError(
                "CA names", f"{root!r} and {intermediate!r} are the same name", "name them apart"
            )
        at = _utc(at)
        keys = keys or fresh_keys
        root_ca = CertificateAuthority.root(
            root,
            not_before=at - CA_BACKDATE,
            days=(CA_BACKDATE + _ROOT_AHEAD).days,
            key=keys(2048),
            crl_base_url=crl_base_url,
        )
        pki = cls(
            at=at,
            authorities={_ROOT: root_ca},
            crl_base_url=crl_base_url,
            crl_validity=crl_validity,
            key_size=key_size,
            passphrase=passphrase or None,
            domain=domain,
            intermediate_name=intermediate or DEFAULT_INTERMEDIATE,
            keys=keys,
        )
        if cross_signed_by is not None:
            if slug(cross_signed_by) in {slug(root), slug(intermediate or root)}:
                raise InputError(
                    "CA names", f"{cross_signed_by!r} is already the name of a CA", "name them apart"
                )
            signer = CertificateAuthority.root(
                cross_signed_by,
                not_before=at - CA_BACKDATE,
                days=(CA_BACKDATE + _ROOT_AHEAD).days,
                key=keys(2048),
                crl_base_url=crl_base_url,
            )
            pki.authorities[_CROSS_SIGNER] = signer
            pki.cross = signer.cross_certify(root_ca)
        if intermediate is not None:
            pki._make_intermediate(_ISSUING, intermediate)
        for request in appliances:
            pki.add(request)
        return pki

    def add(self, request: ApplianceRequest) -> ApplianceMaterial:
        """Issue a certificate for a new appliance."""
        where = f"appliance {request.name!r}"
        if not _NAME.match(request.name):
            raise InputError(
                where,
                "is not a usable appliance name",
                "use letters, digits, '.', '-' and '_' (starting with a letter or digit)",
            )
        if request.name in self.appliances:
            raise InputError(where, "is listed twice", "give each appliance its own name")
        if not request.role or not _NAME.match(request.role):
            raise InputError(
                where,
                f"role {request.role!r} is not usable",
                "use e.g. sensor or management-console",
            )
        material = self._issue(
            request.name, request.role, request.fault, request.common_name, self.at,
            dns_names=request.dns_names,
        )
        self.appliances[request.name] = material
        return material

    def reissue(
        self, name: str, fault: str = HEALTHY, *, at: dt.datetime | None = None
    ) -> ApplianceMaterial:
        """A fresh certificate (new key and serial) for ``name``; it replaces the old one.

        For an upload step: the returned material is what the admin uploads.
        The old certificate stays valid (revoke it first if it should not).
        """
        old = self.material(name)
        material = self._issue(name, old.role, fault, old.common_name, _utc(at or self.at),
                               dns_names=old.dns_names)
        self.appliances[name] = material
        return material

    def revoke(self, name: str, *, at: dt.datetime | None = None) -> int:
        """Revoke ``name``'s current certificate at its issuer; returns the serial.

        The next :meth:`crls` of that issuer lists it, with a higher CRL number.
        """
        material = self.material(name)
        if material.issuer is None:
            raise InputError(
                f"appliance {name!r}", "has a self-signed certificate: no CA can revoke it", ""
            )
        ca = self.authority(material.issuer)
        ca.revoke(material.serial, at=_utc(at or self.at))
        return material.serial

    # -- reading it --

    @property
    def root(self) -> CertificateAuthority:
        return self.authorities[_ROOT]

    @property
    def intermediate(self) -> CertificateAuthority | None:
        """The issuing intermediate asked for (None: leaves are signed by the root)."""
        return self.authorities.get(_ISSUING)

    @property
    def issuing(self) -> CertificateAuthority:
        """The CA that signs healthy appliance certificates."""
        return self.intermediate or self.root

    @property
    def intermediates(self) -> list[CertificateAuthority]:
        """Every intermediate CA, the issuing one first."""
        return [ca for ca in self.authorities.values() if ca.parent is not None]

    @property
    def unrelated_root(self) -> CertificateAuthority | None:
        return self.authorities.get(_UNRELATED)

    def trust_roots(self) -> list[x509.Certificate]:
        """What a healthy appliance trusts: the root (never the unrelated one)."""
        return [self.root.cert]

    def trust_for(self, names: Iterable[str]) -> list[x509.Certificate]:
        """The certificates of the root CAs named (the root, the cross signer)."""
        roots = [ca for ca in self.authorities.values() if ca.parent is None]
        by_name = {ca.name: ca.cert for ca in roots}
        out = []
        for name in names:
            if name not in by_name:
                raise InputError(
                    f"trust {name!r}", "is not a root CA of this PKI", "use one of: " + ", ".join(by_name)
                )
            out.append(by_name[name])
        return out

    def crls(self, *, at: dt.datetime | None = None) -> dict[str, x509.CertificateRevocationList]:
        """{CRL URL: CRL} for every CA, issued at ``at`` (default: the PKI's instant).

        A CA's CRL is re-signed (with the next CRL number) only when ``at`` or
        its revocations changed since the last call; otherwise the same CRL
        comes back, so calling this twice does not look like a new CRL.
        """
        when = _utc(at or self.at)
        return {
            ca.crl_url: self._crl_for(ca, when) for ca in self.authorities.values() if ca.crl_url
        }

    def _crl_for(
        self, ca: CertificateAuthority, when: dt.datetime
    ) -> x509.CertificateRevocationList:
        stamp = when.replace(microsecond=0)
        cached = self._crl_cache.get(ca.name)
        if cached and cached[0] == stamp and cached[1] == len(ca.revoked):
            return cached[2]
        crl = ca.crl(this_update=when, validity=self.crl_validity)
        self._crl_cache[ca.name] = (stamp, len(ca.revoked), crl)
        return crl

    def renew_crls(self, *, at: dt.datetime) -> dict[str, x509.CertificateRevocationList]:
        """Every CA signs a new CRL dated ``at`` (the next CRL number), as a
        CA's schedule does before the last one's nextUpdate."""
        when = _utc(at)
        out = {}
        for ca in self.authorities.values():
            if ca.crl_url:
                crl = ca.crl(this_update=when, validity=self.crl_validity)
                self._crl_cache[ca.name] = (when.replace(microsecond=0), len(ca.revoked), crl)
                out[ca.crl_url] = crl
        return out

    def published_crls(self) -> dict[str, x509.CertificateRevocationList]:
        """{CRL URL: CRL}: the last CRL each CA issued, if it is still current.

        A CA whose revocations changed since (or that never issued one)
        issues one now, at the PKI's instant or its latest revocation,
        whichever is later.
        """
        out: dict[str, x509.CertificateRevocationList] = {}
        for ca in self.authorities.values():
            if not ca.crl_url:
                continue
            cached = self._crl_cache.get(ca.name)
            if cached and cached[1] == len(ca.revoked):
                out[ca.crl_url] = cached[2]
                continue
            when = max([self.at, *(_utc(t) for t in ca.revoked.values())])
            out[ca.crl_url] = self._crl_for(ca, when)
        return out

    def crl_documents(self, *, at: dt.datetime | None = None) -> dict[str, bytes]:
        """{URL path: DER bytes}: what a CRL server on the base URL's host serves."""
        from cryptography.hazmat.primitives import serialization

        return {
            urlsplit(url).path: crl.public_bytes(serialization.Encoding.DER)
            for url, crl in self.crls(at=at).items()
        }

    # -- files --

    def write(self, folder: str | Path) -> Path:
        """Write every certificate, key (0600), chain and CRL, and ``pki.json``
        (see :mod:`mesh.pki.manifest`)."""
        from mesh.pki.manifest import write_folder  # the manifest imports this module

        return write_folder(self, folder)

    @classmethod
    def load(
        cls, folder: str | Path, *, keys: KeySource | None = None, passphrase: str | None = None
    ) -> Pki:
        """A PKI written by :meth:`write`, with its CAs' revocation state;
        ``passphrase`` opens its keys when they are encrypted."""
        from mesh.pki.manifest import load_folder  # the manifest imports this module

        return load_folder(folder, keys=keys, passphrase=passphrase)

    # -- internals --

    def material(self, name: str) -> ApplianceMaterial:
        try:
            return self.appliances[name]
        except KeyError:
            raise InputError(
                f"appliance {name!r}",
                "is not in this PKI",
                "use one of: " + (", ".join(self.appliances) or "(none)"),
            ) from None

    def authority(self, name: str) -> CertificateAuthority:
        for ca in self.authorities.values():
            if ca.name == name:
                return ca
        raise KeyError(name)

    def _make_intermediate(
        self, purpose: str, name: str, *, not_after: dt.datetime | None = None
    ) -> CertificateAuthority:
        if purpose in self.authorities:
            return self.authorities[purpose]
        ca = self.root.intermediate(
            name,
            not_before=self.at - CA_BACKDATE,
            not_after=not_after or self.at + _INTERMEDIATE_AHEAD,
            key=self.keys(2048),
            crl_base_url=self.crl_base_url,
        )
        self.authorities[purpose] = ca
        return ca

    def _issuer_for(self, fault: Recipe) -> CertificateAuthority | None:
        """The CA a recipe's certificate comes from (see :data:`mesh.pki.faults.ISSUERS`)."""
        return _ISSUER_OF[fault.issuer](self)

    def _own_intermediate(self) -> CertificateAuthority:
        return self.intermediate or self._make_intermediate(_INTERMEDIATE, self.intermediate_name)

    def _expired_intermediate(self) -> CertificateAuthority:
        return self._make_intermediate(
            _EXPIRED,
            f"{self.intermediate_name} (expired)",
            not_after=self.at - dt.timedelta(days=1),
        )

    def _revoked_intermediate(self) -> CertificateAuthority:
        fresh = _REVOKED not in self.authorities
        ca = self._make_intermediate(_REVOKED, f"{self.intermediate_name} (revoked)")
        if fresh:
            self.root.revoke(ca.cert.serial_number, at=self.at)
        return ca

    def _unrelated(self) -> CertificateAuthority:
        if _UNRELATED not in self.authorities:
            self.authorities[_UNRELATED] = CertificateAuthority.root(
                UNRELATED_ROOT,
                not_before=self.at - CA_BACKDATE,
                days=(CA_BACKDATE + _ROOT_AHEAD).days,
                key=self.keys(2048),
                crl_base_url=self.crl_base_url,
            )
        return self.authorities[_UNRELATED]

    def _issue(
        self, name: str, role: str, fault_name: str, common_name: str | None, at: dt.datetime,
        *, dns_names: tuple[str, ...] = (),
    ) -> ApplianceMaterial:
        fault = recipe(fault_name, where=f"appliance {name!r}")
        cn = common_name or (name if "." in name else f"{name}.{self.domain}")
        issuer = self._issuer_for(fault)
        issued = issue_leaf(
            fault,
            issuer,
            cn,
            at=at,
            keys=self.keys,
            key_size=self.key_size,
            self_signed_cdp=self.issuing.crl_url,
            dns_names=dns_names,
        )
        chain = issued.chain
        if self.cross is not None and issuer is not None and issuer.root_ca is self.root:
            chain = (*chain, self.root.cert, self.cross)
        if fault.revoked and issuer is not None:
            issuer.revoke(issued.serial, at=at)
        material = ApplianceMaterial(
            name=name,
            role=role,
            fault=fault.name,
            common_name=cn,
            issued=issued,
            key_file_key=issued.key,
            chain=chain,
            passphrase=self.passphrase,
            key_passphrase=self.passphrase,
            issuer=issuer.name if issuer else None,
            dns_names=dns_names,
        )
        if fault.files is not None:
            material = break_files(fault, material, issuer=issuer, keys=self.keys,
                                   key_size=self.key_size, default_passphrase=DEFAULT_PASSPHRASE)
        return material


#: Recipe.issuer -> the CA that signs it (None: self-signed).
_ISSUER_OF: dict[str, Callable[[Pki], CertificateAuthority | None]] = {
    "issuing": lambda pki: pki.issuing,
    "intermediate": Pki._own_intermediate,
    "expired-intermediate": Pki._expired_intermediate,
    "revoked-intermediate": Pki._revoked_intermediate,
    "unrelated-root": Pki._unrelated,
    "self": lambda pki: None,
}


def _check_base_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        why = (
            " (a CRL Distribution Point is fetched over plain HTTP, not https://)"
            if parts.scheme == "https"
            else ""
        )
        raise InputError(
            "CRL base URL",
            f"{url!r} is not an http:// URL{why}",
            "give one like http://127.0.0.1:8080/crl",
        )

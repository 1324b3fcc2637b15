"""A deployment on disk: ``pki.json`` and the files it names, written and read back.

The folder (``pki.write(dir)``) holds ``pki.json``, the manifest
(paths relative to the folder)::

    {"root": "ca/contoso-root-ca.crt",
     "intermediates": ["ca/contoso-issuing-ca.crt", ...],
     "crls": {"http://127.0.0.1:8080/crl/contoso-root-ca.crl": "crl/contoso-root-ca.crl", ...},
     "appliances": {"sensor-1": {"role": "sensor", "fault": "ca-signed",
                                 "crt": "appliances/sensor-1.crt", "key": "appliances/sensor-1.key",
                                 "chain": "appliances/sensor-1.pem" | null,
                                 "passphrase": null | "...",
                                 "common_name": "sensor-1.contoso.test", "issuer": "Contoso Issuing CA"}},
     "at": "2027-01-15T09:00:00+00:00",
     "cas": {"Contoso Root CA": {"purpose": "root", "crt": ..., "key": ..., "parent": null,
                                 "crl_url": ..., "crl": ...}, ...}}

``at``, ``cas``, ``common_name`` and ``issuer`` go beyond the issue's list:
``cas`` names the CA keys (mode 0600) that ``mesh pki revoke`` signs new CRLs
with. ``chain`` is null when the appliance has no issuing CA to send (a leaf
of the root, ``missing-intermediate``, ``untrusted``, ``self-signed``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509

from cryptography.hazmat.primitives.asymmetric import rsa

from mesh.errors import InputError, ValidationFailed
from mesh.pki import files
from mesh.pki.deployment import (
    _ISSUING,
    _ROOT,
    DEFAULT_CRL_BASE_URL,
    DEFAULT_INTERMEDIATE,
    DEFAULT_PASSPHRASE,
    ApplianceMaterial,
    Pki,
    _utc,
)
from mesh.pki.faults import HEALTHY, recipe, wrong_passphrase_for
from mesh.pki.issue import CertificateAuthority, Issued, KeySource, slug
from mesh.pki.keys import fresh_keys

__all__ = ["MANIFEST", "write_folder", "load_folder", "read_manifest"]

MANIFEST = "pki.json"


def write_folder(pki: Pki, folder: str | Path) -> Path:
    """Write every certificate, key (0600), chain and CRL, and ``pki.json``."""
    base = Path(folder)
    if base.exists() and not base.is_dir():
        raise InputError(str(folder), "is a file, not a folder", "name a folder for the PKI")
    try:
        for sub in ("ca", "crl", "appliances"):
            (base / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            str(folder), f"cannot be created ({exc.strerror})", "choose another folder"
        ) from None
    cas: dict[str, dict[str, object]] = {}
    crl_paths: dict[str, str] = {}
    current = pki.published_crls()
    for purpose, ca in pki.authorities.items():
        name = slug(ca.name)
        files.save_certificate(base / "ca" / f"{name}.crt", ca.cert)
        # With a passphrase the CA keys are encrypted with it too: they sign every
        # certificate and CRL of the deployment.
        files.save_key(base / "ca" / f"{name}.key", ca.key, passphrase=pki.passphrase)
        entry: dict[str, object] = {
            "purpose": purpose,
            "crt": f"ca/{name}.crt",
            "key": f"ca/{name}.key",
            "parent": ca.parent.name if ca.parent else None,
            "crl_url": ca.crl_url,
            "crl": None,
        }
        if ca.crl_url:
            files.save_crl(base / "crl" / f"{name}.crl", current[ca.crl_url])
            crl_paths[ca.crl_url] = entry["crl"] = f"crl/{name}.crl"
        cas[ca.name] = entry
    appliances: dict[str, dict[str, object]] = {}
    for name, m in pki.appliances.items():
        crt = f"appliances/{name}.crt"
        key = f"appliances/{name}.key"
        files.save_certificate(base / crt, m.cert)
        files.save_key(base / key, m.key_file_key, passphrase=m.key_passphrase)
        chain = None
        # The .pem holds every CA of the chain of trust, the root included (the
        # source document's definition), as an admin's chain file would.
        issuer = pki.authority(m.issuer) if m.issuer else None
        pem = list(m.chain)
        if issuer is not None and issuer.root_ca.cert not in pem:
            pem.append(issuer.root_ca.cert)
        if pem:
            chain = f"appliances/{name}.pem"
            files.save_chain(base / chain, pem)
        else:
            (base / f"appliances/{name}.pem").unlink(missing_ok=True)
        appliances[name] = {
            "role": m.role,
            "fault": m.fault,
            "crt": crt,
            "key": key,
            "chain": chain,
            # Whether the key file is encrypted; never the passphrase itself:
            # whoever uses the folder gives it (--passphrase-file, ...).
            "encrypted": m.key_passphrase is not None,
            "common_name": m.common_name,
            "issuer": m.issuer,
        }
    cross = None
    if pki.cross is not None:
        cross = f"ca/{slug(pki.root.name)}-cross.crt"
        files.save_certificate(base / cross, pki.cross)
    manifest = {
        "root": cas[pki.root.name]["crt"],
        "cross": cross,
        "intermediates": [cas[ca.name]["crt"] for ca in pki.intermediates],
        "crls": crl_paths,
        "appliances": appliances,
        "at": pki.at.isoformat(),
        "cas": cas,
    }
    text = json.dumps(manifest, indent=2) + "\n"
    # The manifest names every key file: as private as the keys.
    files.write_file(base / MANIFEST, text.encode(), mode=files.KEY_MODE)
    return base / MANIFEST


def load_folder(
    folder: str | Path, *, keys: KeySource | None = None, passphrase: str | None = None
) -> Pki:
    """A PKI written by :meth:`write`, with its CAs' revocation state.

    The key of a ``key-mismatch`` appliance is the one on disk (which
    does not match its certificate): the true one was never written.
    """
    base = Path(folder)
    manifest = read_manifest(base)
    where = str(base / MANIFEST)
    cas_entries = manifest.get("cas")
    if not isinstance(cas_entries, dict) or not cas_entries:
        raise InputError(
            where, "has no 'cas' section (CA keys)", "re-create the folder with mesh pki init"
        )
    at = _parse_at(manifest.get("at"), where)
    by_name: dict[str, CertificateAuthority] = {}
    authorities: dict[str, CertificateAuthority] = {}
    cache = {}
    for ca_name, entry in cas_entries.items():
        entry = _entry(entry, f"{where}: cas.{ca_name}")
        parent_name = entry.get("parent")
        if parent_name is not None and parent_name not in by_name:
            raise InputError(
                where, f"cas.{ca_name}.parent {parent_name!r} is not listed before it", ""
            )
        ca = CertificateAuthority(
            name=ca_name,
            cert=files.load_certificate(base / _rel(entry, "crt", where)),
            key=_ca_key(base / _rel(entry, "key", where), passphrase),
            crl_url=entry.get("crl_url"),
            parent=by_name.get(parent_name) if parent_name else None,
        )
        if entry.get("crl"):
            crl = files.load_crl(base / _rel(entry, "crl", where))
            for revoked in crl:
                ca.revoked[revoked.serial_number] = revoked.revocation_date_utc
            try:
                ca.crl_number = crl.extensions.get_extension_for_class(
                    x509.CRLNumber
                ).value.crl_number
            except x509.ExtensionNotFound:
                ca.crl_number = 0
            cache[ca_name] = (crl.last_update_utc, len(ca.revoked), crl)
        by_name[ca_name] = ca
        authorities[str(entry.get("purpose") or ca_name)] = ca
    if _ROOT not in authorities:
        raise InputError(
            where, "names no CA with purpose 'root'", "re-create the folder with mesh pki init"
        )
    issuing = authorities.get(_ISSUING)
    pki = Pki(
        at=at,
        authorities=authorities,
        crl_base_url=_base_of(authorities[_ROOT].crl_url),
        intermediate_name=issuing.name if issuing else DEFAULT_INTERMEDIATE,
        keys=keys or fresh_keys,
        passphrase=passphrase,
        _crl_cache=cache,
    )
    if manifest.get("cross"):
        pki.cross = files.load_certificate(base / _rel(manifest, "cross", where))
    for name, entry in manifest["appliances"].items():
        qual = f"{where}: appliances.{name}"
        entry = _entry(entry, qual)
        fault = recipe(str(entry.get("fault", HEALTHY)), where=f"{qual}.fault")
        # Folders written before passphrases left pki.json recorded them.
        recorded = entry.get("passphrase") or (passphrase if entry.get("encrypted") else None)
        if fault.files == "wrong-passphrase":
            recorded = recorded or DEFAULT_PASSPHRASE
            key_passphrase: str | None = wrong_passphrase_for(recorded)
        else:
            key_passphrase = recorded
        if entry.get("encrypted") and key_passphrase is None:
            raise InputError(
                f"{qual}.key", "is encrypted", "give the PKI's passphrase (--passphrase-file FILE)"
            )
        cert = files.load_certificate(base / _rel(entry, "crt", qual))
        key = files.load_key(base / _rel(entry, "key", qual), key_passphrase)
        chain = (
            tuple(files.load_certificates(base / entry["chain"])) if entry.get("chain") else ()
        )
        issuer_name = entry.get("issuer")
        issuer = by_name.get(issuer_name) if issuer_name else None
        pki.appliances[name] = ApplianceMaterial(
            name=name,
            role=str(entry.get("role", "sensor")),
            fault=fault.name,
            common_name=str(entry.get("common_name") or _cn_of(cert)),
            issued=Issued(cert=cert, key=key, chain=issuer.chain if issuer else ()),
            key_file_key=key,
            chain=chain,
            passphrase=recorded,
            key_passphrase=key_passphrase,
            issuer=issuer_name,
        )
    return pki


def _ca_key(path: Path, passphrase: str | None) -> rsa.RSAPrivateKey:
    """A CA key, opened with the PKI's passphrase when it is encrypted."""
    try:
        return files.load_key(path, passphrase)
    except ValidationFailed:
        raise InputError(
            str(path),
            "is encrypted with the PKI's passphrase" if passphrase is None
            else "does not open with the passphrase given",
            "give the PKI's passphrase (--passphrase-file FILE, MESH_PASSPHRASE or --passphrase-prompt)",
        ) from None


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """``folder/pki.json`` as a dict, checked for the keys it must have."""
    path = Path(folder) / MANIFEST
    where = str(path)
    if Path(folder).is_file():
        raise InputError(
            str(folder), "is a file, not a PKI folder", "name the folder mesh pki init wrote"
        )
    data = files.read_input(path, "PKI manifest")
    try:
        manifest = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            where, f"is not valid JSON ({exc})", "re-create it with mesh pki init"
        ) from None
    if not isinstance(manifest, dict):
        raise InputError(where, "is not a JSON object", "re-create it with mesh pki init")
    for key, kind in (("root", str), ("intermediates", list), ("crls", dict), ("appliances", dict)):
        if not isinstance(manifest.get(key), kind):
            raise InputError(
                where,
                f"key {key!r} is missing or not a {kind.__name__}",
                "re-create it with mesh pki init",
            )
    return manifest


def _entry(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(where, "is not a JSON object", "re-create the folder with mesh pki init")
    return value


def _rel(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(where, f"has no {key!r} path", "re-create the folder with mesh pki init")
    return value


def _parse_at(value: object, where: str) -> dt.datetime:
    if not isinstance(value, str):
        raise InputError(where, "has no 'at' instant", "re-create the folder with mesh pki init")
    try:
        return _utc(dt.datetime.fromisoformat(value))
    except ValueError:
        raise InputError(
            where, f"'at' is not an ISO time: {value!r}", "re-create the folder with mesh pki init"
        ) from None


def _base_of(url: str | None) -> str:
    if not url or "/" not in url:
        return DEFAULT_CRL_BASE_URL
    return url.rsplit("/", 1)[0]


def _cn_of(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""

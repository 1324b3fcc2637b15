"""What every way of running a scenario builds first: CRL service, keys, PKI, specs.

The CRL server starts first, on port 0, because the port it gets goes into
every certificate's CRL Distribution Point; then the keys and the PKI are
made for the scenario's start instant, off the event loop (CPU work), while
the server already answers. The in-process runner turns the PKI into the
engine's :class:`~mesh.appliances.spec.ApplianceSpec` list; ``--processes``
writes node configs from the same PKI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import trio
from attrs import evolve
from cryptography.hazmat.primitives import serialization

from mesh.net.crl_server import CrlServer
from mesh.net.proxy import ForwardProxy
from mesh.pki.deployment import ApplianceMaterial, ApplianceRequest, Pki
from mesh.pki.issue import Issued, KeySource
from mesh.pki.keys import fresh_keys
from mesh.pki.key_cache import KeyCache
from mesh.scenario.keygen import keys_for
from mesh.scenario.model import ApplianceDef, Scenario

if TYPE_CHECKING:
    from mesh.appliances.spec import ApplianceSpec

__all__ = [
    "HIDDEN_CRL_HOST",
    "appliance_specs",
    "build_pki",
    "make_pki",
    "start_crl_service",
    "start_world",
    "upload_files",
]

#: The address certificates name for the CRL server when it may be reached
#: only through the proxy: another loopback address where nothing listens, so
#: a direct fetch is refused at once, while the proxy routes it to the server.
HIDDEN_CRL_HOST = "127.0.0.2"


def upload_files(material: ApplianceMaterial) -> tuple[Issued, bytes, str | None]:
    """What an admin uploads for ``material``: certificate + chain, the .key file, the passphrase.

    The key travels as the PEM file would (encrypted when the PKI records a
    passphrase), so a wrong passphrase or a mismatched key is found by the
    appliance's upload check, exactly as with real files.
    """
    if material.key_passphrase:
        encryption: serialization.KeySerializationEncryption = serialization.BestAvailableEncryption(
            material.key_passphrase.encode()
        )
    else:
        encryption = serialization.NoEncryption()
    key_pem = material.key_file_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    issued = Issued(cert=material.cert, key=material.key_file_key, chain=material.chain)
    return issued, key_pem, material.passphrase


def build_pki(scenario: Scenario, *, crl_base_url: str, keys: KeySource,
              dns_names: Mapping[str, Sequence[str]] | None = None) -> Pki:
    """The scenario's PKI, certificates issued at its start instant.

    ``dns_names``: more DNS names for an appliance's certificate, by
    appliance name (the Kubernetes export's Service names).
    """
    more = dns_names or {}
    spec = scenario.pki
    pki = Pki.build(
        at=scenario.start,
        root=spec.root,
        intermediate=spec.intermediate,
        appliances=[
            ApplianceRequest(name=a.name, role=a.role, fault=a.certificate,
                             dns_names=tuple(more.get(a.name, ())))
            for a in scenario.appliances
        ],
        key_size=spec.key_size,
        crl_base_url=crl_base_url,
        crl_validity=spec.crl_validity,
        keys=keys,
        cross_signed_by=spec.cross_signed_by,
    )
    for appliance in scenario.appliances:
        if appliance.valid_for is not None and appliance.certificate == "ca-signed":
            _shorten(pki, appliance, keys)
    return pki


def _shorten(pki: Pki, appliance: ApplianceDef, keys: KeySource) -> None:
    """Reissue a healthy certificate with the appliance's own lifetime."""
    old = pki.appliances[appliance.name]
    assert appliance.valid_for is not None
    issued = pki.issuing.issue(
        old.common_name, not_before=pki.at, not_after=pki.at + appliance.valid_for,
        key=keys(pki.key_size), dns_names=old.dns_names,
    )
    pki.appliances[appliance.name] = evolve(old, issued=issued, key_file_key=issued.key,
                                            chain=issued.chain)


def appliance_specs(scenario: Scenario, pki: Pki, *, proxy_url: str | None) -> list[ApplianceSpec]:
    """One engine ApplianceSpec per appliance of the scenario."""
    from mesh.appliances.spec import ApplianceSpec
    from mesh.validation.policy import ValidationPolicy
    from mesh.validation.revocation import CrlIndex

    start_crls: tuple[CrlIndex, ...] = ()
    if any(a.crl_files for a in scenario.appliances):
        start_crls = tuple(
            CrlIndex.from_crl(crl) for crl in pki.crls(at=scenario.start).values()
        )
    specs = []
    for a in scenario.appliances:
        material = pki.appliances[a.name]
        identity = None if a.certificate == "self-signed" else Issued(
            cert=material.cert, key=material.issued.key, chain=material.chain,
        )
        specs.append(
            ApplianceSpec(
                name=a.name,
                role=a.role,
                identity=identity,
                trust=tuple(pki.trust_for(a.trust) if a.trust else pki.trust_roots()),
                crl_files=start_crls if a.crl_files else (),
                validation=a.validation,
                connects_to=a.connects_to,
                forwards_to=a.forwards_to,
                crl_proxy=proxy_url if a.crl_proxy else None,
                policy=ValidationPolicy(revocation=a.revocation, validator=a.validator),  # type: ignore[arg-type]
            )
        )
    return specs


async def start_crl_service(
    scenario: Scenario, nursery: trio.Nursery
) -> tuple[CrlServer, ForwardProxy | None, str]:
    """Start the CRL server on port 0 (and the proxy if anyone uses one).

    Returns the server, the proxy and the CRL base URL certificates name.
    The port is known only once the server listens, which is why this comes
    before the PKI. With ``crl_proxy_only`` the base URL names an address
    nothing listens on, which only the proxy routes to the server.
    """
    crl_server = CrlServer()
    port = await nursery.start(crl_server.serve)
    host = HIDDEN_CRL_HOST if scenario.pki.crl_proxy_only else "127.0.0.1"
    proxy = None
    if scenario.pki.crl_proxy_only or any(a.crl_proxy for a in scenario.appliances):
        proxy = ForwardProxy(routes={f"{HIDDEN_CRL_HOST}:{port}": ("127.0.0.1", port)})
        await nursery.start(proxy.serve)
    return crl_server, proxy, f"http://{host}:{port}/crl"


async def start_world(
    scenario: Scenario,
    nursery: trio.Nursery,
    *,
    keys: KeySource | None = None,
    progress: Callable[[str, Any, Any], None] | None = None,
) -> tuple[CrlServer, ForwardProxy | None, Pki, KeySource]:
    """The CRL service, then the keys and the PKI that names its URL.

    What every way of running a scenario (in process, ``--processes``) builds
    first. Key generation and signing are CPU work: they run off the event
    loop, so the CRL server already answers meanwhile.
    """
    crl_server, proxy, base_url = await start_crl_service(scenario, nursery)
    pki, keys = await make_pki(scenario, crl_base_url=base_url, keys=keys, progress=progress)
    return crl_server, proxy, pki, keys


async def make_pki(
    scenario: Scenario,
    *,
    crl_base_url: str,
    keys: KeySource | None = None,
    progress: Callable[[str, Any, Any], None] | None = None,
) -> tuple[Pki, KeySource]:
    """The keys, then the PKI whose CRL Distribution Points start with ``crl_base_url``.

    For a backend whose CRL server's URL is known before it runs
    (``--hosts``: ``http://crl.<domain>/crl``); :func:`start_world` calls it
    once its server listens.
    """
    if progress:
        progress("building", None, None)
    # abandon_on_cancel: a Ctrl-C while keys are made or the PKI is signed
    # ends the run at once; the worker finishes on its own and is discarded.
    # Without keys given: the user's key cache (mesh.pki.key_cache), filled
    # on every CPU with what it lacks.
    keys = (
        keys
        or await trio.to_thread.run_sync(
            lambda: keys_for(scenario, cache=KeyCache.default()), abandon_on_cancel=True
        )
        or fresh_keys
    )
    pki = await trio.to_thread.run_sync(
        lambda: build_pki(scenario, crl_base_url=crl_base_url, keys=keys), abandon_on_cancel=True
    )
    return pki, keys



"""The certificates a scenario's appliances start with, as the reports show them.

Read once, from the PKI the run built, when the run starts: an upload step
later replaces a certificate (and the PKI's record of it), but the question a
report answers beside its first drawing is which certificate, made by which
fault recipe, each appliance came up with. The fields are the ones ``mesh
cert show`` prints (:mod:`mesh.pki.show`), so the two never describe a
certificate differently.
"""

from __future__ import annotations

from mesh.pki.deployment import Pki
from mesh.pki.show import cdp_text, key_text
from mesh.scenario.model import Scenario
from mesh.scenario.result import CertificateFacts

__all__ = ["certificates_in_play"]


def certificates_in_play(scenario: Scenario, pki: Pki) -> tuple[CertificateFacts, ...]:
    """Each appliance's certificate in the scenario's order (those the PKI holds)."""
    facts = []
    for appliance in scenario.appliances:
        material = pki.appliances.get(appliance.name)
        if material is None:
            continue
        cert = material.cert
        facts.append(CertificateFacts(
            appliance=appliance.name,
            recipe=appliance.certificate,
            subject=cert.subject.rfc4514_string(),
            issuer=cert.issuer.rfc4514_string(),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            cdp=cdp_text(cert),
            key=key_text(cert.public_key()),
        ))
    return tuple(facts)

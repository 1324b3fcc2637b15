"""Events: frozen, JSON one line, never a key."""

from __future__ import annotations

import datetime as dt
import json

import attrs
import pytest
from cryptography.hazmat.primitives import serialization

from mesh.errors import FailureCode
from mesh.events import (
    Event,
    EVENT_KINDS,
    LinkHalted,
    MessageDelivered,
    TrustAnchorSet,
    ValidationSkipped,
    ValidationSwitched,
)


def test_link_halted_carries_the_exact_message(epoch):
    event = LinkHalted(
        at=epoch,
        dialer="sensor-1.contoso.com",
        listener="console.contoso.com",
        refused_by="console.contoso.com",
        code=FailureCode.REVOKED,
        subject="CN=sensor-1.contoso.com",
        serial=0xABCDEF,
        detail="serial listed in CRL #2",
    )
    data = json.loads(event.to_json())
    assert data["kind"] == "link-halted"
    assert data["severity"] == "error"
    assert data["code"] == "revoked"
    assert data["message"] == FailureCode.REVOKED.message
    assert data["serial"] == "ABCDEF"
    assert data["at"] == "2027-01-15T09:00:00Z"
    assert "\n" not in event.to_json()
    assert FailureCode.REVOKED.message in event.log_line()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.code = FailureCode.EXPIRED  # type: ignore[misc]


def test_events_need_an_aware_instant(epoch):
    with pytest.raises(ValueError, match="timezone-aware"):
        ValidationSwitched(at=epoch.replace(tzinfo=None), appliance="a", enabled=False)


def test_warning_severity(epoch):
    skipped = ValidationSkipped(
        at=epoch,
        appliance="console",
        peer="sensor",
        dialer="sensor",
        listener="console",
        would_fail=("expired",),
        messages=(FailureCode.EXPIRED.message,),
    )
    assert skipped.as_dict()["severity"] == "warning"
    assert skipped.as_dict()["would_fail"] == ["expired"]
    assert FailureCode.EXPIRED.message in skipped.describe()
    assert ValidationSwitched(at=epoch, appliance="a", enabled=False).as_dict()["severity"] == (
        "warning"
    )


def test_trust_anchor_set_names_the_root_and_its_fingerprint(epoch):
    fingerprint = ":".join(["AB"] * 32)
    event = TrustAnchorSet(
        at=epoch,
        appliance="sensor-1",
        subject="CN=Contoso Root CA,O=Contoso Inc.,C=US",
        sha256_fingerprint=fingerprint,
    )
    assert json.loads(event.to_json()) == {
        "kind": "trust-anchor-set",
        "severity": "note",
        "at": "2027-01-15T09:00:00Z",
        "appliance": "sensor-1",
        "subject": "CN=Contoso Root CA,O=Contoso Inc.,C=US",
        "sha256_fingerprint": fingerprint,
    }
    assert event.describe() == (
        "sensor-1: no trust was configured; trusts CN=Contoso Root CA,O=Contoso Inc.,C=US "
        f"(SHA-256 {fingerprint}), the root of the accepted upload's chain, from now on"
    )
    assert Event.from_json(event.to_json()) == event


def test_kinds_are_unique_and_kebab_case():
    assert len(EVENT_KINDS) == len(set(EVENT_KINDS))
    for kind in EVENT_KINDS:
        assert kind == kind.lower() and " " not in kind and "_" not in kind


def test_no_event_can_carry_private_key_material(epoch, keys):
    pem = keys(2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    encrypted = keys(2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"hunter2"),
    ).decode()
    for text in (pem, encrypted):
        with pytest.raises(ValueError, match="private key material"):
            LinkHalted(
                at=epoch,
                dialer="a",
                listener="b",
                refused_by="b",
                code=FailureCode.KEY_MISMATCH,
                detail=text,
            )
        with pytest.raises(ValueError, match="private key material"):
            ValidationSkipped(
                at=epoch, appliance="a", peer="b", dialer="a", listener="b", messages=(text,)
            )


def test_no_event_class_has_a_field_for_keys_or_passphrases():
    for cls in EVENT_KINDS.values():
        for a in attrs.fields(cls):
            assert "key" not in a.name and "passphrase" not in a.name and "password" not in a.name


def test_message_delivered(epoch):
    event = MessageDelivered(
        at=epoch, dialer="s", listener="c", sender="s", receiver="c", message="heartbeat",
        delivered=3,
    )
    assert json.loads(event.to_json())["delivered"] == 3


def _sample(cls, epoch):
    """One instance of ``cls`` with every field set to a value of its type."""
    import attrs

    from mesh.errors import FailureCode

    values = {}
    for a in attrs.fields(cls):
        kind = str(a.type)
        if a.name == "at":
            values["at"] = epoch
        elif "FailureCode" in kind:
            values[a.name] = FailureCode.CRL_STALE
        elif kind.startswith("dt.timedelta"):
            values[a.name] = dt.timedelta(hours=3)
        elif kind.startswith("dt.datetime"):
            values[a.name] = epoch + dt.timedelta(days=1)
        elif kind.startswith("tuple"):
            values[a.name] = ("one", "two")
        elif kind.startswith("bool"):
            values[a.name] = True
        elif kind.startswith("int") or a.name == "serial":
            values[a.name] = 0xABCDEF0123456789ABCDEF if a.name == "serial" else 7
        elif kind.startswith("float"):
            values[a.name] = 1.5
        else:
            values[a.name] = f"{a.name}-text"
    return cls(**values)


@pytest.mark.parametrize("kind", sorted(EVENT_KINDS))
def test_every_event_reads_back_from_its_json_line(kind, epoch):
    event = _sample(EVENT_KINDS[kind], epoch)
    assert Event.from_json(event.to_json()) == event


def test_an_unknown_kind_is_a_value_error():
    with pytest.raises(ValueError, match="unknown event kind 'nope'"):
        Event.from_json('{"kind": "nope", "at": "2027-01-15T09:00:00Z"}')

"""Kubernetes names for a scenario's appliances and namespace.

Why a module: a Service name is what every peer dials, what every
certificate carries beside the appliance's domain name, and what the
inventory's API URLs name, so it is derived once, here, and a name
Kubernetes would refuse is one line before anything is written.

A Service name must be an RFC 1035 label (Kubernetes' DNS-1035 rule): at
most 63 characters of lowercase letters, digits and '-', starting with a
letter and ending with a letter or digit. An appliance name becomes one by
lowercasing it and turning dots into dashes (``cm.contoso.test`` ->
``cm-contoso-test``); anything else that breaks the rule is refused, never
rewritten, so two appliances cannot silently end up with one name.
"""

from __future__ import annotations

import re
import string
from typing import Iterable, Mapping

from mesh.errors import InputError

__all__ = ["MAX_LABEL", "check_label", "namespace_for", "service_name", "service_names"]

#: The longest DNS label (RFC 1035).
MAX_LABEL = 63

_ALLOWED = frozenset(string.ascii_lowercase + string.digits + "-")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _problem(name: str, *, first_letter: bool) -> str | None:
    """What is wrong with ``name`` as a label, or None."""
    if not name:
        return "is empty"
    if len(name) > MAX_LABEL:
        return f"is {len(name)} characters long; a DNS label has at most {MAX_LABEL}"
    bad = sorted({c for c in name if c not in _ALLOWED})
    if bad:
        return ("holds " + ", ".join(repr(c) for c in bad)
                + "; a DNS label has only lowercase letters, digits and '-'")
    if first_letter and name[0] not in string.ascii_lowercase:
        return "does not start with a letter"
    if name[0] == "-":
        return "does not start with a letter or digit"
    if name[-1] == "-":
        return "does not end with a letter or digit"
    pattern = _DNS_1035 if first_letter else _DNS_1123
    assert pattern.match(name), name  # the rules above are the pattern's
    return None


def check_label(name: str, where: str, fix: str, *, first_letter: bool = True) -> str:
    """``name`` if it is a DNS-1035 label (DNS-1123 with ``first_letter=False``).

    Raises:
        InputError: one line naming the rule it breaks.
    """
    problem = _problem(name, first_letter=first_letter)
    if problem is not None:
        raise InputError(where, f"{name!r} {problem}", fix)
    return name


def service_name(appliance: str, where: str) -> str:
    """The Service name of ``appliance``: lowercase, dots become dashes, then checked.

    Raises:
        InputError: the result is not a DNS-1035 label (one line: which rule).
    """
    name = appliance.lower().replace(".", "-")
    problem = _problem(name, first_letter=True)
    if problem is not None:
        raise InputError(
            where, f"its Service name {name!r} {problem}",
            "rename the appliance: letters, digits, '-' and '.', starting with a letter, "
            f"at most {MAX_LABEL} characters once dots become dashes",
        )
    return name


def service_names(appliances: Iterable[str], *, where: str,
                  reserved: Mapping[str, str]) -> dict[str, str]:
    """{appliance: Service name}, every name distinct and none of ``reserved``.

    ``reserved``: {Service name: what else it names} (the CRL server's, the shards').

    Raises:
        InputError: a name breaks the rule, or two things would share one.
    """
    taken = dict(reserved)
    out: dict[str, str] = {}
    for appliance in appliances:
        here = f"{where}: appliance {appliance!r}"
        name = service_name(appliance, here)
        if name in taken:
            raise InputError(here, f"its Service name {name!r} is already {taken[name]}'s",
                             "rename one of them")
        taken[name] = f"appliance {appliance!r}"
        out[appliance] = name
    return out


def namespace_for(scenario_name: str) -> str:
    """The default namespace of a scenario's fleet: ``mesh-`` and its name, as a label."""
    text = re.sub(r"[^a-z0-9]+", "-", scenario_name.lower()).strip("-")
    return ("mesh-" + text)[:MAX_LABEL].rstrip("-") if text else "mesh"

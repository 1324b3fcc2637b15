"""What a scenario file says, as frozen attrs objects.

A scenario is a topology (a PKI and the appliances that use it), a timeline
(steps played on the emulated clock) and expectations (which link is in which
state, and when). These classes are the contract between the TOML loader, the
runner, the reports and the pytest plugin: a topology built in Python is the
same objects a file loads into, so both run the same way.

Every object validates what it can see on its own (a role is a role, a
duration is not negative); cross-references (an expectation naming a link no
appliance dials) are checked by :func:`Scenario.problems`, which the loader
turns into path-qualified lines.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from typing import Callable, Iterable

from attrs import Attribute, define, evolve, field

from mesh.pki.faults import RECIPES
from mesh.roles import ROLES
from mesh.scenario.actions import Action
from mesh.validation.policy import PROFILES

__all__ = [
    "ROLES",
    "ACTIONS",
    "TARGETED_ACTIONS",
    "LINK_STATES",
    "UPLOAD_VERDICTS",
    "VALIDATION_RUNS",
    "CERTIFICATE_RECIPES",
    "DEFAULT_START",
    "PkiSpec",
    "ApplianceDef",
    "Step",
    "Expectation",
    "Block",
    "NETWORK_HOSTS",
    "NETWORK_REASONS",
    "STEP_ATTRIBUTES",
    "Scenario",
    "parse_duration",
    "format_duration",
    "link_name",
    "parse_link",
]

#: Timeline actions, by their TOML words (the :class:`Action` members).
ACTIONS = tuple(action.value for action in Action)

#: Actions that need a ``target`` appliance.
TARGETED_ACTIONS = frozenset(action.value for action in Action if action.targeted)

#: Link states an expectation may name (the engine's states).
LINK_STATES = ("up", "up-unvalidated", "halted", "down", "connecting")

#: What an upload step can be expected to return.
UPLOAD_VERDICTS = ("accepted", "refused")

#: The runs ``mesh run --validation`` plays, as an expectation's ``mode``
#: names them: "on" is the scenario as written, "off" the same scenario with
#: validation off on every appliance from the start.
VALIDATION_RUNS = ("on", "off")

#: Certificate recipes an appliance may start with or upload: the healthy one,
#: a self-signed one (what the appliance generates at first start), and every
#: fault recipe of ``mesh.pki.faults``.
CERTIFICATE_RECIPES = ("ca-signed", "self-signed") + tuple(
    name for name in RECIPES if name not in ("ca-signed", "self-signed")
)

#: The emulated instant a scenario starts at when it does not say.
DEFAULT_START = dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)

_UNITS = {
    "y": dt.timedelta(days=365),
    "w": dt.timedelta(weeks=1),
    "d": dt.timedelta(days=1),
    "h": dt.timedelta(hours=1),
    "m": dt.timedelta(minutes=1),
    "s": dt.timedelta(seconds=1),
}
_DURATION = re.compile(r"(\d+)\s*([ywdhms])")


def parse_duration(text: str) -> dt.timedelta:
    """'90d', '12h', '30m', '1y', '45s', '2w', or sums like '1d12h'.

    A year is 365 days: scenarios reason about certificate lifetimes, which
    are issued in days. Raises ValueError for anything else.
    """
    cleaned = text.strip().lower()
    if not cleaned:
        raise ValueError("empty duration")
    total = dt.timedelta()
    position = 0
    for match in _DURATION.finditer(cleaned):
        if cleaned[position : match.start()].strip():
            raise ValueError(f"not a duration: {text!r}")
        total += int(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position == 0 or cleaned[position:].strip():
        raise ValueError(f"not a duration: {text!r}")
    return total


def format_duration(delta: dt.timedelta) -> str:
    """The inverse of :func:`parse_duration`, largest units first ('1y30d')."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit in "ydhms":
        size = int(_UNITS[unit].total_seconds())
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def link_name(dialer: str, listener: str) -> str:
    """The one spelling of a link in files and reports: 'a -> b'."""
    return f"{dialer} -> {listener}"


def parse_link(text: str) -> tuple[str, str]:
    """'a -> b' -> ('a', 'b'); ValueError unless it has exactly that shape."""
    parts = [part.strip() for part in text.split("->")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"not a link: {text!r}")
    return parts[0], parts[1]


def _suggest(name: str, names: list[str]) -> str:
    """The fix for an unknown appliance name: the closest names, never a flood."""
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.9)
    if len(names) <= 6:
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"{hint}use one of {', '.join(names) or '(no appliances defined)'}"
    if close:
        return f"did you mean {close[0]!r}?"
    return f"use the name of one of the {len(names)} appliances"


def _rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else len(ROLES)


def _one_of(allowed: tuple[str, ...]) -> Callable[[object, Attribute[str], str], None]:
    def check(instance: object, attribute: Attribute[str], value: str) -> None:
        if value not in allowed:
            raise ValueError(
                f"{attribute.name}: {value!r} is not one of {', '.join(allowed)}"
            )

    return check


def _not_negative(instance: object, attribute: Attribute[dt.timedelta], value: dt.timedelta) -> None:
    if value < dt.timedelta():
        raise ValueError(f"{attribute.name}: a duration cannot be negative")


def _aware(instance: object, attribute: Attribute[dt.datetime], value: dt.datetime) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{attribute.name}: the instant needs a time zone (end it with Z)")


@define(frozen=True, kw_only=True)
class PkiSpec:
    """The CA hierarchy every appliance certificate of the scenario comes from."""

    root: str = "Mesh Root CA"
    intermediate: str | None = None
    key_size: int = field(default=2048)
    #: Validity of each published CRL; a CRL older than this is stale.
    crl_validity: dt.timedelta = field(default=dt.timedelta(days=7), validator=_not_negative)
    #: When true, certificates name a CRL address appliances cannot reach
    #: directly; only appliances with ``crl_proxy = true`` get their CRLs,
    #: through the scenario's HTTP proxy.
    crl_proxy_only: bool = False
    #: An older root that cross-certifies ``root`` (a root migration): healthy
    #: chains carry the root and its cross certificate, and appliances may
    #: trust either root (``trust`` on an appliance).
    cross_signed_by: str | None = None

    def root_names(self) -> tuple[str, ...]:
        """The roots an appliance may name in ``trust``."""
        return (self.root,) if self.cross_signed_by is None else (self.root, self.cross_signed_by)

    @key_size.validator
    def _check_key_size(self, attribute: Attribute[int], value: int) -> None:
        if value not in (2048, 4096):
            raise ValueError(f"key_size: {value!r} is not 2048 or 4096")


@define(frozen=True, kw_only=True)
class ApplianceDef:
    """One appliance: who it is, what certificate it starts with, whom it dials."""

    name: str
    role: str = field(validator=_one_of(ROLES))
    certificate: str = field(default="ca-signed", validator=_one_of(CERTIFICATE_RECIPES))
    validation: bool = True
    connects_to: tuple[str, ...] = field(default=(), converter=tuple[str, ...])
    forwards_to: tuple[str, ...] = field(default=(), converter=tuple[str, ...])
    #: Reach CRLs through the scenario's HTTP proxy instead of directly.
    crl_proxy: bool = False
    #: "hard" (an unreachable CRL halts the link) or "soft" (a warning).
    revocation: str = field(default="hard", validator=_one_of(("hard", "soft")))
    #: The validator profile: "strict" (every candidate path, RFC 5280 through
    #: the whole path) or "openssl" (a stock OpenSSL-based appliance).
    validator: str = field(default="strict", validator=_one_of(PROFILES))
    #: The roots it trusts, by name (``[pki]`` root or cross_signed_by);
    #: empty: the scenario's root.
    trust: tuple[str, ...] = field(default=(), converter=tuple[str, ...])
    #: Given the CRL files of every CA as published at the scenario start, out
    #: of band, and judging with them instead of fetching CDPs. They are not
    #: refreshed by later steps (an operator would have to copy new ones): a
    #: revocation does not reach it, and the files go stale at nextUpdate.
    crl_files: bool = False
    #: Lifetime of a healthy certificate from the scenario start (None: the
    #: PKI's default); a short one makes a certificate expire mid-run.
    valid_for: dt.timedelta | None = None
    #: Serve its REST API and web console over HTTPS during the run (None:
    #: as the scenario's ``api`` says; forwarding targets have none).
    api: bool | None = None
    #: Where it came from in a file ("appliance[3]"), for messages; tables with
    #: ``count`` expand into several appliances sharing one origin.
    origin: str = field(default="", eq=False)

    def dials(self) -> tuple[str, ...]:
        """Every peer this appliance opens a link to, in file order."""
        return self.connects_to + tuple(p for p in self.forwards_to if p not in self.connects_to)


def _groups(groups: Iterable[Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(group) for group in groups)


@define(frozen=True, kw_only=True)
class Step:
    """One timeline entry: jump the clock by ``after``, then do ``action``."""

    after: dt.timedelta = field(default=dt.timedelta(), validator=_not_negative)
    action: Action = field(converter=Action)
    target: str | None = None
    #: For ``upload``: the recipe of the certificate uploaded.
    certificate: str = field(default="ca-signed", validator=_one_of(CERTIFICATE_RECIPES))
    #: For ``set-validation``.
    enabled: bool | None = None
    #: A free-text note shown in the report's step list.
    note: str = ""
    #: For ``block`` / ``unblock`` (the TOML keys ``from`` and ``to``): hosts
    #: as a ``[[block]]`` names them, and the port (None: every port).
    source: str | None = None
    destination: str | None = None
    port: int | None = None
    #: For ``block`` and ``partition``: drop silently instead of refusing.
    drop: bool = False
    #: For ``partition``: groups of hosts that cannot reach each other.
    between: tuple[tuple[str, ...], ...] = field(default=(), converter=_groups)
    #: For ``loss``: percent of the target's packets dropped (0 ends it).
    percent: int | None = None
    #: For ``bandwidth``: a tc rate ("1mbit"), or "off".
    rate: str | None = None

    def describe(self) -> str:
        """One line for reports: '+90d revoke sensor-2'."""
        words = [f"+{format_duration(self.after)}", str(self.action)]
        if self.target:
            words.append(self.target)
        if self.action == "upload":
            words.append(self.certificate)
        if self.action == "set-validation":
            words.append("on" if self.enabled else "off")
        if self.action in ("block", "unblock"):
            port = "" if self.port is None else f":{self.port}"
            words.append(f"{self.source} -> {self.destination}{port}")
        if self.action == "partition":
            words.append(" | ".join(", ".join(group) for group in self.between))
        if self.action in ("block", "partition") and self.drop:
            words.append("(dropped)")
        if self.action == "loss":
            words.append(f"{self.percent}%")
        if self.action == "bandwidth":
            words.append(str(self.rate))
        return " ".join(words)


@define(frozen=True, kw_only=True)
class Expectation:
    """A claim about the mesh at one moment of the timeline.

    Either about a link (``link``, ``state``, optional ``code``; for a link
    that is ``down``, optional ``reason``: :data:`NETWORK_REASONS`) or about the
    verdict of an upload step (``upload_step``, ``verdict``, optional ``code``).
    ``after_step`` None means at the end; 0 means once the mesh has started,
    before the first step; N means after step N (counted from 1) settles.
    ``mode`` names the run it is judged in (:data:`VALIDATION_RUNS`): one
    file then pins what a link does with validation as written and with it
    off, where suites used to keep a ``-validation-off`` twin of the file.
    """

    link: str | None = None
    state: str | None = field(default=None)
    code: str | None = None
    after_step: int | None = None
    upload_step: int | None = None
    verdict: str | None = None
    mode: str = field(default="on", validator=_one_of(VALIDATION_RUNS))
    #: Why a ``down`` link is down, when the network is why (:data:`NETWORK_REASONS`).
    reason: str | None = None

    @state.validator
    def _check_state(self, attribute: Attribute[str | None], value: str | None) -> None:
        if value is not None and value not in LINK_STATES:
            raise ValueError(f"state: {value!r} is not one of {', '.join(LINK_STATES)}")

    @property
    def subject(self) -> str:
        """What the expectation is about, as reports name it."""
        if self.link is not None:
            return self.link
        return f"upload at step {self.upload_step}"

    @property
    def expected(self) -> str:
        """The expected outcome as one word: 'halted/revoked', 'up', 'refused'."""
        outcome = self.state if self.link is not None else self.verdict
        if self.reason:
            return f"{outcome} ({self.reason})"
        return f"{outcome}/{self.code}" if self.code else str(outcome)

    @property
    def due(self) -> int | None:
        """The step after which this is checked (None = at the end)."""
        if self.upload_step is not None:
            return self.upload_step
        return self.after_step


#: Hosts a network rule may name besides appliances: the CRL server, the
#: CRL proxy, and every host (``"*"``).
NETWORK_HOSTS = ("crl", "proxy", "*")

#: Why a link is ``down`` when the network is why: a row's ``reason``, and what
#: an expectation's ``reason`` may name. Not new states: the link is down.
NETWORK_REASONS = ("network: blocked", "network: partitioned", "network: loss")


@define(frozen=True, kw_only=True)
class Block:
    """A firewall rule in force from the start: ``source`` cannot reach ``destination``.

    What organizational security policy does to the appliances (the source
    document's "some organizational security policies may block access to
    this port"). ``port`` None blocks every port; ``drop`` drops packets
    silently (a connection then times out) where the default refuses them
    (the connection is refused at once). Enforced by the kernel in a hosts
    run; the Kubernetes export writes it as NetworkPolicies.
    """

    source: str
    destination: str
    port: int | None = None
    drop: bool = False
    #: Where it was written (``block[2]``), for messages.
    origin: str = ""

    def describe(self) -> str:
        """One line for reports: 'sensor-2.contoso.test -> crl:80 (refused)'."""
        port = "" if self.port is None else f":{self.port}"
        return f"{self.source} -> {self.destination}{port} ({'dropped' if self.drop else 'refused'})"


#: Step attribute of each network step key (the TOML keys ``from``/``to``
#: are Python keywords or read badly as attributes).
STEP_ATTRIBUTES = {"from": "source", "to": "destination", "port": "port", "drop": "drop",
                   "between": "between", "percent": "percent", "rate": "rate"}


def _step_value(step: Step, key: str) -> object:
    return getattr(step, STEP_ATTRIBUTES.get(key, key))


def _network_keys_set(step: Step) -> list[str]:
    """The network keys a step was given (``drop`` only when true)."""
    return [key for key in STEP_ATTRIBUTES if _step_value(step, key) not in (None, (), False)]


@define(frozen=True, kw_only=True)
class Scenario:
    """A whole scenario: PKI, appliances, timeline and expectations."""

    name: str
    description: str = ""
    start: dt.datetime = field(default=DEFAULT_START, validator=_aware)
    pki: PkiSpec = field(factory=PkiSpec)
    appliances: tuple[ApplianceDef, ...] = field(default=(), converter=tuple[ApplianceDef, ...])
    steps: tuple[Step, ...] = field(default=(), converter=tuple[Step, ...])
    expectations: tuple[Expectation, ...] = field(default=(), converter=tuple[Expectation, ...])
    #: Firewall rules in force from the start (``[[block]]`` tables).
    blocks: tuple[Block, ...] = field(default=(), converter=tuple[Block, ...])
    #: Where it was loaded from (for messages), or "" when built in Python.
    source: str = ""
    #: Serve the REST API and web console of every sensor and console during
    #: the run (an appliance's own ``api`` overrides it).
    api: bool = False

    def appliance(self, name: str) -> ApplianceDef:
        for appliance in self.appliances:
            if appliance.name == name:
                return appliance
        raise KeyError(name)

    def links(self) -> list[tuple[str, str]]:
        """Every link the topology declares, as (dialer, listener), in file order.

        One link per pair of appliances, as the engine keeps one connection
        per pair: when two appliances name each other (a management console
        and its HA console), the one earlier in :data:`ROLES` dials, equal
        roles by name, the same rule as ``mesh.appliances.spec.link_pairs``.
        """
        by_name = {a.name: a for a in self.appliances}
        out: dict[frozenset[str], tuple[str, str]] = {}
        for appliance in self.appliances:
            for peer in appliance.dials():
                pair = frozenset((appliance.name, peer))
                if pair in out or peer == appliance.name:
                    continue
                other = by_name.get(peer)
                dialer, listener = appliance.name, peer
                if other is not None and appliance.name in other.dials():
                    if (_rank(other.role), other.name) < (_rank(appliance.role), appliance.name):
                        dialer, listener = peer, appliance.name
                out[pair] = (dialer, listener)
        return list(out.values())

    def consoles(self) -> list[str]:
        """Appliances that serve their REST API and web console in a run, in file order."""
        return [
            a.name
            for a in self.appliances
            if a.role != "forwarding-target" and (a.api if a.api is not None else self.api)
        ]

    def with_validation_off(self) -> Scenario:
        """The same scenario with validation off on every appliance from the start.

        The "off" run of ``mesh run --validation off|both``. Its steps stay as
        written, numbered as in the file, so ``after_step`` means the same
        moment in both runs; the driver skips ``set-validation`` steps in it.
        """
        return evolve(self, appliances=[evolve(a, validation=False) for a in self.appliances])

    def firewall_line(self, option: str) -> tuple[str, str, str] | None:
        """(where, problem, fix) when ``option``'s backend cannot enforce the network policy.

        Only a hosts run has a kernel between the appliances; elsewhere a
        ``[[block]]`` or a network step (``block``, ``partition``, ``loss``,
        ``bandwidth``...) would silently not hold, and a scenario must fail
        closed rather than pass for the wrong reason. The one check every
        backend without hosts makes; :attr:`needs_hosts` is the same test.
        """
        where = self.source or self.name
        if self.blocks:
            block = self.blocks[0]
            return (f"{where}: {block.origin or 'block[1]'}",
                    f"firewall rules need hosts of their own, which {option} does not give",
                    "run it with --hosts (as root)")
        for index, step in enumerate(self.steps, 1):
            if step.action.network:
                return (f"{where}: step[{index}] {step.action}",
                        f"a network step needs hosts of their own, which {option} does not give",
                        "run it with --hosts (as root)")
        return None

    @property
    def policy_names(self) -> frozenset[str]:
        """The appliances a ``[[block]]`` or a network step names (not ``crl``,
        ``proxy`` or ``*``): the kernel's rules are per host, so on hosts
        shared by several appliances (``--hosts --workers``) each of these
        needs a host of its own."""
        names: set[str] = set()
        for block in self.blocks:
            names.update((block.source, block.destination))
        for step in self.steps:
            if step.action.network:
                names.update(n for n in (step.source, step.destination, step.target) if n)
                names.update(n for group in step.between for n in group)
        return frozenset(names - set(NETWORK_HOSTS))

    @property
    def needs_hosts(self) -> bool:
        """Only ``mesh run --hosts`` can play it (it has network policy: see :meth:`firewall_line`)."""
        return self.firewall_line("") is not None

    def _network_step_problems(self, where: str, step: Step,
                               names: list[str]) -> list[tuple[str, str, str]]:
        """What is wrong with a ``block`` / ``partition`` / ``loss`` / ... step's keys."""
        out: list[tuple[str, str, str]] = []
        action = str(step.action)
        takes = step.action.keys
        hosts = [*names, *NETWORK_HOSTS[:2]]
        if step.target is not None and "target" not in takes:
            out.append((f"{where}.target", f"{action!r} takes no target", "remove target"))
        for key in _network_keys_set(step):
            if key not in takes:
                out.append((f"{where}.{key}", f"{action!r} takes no {key}", "remove " + key))
        examples = {"from": 'from = "sensor-1.contoso.test"', "to": 'to = "crl"',
                    "between": 'between = [["sensor-1.contoso.test"], ["cm.contoso.test"]]',
                    "target": 'target = "crl"', "percent": "percent = 100",
                    "rate": 'rate = "1mbit"'}
        for key in takes:
            if key in examples and _step_value(step, key) in (None, ()):
                out.append((f"{where}.{key}", f"{action!r} needs {key}", "add " + examples[key]))
        for key, end in (("from", step.source), ("to", step.destination), ("target", step.target)):
            allowed = [*names, *NETWORK_HOSTS] if key != "target" else hosts
            if key in takes and end is not None and end not in allowed:
                kind = "an appliance or a network host" if key != "target" else "a host"
                out.append((f"{where}.{key}", f"{end!r} is not {kind}", _suggest(end, allowed)))
        if step.source is not None and step.source == step.destination and step.source != "*":
            out.append((f"{where}.to", "a host cannot be blocked from itself", "name another host"))
        if step.between:
            seen: set[str] = set()
            if len(step.between) < 2:
                out.append((f"{where}.between", "a partition needs two groups of hosts or more",
                            'write between = [["a"], ["b", "c"]]'))
            for g, group in enumerate(step.between, 1):
                for name in group:
                    if name not in hosts:
                        out.append((f"{where}.between[{g}]", f"{name!r} is not a host",
                                    _suggest(name, hosts)))
                    elif name in seen:
                        out.append((f"{where}.between[{g}]", f"{name!r} is in two groups",
                                    "name each host in one group"))
                    seen.add(name)
        return out

    def descriptor_line(self, option: str, budget: int) -> tuple[str, str, str] | None:
        """(where, problem, fix) when one process cannot hold every link's sockets.

        A process may hold at most 20,000 descriptors here (the hard limit);
        a run in one process holds both ends of every link, one socket each,
        plus a listener per appliance that is dialed.
        """
        links = self.links()
        listeners = len({listener for _dialer, listener in links})
        needed = 2 * len(links) + listeners
        if needed <= budget:
            return None
        return (self.source or self.name,
                f"has {len(links):,} links: {option} would hold {needed:,} sockets, "
                f"more than the {budget:,} one process may",
                "spread it over processes with --workers N")

    def duration(self) -> dt.timedelta:
        """Emulated time the timeline spans."""
        return sum((step.after for step in self.steps), dt.timedelta())

    def problems(self) -> list[tuple[str, str, str]]:
        """Cross-reference problems as (key path, problem, fix); empty when sound.

        Key paths count tables from 1, as a person reads the file:
        ``appliance[2]`` is the second ``[[appliance]]`` table.
        """
        out: list[tuple[str, str, str]] = []
        names = [a.name for a in self.appliances]

        def use(name: str) -> str:
            return _suggest(name, names)

        seen: set[str] = set()
        for i, appliance in enumerate(self.appliances, 1):
            where = appliance.origin or f"appliance[{i}]"
            if appliance.name in seen:
                out.append(
                    (f"{where}.name", f"{appliance.name!r} is already used by another appliance",
                     "give every appliance its own name")
                )
            seen.add(appliance.name)
            for key in ("connects_to", "forwards_to"):
                for j, peer in enumerate(getattr(appliance, key), 1):
                    path = f"{where}.{key}[{j}]"
                    if peer not in names:
                        out.append((path, f"{peer!r} is not an appliance", use(peer)))
                    elif peer == appliance.name:
                        out.append((path, "an appliance cannot dial itself", "name another appliance"))
                    elif key == "forwards_to" and self.appliance(peer).role != "forwarding-target":
                        out.append(
                            (path, f"{peer!r} is a {self.appliance(peer).role}, not a forwarding-target",
                             "forward only to forwarding-target appliances, or use connects_to")
                        )
                    elif key == "connects_to" and self.appliance(peer).role == "forwarding-target":
                        out.append(
                            (path, f"{peer!r} is a forwarding-target",
                             "list it under forwards_to instead")
                        )
            roots = self.pki.root_names()
            for j, root in enumerate(appliance.trust, 1):
                if root not in roots:
                    out.append(
                        (f"{where}.trust[{j}]", f"{root!r} is not a root CA of [pki]",
                         "use " + " or ".join(repr(r) for r in roots))
                    )
            if appliance.role == "forwarding-target" and appliance.api:
                out.append(
                    (f"{where}.api", "a forwarding-target has no REST API",
                     "remove api (sensors and consoles serve one)")
                )
            if appliance.role == "forwarding-target" and appliance.dials():
                out.append(
                    (f"{where}.connects_to", "a forwarding-target only listens",
                     "remove connects_to and forwards_to from it")
                )
        for i, step in enumerate(self.steps, 1):
            where = f"step[{i}]"
            if step.action.targeted:
                if step.target is None:
                    out.append((f"{where}.target", f"{str(step.action)!r} needs a target",
                            "add target = " + (f"{names[0]!r}" if names else "an appliance name")))
                elif step.target not in names:
                    out.append((f"{where}.target", f"{step.target!r} is not an appliance",
                                use(step.target)))
            elif step.action.network:
                out += self._network_step_problems(where, step, names)
            elif step.target is not None:
                out.append((f"{where}.target", f"{str(step.action)!r} takes no target", "remove target"))
            if not step.action.network:
                out += [(f"{where}.{key}", f"{str(step.action)!r} takes no {key}", f"remove {key}")
                        for key in _network_keys_set(step)]
            if step.action == "set-validation" and step.enabled is None:
                out.append((f"{where}.enabled", "set-validation needs enabled",
                            "add enabled = true or enabled = false"))
        for i, block in enumerate(self.blocks, 1):
            where = block.origin or f"block[{i}]"
            for key, end in (("from", block.source), ("to", block.destination)):
                if end not in names and end not in NETWORK_HOSTS:
                    out.append((f"{where}.{key}", f"{end!r} is not an appliance or a network host",
                                _suggest(end, [*names, *NETWORK_HOSTS])))
            if block.source == block.destination and block.source != "*":
                out.append((f"{where}.to", "a host cannot be blocked from itself",
                            "name another host"))
        declared = set(self.links())
        for i, expect in enumerate(self.expectations, 1):
            where = f"expect[{i}]"
            if expect.link is not None:
                try:
                    dialer, listener = parse_link(expect.link)
                except ValueError:
                    out.append((f"{where}.link", f"{expect.link!r} is not a link",
                                "write it as \"DIALER -> LISTENER\""))
                else:
                    for end in (dialer, listener):
                        if end not in names:
                            out.append((f"{where}.link", f"{end!r} is not an appliance",
                                        use(end)))
                    if (listener, dialer) in declared:
                        out.append(
                            (f"{where}.link", f"{listener!r} is the one that dials this pair",
                             f"write it as {link_name(listener, dialer)!r}")
                        )
                    elif dialer in names and listener in names and (dialer, listener) not in declared:
                        out.append(
                            (f"{where}.link", f"no appliance dials {link_name(dialer, listener)!r}",
                             f"add {listener!r} to connects_to or forwards_to of {dialer!r}")
                        )
            if expect.after_step is not None and not 0 <= expect.after_step <= len(self.steps):
                out.append((f"{where}.after_step", f"there is no step {expect.after_step}",
                            f"use 0 (after start) to {len(self.steps)}"))
            if expect.upload_step is not None:
                if not 1 <= expect.upload_step <= len(self.steps):
                    out.append((f"{where}.upload_step", f"there is no step {expect.upload_step}",
                                f"use 1 to {len(self.steps)}"))
                elif self.steps[expect.upload_step - 1].action != "upload":
                    out.append((f"{where}.upload_step",
                                f"step {expect.upload_step} is a "
                                f"{str(self.steps[expect.upload_step - 1].action)!r}, not an upload",
                                "name the number of an upload step"))
        return out

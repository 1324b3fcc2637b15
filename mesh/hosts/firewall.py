"""Network policy on a run's hosts, enforced by the kernel: nftables rules and tc qdiscs.

Theory of operation. A hosts run (:mod:`mesh.hosts.netns`) gives every
appliance, the CRL server and the CRL proxy a network namespace of its own,
so a firewall rule can sit where an organization's would: between hosts.
:class:`NetworkPolicy` is what is in force at a moment — the scenario's
``[[block]]`` tables, the ``block`` / ``partition`` / ``loss`` steps played
so far — and :meth:`NetworkPolicy.ruleset` renders one host's part of it as
the text of ``nft -f -``; :func:`apply` loads it into every host. All of
that is pure and tested without root; only :func:`apply` and
:func:`set_bandwidth` run commands.

- **Where a rule sits.** In the *source* host's ``output`` hook, one table
  ``inet mesh`` per host, replaced whole at every change (one ``nft``
  transaction: ``table``, ``delete table``, the new table), so no half-applied
  policy is ever seen.
- **block** matches the source's packets of connections the source opened
  (``ct direction original``): "A cannot reach B" stops A's connections to
  B, not B's replies to connections B opened — a stateful firewall, as
  policy writes it. The default answer is a TCP reset (the dialer sees a
  refused connection at once); ``drop`` discards silently (it times out).
- **partition** splits hosts into groups; every packet between two groups,
  either way, is refused (or dropped).
- **loss** drops N % of the packets crossing the target's link, each way
  (``numgen random mod 100 < N``).
- **bandwidth** is a tc token bucket (``tbf``) on both ends of the target's
  veth — ``eth0`` in the host (what it sends) and its port on the switch
  (what it receives).
- **latency** is missing: the kernel here has no ``netem`` (``tc qdisc add
  ... netem`` fails), and nftables cannot hold a packet back. It would need a
  delaying relay on the path; that is not built.

Rules and qdiscs live in the run's namespaces, so removing a namespace (the
run's cleanup, ``mesh hosts clean``) removes them too: nothing else of the
machine is touched.
"""

from __future__ import annotations

import re
import shutil
from typing import Iterable, Sequence

import trio
from attrs import define, field

from mesh.errors import InputError
from mesh.hosts.netns import Host, HostsPlan

__all__ = [
    "BLOCKED",
    "LOSS",
    "PARTITIONED",
    "NetworkPolicy",
    "Partition",
    "Rule",
    "apply",
    "missing_nft",
    "parse_rate",
    "set_bandwidth",
    "TABLE",
]

#: Why a link is down, when the network is the reason (a link row's ``reason``).
BLOCKED = "network: blocked"
PARTITIONED = "network: partitioned"
LOSS = "network: loss"

#: The one nftables table of a run in every host.
TABLE = "mesh"

#: tc's rate syntax as scenarios may write it: "1mbit", "512kbit", "2.5mbit".
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$")
_UNIT = {"bit": 1, "kbit": 1000, "mbit": 1000_000, "gbit": 1000_000_000}


def parse_rate(text: str) -> int:
    """'1mbit' -> 1000000 bits per second; ValueError for anything else (or zero)."""
    found = _RATE.match(text.strip().lower())
    if found is None:
        raise ValueError(f"not a rate: {text!r}")
    bits = int(float(found.group(1)) * _UNIT[found.group(2)])
    if bits < 8:
        raise ValueError(f"rate too low: {text!r}")
    return bits


@define(frozen=True, kw_only=True)
class Rule:
    """``source`` cannot reach ``destination`` (host names, or ``"*"``), on ``port`` or any."""

    source: str
    destination: str
    port: int | None = None
    drop: bool = False


def _groups(groups: Iterable[Iterable[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(group) for group in groups)


@define(frozen=True, kw_only=True)
class Partition:
    """Groups of host names that cannot reach each other (within a group they can)."""

    groups: tuple[tuple[str, ...], ...] = field(converter=_groups)
    drop: bool = False

    def separates(self, a: str, b: str) -> bool:
        ga = next((i for i, g in enumerate(self.groups) if a in g), None)
        gb = next((i for i, g in enumerate(self.groups) if b in g), None)
        return ga is not None and gb is not None and ga != gb


class NetworkPolicy:
    """What the network does to a run's hosts at one moment (see the module docstring).

    Host names are those of the plan (appliances), ``"crl"``, ``"proxy"``
    and, in rules, ``"*"`` for every host.
    """

    def __init__(self, plan: HostsPlan, rules: Iterable[Rule] = ()) -> None:
        self.plan = plan
        #: In force from the start: ``[[block]]`` tables and what the PKI implies.
        self.static = tuple(rules)
        #: Added by ``block`` steps, removed by ``unblock``.
        self.blocks: list[Rule] = []
        self.partitions: list[Partition] = []
        #: Host name -> percent of packets dropped each way.
        self.loss: dict[str, int] = {}

    # -- changes (steps) --

    def block(self, rule: Rule) -> None:
        if rule not in self.blocks:
            self.blocks.append(rule)

    def unblock(self, source: str, destination: str, port: int | None) -> None:
        """Remove the step rules from ``source`` to ``destination`` (on ``port``); ``[[block]]`` stays."""
        self.blocks = [r for r in self.blocks
                       if (r.source, r.destination, r.port) != (source, destination, port)]

    def partition(self, partition: Partition) -> None:
        self.partitions.append(partition)

    def heal(self) -> None:
        """End every partition (blocks and loss stay)."""
        self.partitions = []

    def set_loss(self, target: str, percent: int) -> None:
        if percent:
            self.loss[target] = percent
        else:
            self.loss.pop(target, None)

    # -- reading --

    def host(self, name: str) -> Host | None:
        """The host a policy name stands for (None: a proxy the run does not have)."""
        if name == "crl":
            return self.plan.crl
        if name == "proxy":
            return self.plan.proxy
        return self.plan.host(name)

    def _name_of(self, host: Host) -> str:
        if host == self.plan.crl:
            return "crl"
        if host == self.plan.proxy:
            return "proxy"
        return host.name

    @property
    def rules(self) -> list[Rule]:
        return [*self.static, *self.blocks]

    def reason(self, dialer: str, listener: str, port: int) -> str | None:
        """Why the network keeps ``dialer`` from ``listener:port``, or None when it does not."""
        if any(p.separates(dialer, listener) for p in self.partitions):
            return PARTITIONED
        for rule in self.rules:
            if (rule.source in (dialer, "*") and rule.destination in (listener, "*")
                    and rule.port in (None, port)):
                return BLOCKED
        if self.loss.get(dialer) or self.loss.get(listener):
            return LOSS
        return None

    def ruleset(self, host: Host) -> str:
        """The ``nft -f -`` text that replaces ``host``'s table with its part of the policy."""
        me = self._name_of(host)
        output: list[str] = []
        inbound: list[str] = []
        if (percent := self.loss.get(me)):
            # numgen's values are 0-99: "< 100" is out of its range, so all is plain drop.
            share = "" if percent >= 100 else f"numgen random mod 100 < {percent} "
            output.append(f'oifname "eth0" {share}drop')
            inbound.append(f'iifname "eth0" {share}drop')
        for partition in self.partitions:
            others = [self.host(n) for g in partition.groups if me not in g for n in g]
            if not any(me in g for g in partition.groups):
                continue
            addresses = sorted({str(h.address) for h in others if h is not None})
            if addresses:
                output += _answer(f"ip daddr {_set(addresses)}", drop=partition.drop)
        for rule in self.rules:
            if rule.source not in (me, "*"):
                continue
            if rule.destination == "*":
                target = f"ip daddr {self.plan.subnet} ip daddr != {host.address}"
            else:
                to = self.host(rule.destination)
                if to is None or to == host:
                    continue
                target = f"ip daddr {to.address}"
            port = "" if rule.port is None else f" tcp dport {rule.port}"
            output += _answer(f"{target}{port} ct direction original", drop=rule.drop)
        lines = [f"table inet {TABLE}", f"delete table inet {TABLE}", f"table inet {TABLE} {{"]
        for chain, hook, body in (("output", "output", output), ("input", "input", inbound)):
            lines += [f"  chain {chain} {{", f"    type filter hook {hook} priority 0; policy accept;"]
            lines += [f"    {line}" for line in body]
            lines.append("  }")
        lines.append("}")
        return "\n".join(lines) + "\n"


def _set(addresses: Sequence[str]) -> str:
    return addresses[0] if len(addresses) == 1 else "{ " + ", ".join(addresses) + " }"


def _answer(match: str, *, drop: bool) -> list[str]:
    """The statements refusing (a TCP reset, else ICMP unreachable) or dropping ``match``."""
    if drop:
        return [f"{match} drop"]
    return [f"{match} meta l4proto tcp reject with tcp reset",
            f"{match} reject with icmpx type port-unreachable"]


# -- commands --


def missing_nft() -> str | None:
    """Why this machine cannot load rules (one line), or None when ``nft`` and ``tc`` are there."""
    if shutil.which("nft") is None:
        return "needs the nft command (Debian's nftables package; `make test` installs it as root)"
    if shutil.which("tc") is None:
        return "needs the tc command (iproute2)"
    return None


async def _run(command: list[str], stdin: bytes = b"") -> None:
    done = await trio.run_process(command, stdin=stdin, capture_stdout=True,
                                  capture_stderr=True, check=False)
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        # nft points at the error with a caret line after it: name the error line.
        errors = [line.strip() for line in said if "Error:" in line]
        reason = (errors or said or [f"exit status {done.returncode}"])[-1]
        raise InputError(" ".join(command), f"failed ({reason})",
                         "`mesh hosts clean` removes what a run left")


async def apply(policy: NetworkPolicy) -> None:
    """Load every host's ruleset (``ip netns exec NS nft -f -``), one transaction per host."""
    for host in policy.plan.hosts:
        await _run(["ip", "netns", "exec", host.namespace, "nft", "-f", "-"],
                   policy.ruleset(host).encode())


async def set_bandwidth(plan: HostsPlan, host: Host, rate: str | None) -> None:
    """Limit ``host``'s link to ``rate`` each way (tc tbf), or lift the limit (None)."""
    ends = [("-n", host.namespace, "eth0"), ("-n", plan.switch, host.port)]
    for flag, namespace, device in ends:
        if rate is None:
            done = await trio.run_process(["tc", flag, namespace, "qdisc", "del", "dev", device,
                                           "root"], capture_stdout=True, capture_stderr=True,
                                          check=False)
            del done  # no limit there already is fine
            continue
        # A bucket of a few packets' worth at least, and a queue of a quarter
        # second: TCP then paces itself to the rate instead of losing bursts.
        burst = max(parse_rate(rate) // 8 // 100, 16 * 1024)
        await _run(["tc", flag, namespace, "qdisc", "replace", "dev", device, "root", "tbf",
                    "rate", rate, "burst", str(burst), "latency", "250ms"])


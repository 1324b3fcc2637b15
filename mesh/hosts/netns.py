"""Hosts of their own: Linux network namespaces on a private switch (``mesh run --hosts``).

Theory of operation. A run's hosts are network namespaces: one per appliance
and one for the CRL server, each with its loopback up and one veth pair whose
other end is a port of a bridge. The bridge lives in a namespace of its own,
the *switch*, so the machine's own network namespace never gets an address,
a route or a link: every link is created inside a namespace
(``ip -n SWITCH link add PORT type veth peer name eth0 netns HOST``).

- **Names.** Every object carries the run's prefix, ``mesh-<6 hex>-``
  (:data:`PREFIX`): namespaces ``<prefix>sw`` (the switch), ``<prefix>crl``
  and ``<prefix>1`` ... ``<prefix>N`` (the appliances, in scenario order);
  the bridge ``<prefix>br`` and its ports ``<prefix>v01`` ... (hex; at most
  15 characters, Linux's limit for a link name), inside the switch. Inside a
  host the veth end is ``eth0``. ``mesh hosts clean`` finds what a killed run
  left by that pattern and touches nothing else.
- **Addresses.** 10.213.0.0/16 (:data:`NETWORK`), a /24 per run chosen by its
  id: the third octet is the run id modulo 256. The range exists only inside
  the run's namespaces, so it cannot collide with the machine's networks;
  it was picked as unlikely to be in use anyway, for anyone reading both.
  The CRL host is ``.1``, appliances ``.2`` onwards, and the CRL proxy's
  host, when the scenario has a proxy, ``.254`` (namespace ``<prefix>px``).
- **Names resolve through hosts files.** ``ip netns exec NS`` bind-mounts
  every file of ``/etc/netns/NS/`` over ``/etc``; each host gets
  ``/etc/netns/NS/hosts`` naming every host of the run, so certificates keep
  their real DNS names and no resolver is involved.
- **Cleanup** deletes the namespaces (their veths and the bridge go with
  them) and the ``/etc/netns`` folders, first ending any process still in a
  namespace (only a run of ours put processes there).

Everything here is a plain ``ip`` command (``trio.run_process``); a failure
is one line naming the command and what ``ip`` said. :func:`plan_hosts` is
pure: it computes every name, address and hosts file from the scenario's
appliance names, and is tested without root.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shutil
import signal
from pathlib import Path
from typing import Mapping, Sequence

import trio
from attrs import define, field

from mesh.errors import InputError
from mesh.hosts import run_lock

__all__ = [
    "Cleaned",
    "ETC_NETNS",
    "FALLBACK_DOMAIN",
    "Host",
    "HostsPlan",
    "NETWORK",
    "PREFIX",
    "clean",
    "create",
    "crl_domain",
    "destroy",
    "leftovers",
    "missing_privilege",
    "new_run_id",
    "plan_hosts",
]

#: The private range every run's /24 comes from (see the module docstring).
NETWORK = ipaddress.IPv4Network("10.213.0.0/16")

#: What every object of a run is named with; ``mesh hosts clean`` looks for it.
PREFIX = re.compile(r"^mesh-[0-9a-f]{6}-")

#: A run's id: what its prefix carries between ``mesh-`` and ``-``.
RUN_ID = re.compile(r"[0-9a-f]{6}")

#: Where ``ip netns exec`` finds the files it mounts over ``/etc``.
ETC_NETNS = Path("/etc/netns")

#: The CRL host's domain when the appliances' names share no suffix.
FALLBACK_DOMAIN = "mesh.test"

#: Linux's limit on a link name (IFNAMSIZ - 1).
_LINK_NAME_MAX = 15

#: Appliances a /24 holds besides the CRL host (.1) and the proxy host (.254).
MAX_HOSTS = 252

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")

#: The capabilities making namespaces takes: CAP_NET_ADMIN (links, addresses)
#: and CAP_SYS_ADMIN (``ip netns add`` mounts the namespace, ``exec`` binds /etc files).
_CAPABILITIES = {"CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21}


@define(frozen=True, kw_only=True)
class Host:
    """One host of a run: a DNS name, its namespace, its address, its switch port."""

    name: str
    namespace: str
    address: ipaddress.IPv4Address
    #: The veth end on the switch's bridge (inside the switch namespace).
    port: str


@define(frozen=True, kw_only=True)
class HostsPlan:
    """Every name and address of one run, computed before anything is made."""

    prefix: str
    subnet: ipaddress.IPv4Network
    switch: str
    bridge: str
    crl: Host
    appliances: tuple[Host, ...]
    #: The CRL proxy's host (None: no appliance fetches through a proxy).
    proxy: Host | None = None
    #: Appliance name -> the name of the host it runs on, for appliances
    #: sharing a host (``--hosts --workers``: a host per shard, named after
    #: its first appliance). An appliance not here has a host of its own.
    members: Mapping[str, str] = field(factory=dict, hash=False)

    @property
    def run_id(self) -> str:
        """The six hex digits of :attr:`prefix` (``mesh-<id>-``)."""
        return self.prefix[len("mesh-"):-1]

    @property
    def hosts(self) -> tuple[Host, ...]:
        return (self.crl, *self.appliances, *((self.proxy,) if self.proxy else ()))

    @property
    def namespaces(self) -> list[str]:
        """Every namespace, the switch first."""
        return [self.switch, *(h.namespace for h in self.hosts)]

    def host(self, name: str) -> Host:
        """The host appliance (or CRL or proxy host) ``name`` is on."""
        name = self.members.get(name, name)
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def names_on(self, host: Host) -> list[str]:
        """Every name that resolves to ``host``: its own, then its other appliances'."""
        return [host.name, *(n for n, h in self.members.items() if h == host.name and n != host.name)]

    def hosts_file(self) -> str:
        """The ``/etc/hosts`` every namespace of the run sees."""
        lines = [
            f"# mesh run --hosts, run {self.prefix}: written by mesh, removed with the run",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost",
        ]
        # A line per name, not one alias list per host: a shard's host carries
        # thousands of names, more than a resolver should have to take in one entry.
        lines += [f"{h.address}\t{name}" for h in self.hosts for name in self.names_on(h)]
        return "\n".join(lines) + "\n"


def new_run_id() -> str:
    """Six hex digits naming a run's objects."""
    return secrets.token_hex(3)


def crl_domain(names: Sequence[str]) -> str:
    """The domain the CRL host ``crl.<domain>`` is named in.

    The rule: the longest suffix of DNS labels that every appliance's parent
    domain (its name without the first label) ends with — ``contoso.test``
    for ``cm.contoso.test`` and ``sensor-1.contoso.test``, ``test`` when
    ``siem.partner.test`` joins them — or :data:`FALLBACK_DOMAIN` when they
    share none.
    """
    parents = [name.lower().split(".")[1:] for name in names]
    common: list[str] = []
    if parents:
        for labels in zip(*(reversed(p) for p in parents)):
            if len(set(labels)) != 1:
                break
            common.insert(0, labels[0])
    return ".".join(common) or FALLBACK_DOMAIN


def _check_dns_name(name: str) -> None:
    labels = name.lower().split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise InputError(
            f"appliance {name!r}", "is not a DNS name, which --hosts needs for the hosts files",
            "name it like sensor-1.example.test (letters, digits, hyphens, dots)",
        )


def plan_hosts(names: Sequence[str], *, run_id: str, proxy: bool = False,
               groups: Sequence[Sequence[str]] | None = None) -> HostsPlan:
    """Names and addresses for appliances ``names`` (in order), the CRL host and,
    with ``proxy``, the CRL proxy's host ``proxy.<domain>``.

    ``groups`` (``--hosts --workers``): one host per group of ``names``,
    named after its first appliance; every appliance's name resolves to its
    group's host. None: a host per appliance.

    Raises:
        InputError: a name is not a DNS name, is given twice, is the CRL
            host's name, or there are more than :data:`MAX_HOSTS` hosts.
    """
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"a run id is six hex digits, not {run_id!r}")
    groups = [[name] for name in names] if groups is None else [list(g) for g in groups if g]
    if len(groups) > MAX_HOSTS:
        raise InputError(f"{len(groups)} hosts", "do not fit one /24 of --hosts",
                         f"run at most {MAX_HOSTS}, or add --workers N to put a shard of "
                         "appliances on each host")
    seen: set[str] = set()
    for name in names:
        _check_dns_name(name)
        if name.lower() in seen:
            raise InputError(f"appliance {name!r}", "is named twice", "give each its own name")
        seen.add(name.lower())
    crl_name = f"crl.{crl_domain(names)}"
    proxy_name = f"proxy.{crl_domain(names)}"
    if crl_name in seen:
        raise InputError(f"appliance {crl_name!r}", "has the name of the run's CRL host",
                         "rename the appliance")
    if proxy and proxy_name in seen:
        raise InputError(f"appliance {proxy_name!r}", "has the name of the run's CRL proxy host",
                         "rename the appliance")
    prefix = f"mesh-{run_id}-"
    subnet = ipaddress.IPv4Network((int(NETWORK.network_address) + (int(run_id, 16) % 256) * 256, 24))
    addresses = list(subnet.hosts())

    def host(index: int, name: str, namespace: str) -> Host:
        port = f"{prefix}v{index:02x}"
        assert len(port) <= _LINK_NAME_MAX
        return Host(name=name, namespace=namespace, address=addresses[index], port=port)

    return HostsPlan(
        prefix=prefix,
        subnet=subnet,
        switch=f"{prefix}sw",
        bridge=f"{prefix}br",
        crl=host(0, crl_name, f"{prefix}crl"),
        appliances=tuple(host(i, group[0], f"{prefix}{i}") for i, group in enumerate(groups, 1)),
        proxy=host(len(addresses) - 1, proxy_name, f"{prefix}px") if proxy else None,
        members={name: group[0] for group in groups if len(group) > 1 for name in group},
    )


# -- privileges --


def missing_privilege() -> str | None:
    """Why this process cannot make namespaces (one line), or None when it can."""
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2), which is not on PATH"
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return "needs Linux network namespaces (/proc/self/status is not readable)"
    found = re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.MULTILINE)
    effective = int(found.group(1), 16) if found else 0
    lacking = [name for name, bit in _CAPABILITIES.items() if not effective >> bit & 1]
    if lacking:
        return f"needs root ({' and '.join(lacking)}) to make network namespaces"
    return None


# -- ip --


async def ip(*args: str, check: bool = True) -> str:
    """Run ``ip ARGS``; its output.

    Raises:
        InputError: it failed (``check``): one line naming the command and ip's message.
    """
    command = ["ip", *args]
    done = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    if check and done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        reason = said[-1] if said else f"exit status {done.returncode}"
        raise InputError(" ".join(command), f"failed ({reason})",
                         "`mesh hosts clean` removes what a run left")
    return str(done.stdout.decode(errors="replace"))


async def create(plan: HostsPlan) -> None:
    """Make every namespace, the switch, the veths, the addresses and the hosts files.

    On failure, what was made stays for :func:`destroy` (call it in a ``finally``).
    """
    text = plan.hosts_file()
    for namespace in plan.namespaces:
        folder = ETC_NETNS / namespace
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "hosts").write_text(text)
        await ip("netns", "add", namespace)
        await ip("-n", namespace, "link", "set", "lo", "up")
    await ip("-n", plan.switch, "link", "add", plan.bridge, "type", "bridge")
    await ip("-n", plan.switch, "link", "set", plan.bridge, "up")
    for host in plan.hosts:
        await ip("-n", plan.switch, "link", "add", host.port, "type", "veth",
                 "peer", "name", "eth0", "netns", host.namespace)
        await ip("-n", plan.switch, "link", "set", host.port, "master", plan.bridge, "up")
        await ip("-n", host.namespace, "addr", "add",
                 f"{host.address}/{plan.subnet.prefixlen}", "dev", "eth0")
        await ip("-n", host.namespace, "link", "set", "eth0", "up")


async def destroy(plan: HostsPlan) -> list[str]:
    """Remove every namespace and hosts folder of ``plan`` that exists; what was removed."""
    return await _remove(plan.namespaces)


async def _namespaces() -> list[str]:
    listing = await ip("netns", "list")
    # "NAME" or "NAME (id: N)", one a line.
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


async def leftovers(run: str | None = None) -> list[str]:
    """The namespaces and ``/etc/netns`` folders named like a run's (:data:`PREFIX`),
    or like run ``run``'s only."""
    pattern = PREFIX if run is None else re.compile(f"^mesh-{re.escape(run)}-")
    found = {ns for ns in await _namespaces() if pattern.match(ns)}
    if ETC_NETNS.is_dir():
        found |= {entry.name for entry in ETC_NETNS.iterdir() if pattern.match(entry.name)}
    return sorted(found)


@define(frozen=True)
class Cleaned:
    """What ``mesh hosts clean`` did: one line per thing removed, and the live runs kept."""

    removed: list[str]
    #: Run id -> the PID of its ``mesh run`` (0: unknown), for runs still going.
    kept: dict[str, int]


async def clean(run: str | None = None) -> Cleaned:
    """Remove what killed runs (or run ``run``) left (``mesh hosts clean``).

    A run whose ``mesh run`` is still going (it holds its lock,
    :mod:`mesh.hosts.run_lock`) is left alone: its objects have the same names
    as a killed run's, and removing them would end its nodes under it.
    """
    found = await leftovers(run)
    runs = sorted({_run_of(name) for name in found})
    kept = {run_id: pid for run_id in runs if (pid := run_lock.holder(run_id)) is not None}
    removed = await _remove([name for name in found if _run_of(name) not in kept])
    for run_id in runs:
        if run_id not in kept and (lock := run_lock.stale(run_id)) is not None:
            removed.append(f"lock file {lock}")
    return Cleaned(removed=removed, kept=kept)


def _run_of(name: str) -> str:
    """The run id in an object's name (``mesh-<id>-...``)."""
    return name.split("-", 2)[1]


async def _remove(namespaces: list[str]) -> list[str]:
    """End the processes in ``namespaces``, delete them and their hosts folders.

    Every namespace is tried; the first failure is raised once all were.
    """
    existing = set(await _namespaces())
    removed: list[str] = []
    failures: list[InputError] = []
    for namespace in namespaces:
        if namespace in existing:
            try:
                removed += await _end_processes(namespace)
                await ip("netns", "del", namespace)
                removed.append(f"network namespace {namespace}")
            except InputError as exc:
                failures.append(exc)
        folder = ETC_NETNS / namespace
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(f"folder {folder}")
    try:
        ETC_NETNS.rmdir()  # only when empty: another tool's files stay
    except OSError:
        pass
    if failures:
        raise failures[0]
    return removed


async def _end_processes(namespace: str) -> list[str]:
    """SIGKILL every process in ``namespace`` (a killed run's nodes); one line each."""
    pids = [int(p) for p in (await ip("netns", "pids", namespace)).split()]
    ended = []
    for pid in pids:
        if pid == os.getpid():  # `ip netns exec NS mesh hosts clean` ends everything but itself
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        ended.append(f"process {pid} in {namespace}")
    return ended


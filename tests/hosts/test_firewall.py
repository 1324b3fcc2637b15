"""Network policy on a run's hosts (:mod:`mesh.hosts.firewall`).

The rulesets are pure text, checked without root. Then, on real namespaces
(as root, with nft and tc; otherwise skipped, saying why): a refusing rule
refuses at once, a dropping one times out, 100 % loss loses everything, and
a CRL fetch through a token bucket takes measurably longer than without.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import pytest
import trio

from mesh.hosts import firewall, netns
from mesh.hosts.firewall import NetworkPolicy, Partition, Rule, parse_rate
from mesh.hosts.service import HostService
from mesh.pki import files
from mesh.pki.issue import CertificateAuthority

from tests.hosts.conftest import needs_nft

NAMES = ["cm.contoso.test", "sensor-1.contoso.test", "sensor-2.contoso.test"]
CM, S1, S2 = NAMES
PLAN = netns.plan_hosts(NAMES, run_id="0a1b2c", proxy=True)  # .1 crl, .2 cm, .3 s1, .4 s2


def _chains(text: str) -> dict[str, list[str]]:
    """The statements of each chain of a ruleset, by chain name."""
    chains: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("chain "):
            current = chains.setdefault(line.split()[1], [])
        elif current is not None and line not in ("}",) and not line.startswith("type filter"):
            current.append(line)
    return chains


def test_a_ruleset_replaces_the_hosts_table_in_one_transaction():
    text = NetworkPolicy(PLAN).ruleset(PLAN.crl)
    assert text.splitlines()[:3] == ["table inet mesh", "delete table inet mesh",
                                     "table inet mesh {"]
    assert _chains(text) == {"output": [], "input": []}


def test_a_block_sits_in_the_source_and_refuses_its_connections_at_once():
    policy = NetworkPolicy(PLAN, [Rule(source=S1, destination="crl", port=80)])
    assert _chains(policy.ruleset(PLAN.host(S1)))["output"] == [
        "ip daddr 10.213.44.1 tcp dport 80 ct direction original meta l4proto tcp "
        "reject with tcp reset",
        "ip daddr 10.213.44.1 tcp dport 80 ct direction original "
        "reject with icmpx type port-unreachable",
    ]
    for other in (PLAN.crl, PLAN.host(CM), PLAN.host(S2)):
        assert _chains(policy.ruleset(other))["output"] == []


def test_a_dropping_block_from_every_host_to_every_host():
    policy = NetworkPolicy(PLAN, [Rule(source="*", destination="*", drop=True)])
    for host in PLAN.hosts:
        assert _chains(policy.ruleset(host))["output"] == [
            f"ip daddr 10.213.44.0/24 ip daddr != {host.address} ct direction original drop"
        ]


def test_a_partition_refuses_both_ways_and_leaves_the_rest_alone():
    policy = NetworkPolicy(PLAN)
    policy.partition(Partition(groups=[[S1], [CM, "crl"]]))
    s1 = _chains(policy.ruleset(PLAN.host(S1)))["output"]
    assert s1[0] == ("ip daddr { 10.213.44.1, 10.213.44.2 } meta l4proto tcp "
                     "reject with tcp reset")
    assert _chains(policy.ruleset(PLAN.host(CM)))["output"][0] == (
        "ip daddr 10.213.44.3 meta l4proto tcp reject with tcp reset")
    assert _chains(policy.ruleset(PLAN.host(S2)))["output"] == []
    policy.heal()
    assert _chains(policy.ruleset(PLAN.host(S1)))["output"] == []


def test_loss_drops_a_share_of_the_packets_each_way_on_the_hosts_link():
    policy = NetworkPolicy(PLAN)
    policy.set_loss("crl", 30)
    assert _chains(policy.ruleset(PLAN.crl)) == {
        "output": ['oifname "eth0" numgen random mod 100 < 30 drop'],
        "input": ['iifname "eth0" numgen random mod 100 < 30 drop'],
    }
    policy.set_loss("crl", 100)  # numgen's range ends at 99
    assert _chains(policy.ruleset(PLAN.crl)) == {
        "output": ['oifname "eth0" drop'], "input": ['iifname "eth0" drop']}
    policy.set_loss("crl", 0)
    assert _chains(policy.ruleset(PLAN.crl)) == {"output": [], "input": []}


def test_unblock_lifts_the_steps_rule_and_never_a_block_table():
    table = Rule(source=S1, destination=CM)
    policy = NetworkPolicy(PLAN, [table])
    policy.block(Rule(source=S2, destination=CM, port=8443))
    policy.unblock(S2, CM, 8443)
    policy.unblock(S1, CM, None)
    assert policy.rules == [table]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda p: None, None),
        (lambda p: p.block(Rule(source=S1, destination=CM, port=8443)), "network: blocked"),
        (lambda p: p.block(Rule(source=S1, destination="*")), "network: blocked"),
        (lambda p: p.block(Rule(source=S1, destination=CM, port=80)), None),  # not the link's port
        (lambda p: p.block(Rule(source=CM, destination=S1)), None),  # the other way: replies pass
        (lambda p: p.partition(Partition(groups=[[S1], [CM]])), "network: partitioned"),
        (lambda p: p.partition(Partition(groups=[[S1], [S2]])), None),
        (lambda p: p.set_loss(CM, 100), "network: loss"),
    ],
)
def test_the_reason_a_link_is_down_is_the_rule_that_cuts_it(change, reason):
    policy = NetworkPolicy(PLAN)
    change(policy)
    assert policy.reason(S1, CM, 8443) == reason


def test_a_partition_is_named_before_a_block():
    policy = NetworkPolicy(PLAN, [Rule(source=S1, destination=CM)])
    policy.partition(Partition(groups=[[S1], [CM]]))
    assert policy.reason(S1, CM, 8443) == "network: partitioned"


@pytest.mark.parametrize(("text", "bits"), [("1mbit", 1_000_000), ("512kbit", 512_000),
                                            ("2.5mbit", 2_500_000), ("1Gbit", 10**9)])
def test_rates_are_tc_rates(text, bits):
    assert parse_rate(text) == bits


@pytest.mark.parametrize("text", ["fast", "1mb", "0bit", "mbit", "-1mbit"])
def test_anything_else_is_not_a_rate(text):
    with pytest.raises(ValueError):
        parse_rate(text)


# -- on real namespaces --

#: Probes a TCP port from inside a namespace: "ok", "refused" or "timeout", and the seconds.
PROBE = """
import socket, sys, time
started = time.monotonic()
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    said = "ok"
except ConnectionRefusedError:
    said = "refused"
except (TimeoutError, socket.timeout):
    said = "timeout"
print(said, round(time.monotonic() - started, 2))
"""

#: Fetches a CRL with mesh's own fetcher from inside a namespace: the seconds it took.
FETCH = """
import datetime as dt, sys, time
import trio
from mesh.net.crl_fetch import CrlFetcher
at = dt.datetime.fromisoformat(sys.argv[2])
async def main():
    async with CrlFetcher(now=lambda: at, timeout=60, trust_env=False) as fetcher:
        started = time.monotonic()
        await fetcher.get(sys.argv[1])
        print(round(time.monotonic() - started, 3))
trio.run(main)
"""

AT = dt.datetime(2027, 1, 15, 9, tzinfo=dt.timezone.utc)


async def _in(host: netns.Host, *argv: str) -> str:
    done = await trio.run_process(["ip", "netns", "exec", host.namespace, sys.executable, *argv],
                                  capture_stdout=True, capture_stderr=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().strip()


async def _probe(host: netns.Host, port: int = 80, timeout: float = 1.0) -> str:
    return (await _in(host, "-c", PROBE, "crl.contoso.test", str(port), str(timeout))).split()[0]


@pytest.fixture
async def crl_host(tmp_path, keys, nursery):
    """A run's hosts with ``mesh crl serve`` on the CRL host, serving a CRL of about 1 MiB."""
    from mesh.bench.bigcrl import build_crl, revoked_serials

    ca = CertificateAuthority.root("Contoso Issuing CA", not_before=AT, key=keys(2048))
    crl = build_crl(ca, revoked_serials(28_000), this_update=AT)
    files.save_crl(tmp_path / "big.crl", crl)
    url = "http://crl.contoso.test/crl/big.crl"
    (tmp_path / "pki.json").write_text(json.dumps({"crls": {url: "big.crl"}}))
    plan = netns.plan_hosts(["sensor-1.contoso.test"], run_id=netns.new_run_id())
    server = HostService(plan.crl, nursery, what="mesh crl serve", timeout=60)
    try:
        await netns.create(plan)
        await server.launch([sys.executable, "-m", "mesh", "crl", "serve", str(tmp_path),
                             "--host", str(plan.crl.address), "--port", "80"],
                            ready="mesh: serving")
        yield plan, url, (tmp_path / "big.crl").stat().st_size
    finally:
        with trio.CancelScope(shield=True):
            await server.stop()
            await netns.destroy(plan)


@needs_nft
async def test_a_block_refuses_at_once_and_unblocking_lets_through(crl_host):
    plan, _, _ = crl_host
    sensor = plan.appliances[0]
    policy = NetworkPolicy(plan, [])
    policy.block(Rule(source=sensor.name, destination="crl", port=80))
    await firewall.apply(policy)
    started = time.monotonic()
    assert await _probe(sensor) == "refused"
    assert time.monotonic() - started < 5  # a Python start-up, not a timeout
    assert await _probe(sensor, port=81) == "refused"  # nothing listens there: the host's answer
    policy.unblock(sensor.name, "crl", 80)
    await firewall.apply(policy)
    assert await _probe(sensor) == "ok"


@needs_nft
async def test_a_dropping_block_and_total_loss_time_out(crl_host):
    plan, _, _ = crl_host
    sensor = plan.appliances[0]
    policy = NetworkPolicy(plan, [Rule(source=sensor.name, destination="crl", drop=True)])
    await firewall.apply(policy)
    assert await _probe(sensor, timeout=0.5) == "timeout"
    policy = NetworkPolicy(plan)
    await firewall.apply(policy)
    assert await _probe(sensor) == "ok"
    policy.set_loss("crl", 100)
    await firewall.apply(policy)
    assert await _probe(sensor, timeout=0.5) == "timeout"


def _root_qdiscs() -> str:
    return subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout


@needs_nft
@pytest.mark.slow
async def test_a_crl_fetch_through_a_token_bucket_is_measurably_slower(crl_host):
    plan, url, size = crl_host
    sensor = plan.appliances[0]
    assert 900_000 < size < 1_300_000
    before = _root_qdiscs()
    free = float(await _in(sensor, "-c", FETCH, url, AT.isoformat()))
    await firewall.set_bandwidth(plan, plan.crl, "2mbit")
    assert _root_qdiscs() == before  # both ends of the veth are inside the run's namespaces
    limited = float(await _in(sensor, "-c", FETCH, url, AT.isoformat()))
    floor = size * 8 / 2_000_000  # the bytes at the rate, not counting headers
    print(f"1 MiB CRL fetch: {free:.3f} s free, {limited:.3f} s at 2mbit (floor {floor:.2f} s)")
    assert limited > 0.9 * floor and limited > 4 * free, (free, limited)
    await firewall.set_bandwidth(plan, plan.crl, None)
    again = float(await _in(sensor, "-c", FETCH, url, AT.isoformat()))
    assert again < limited / 4, (free, limited, again)

"""``mesh.hosts.netns``: the pure plan without root; the namespaces themselves with it."""

from __future__ import annotations

import ipaddress

import pytest

from mesh.errors import InputError
from mesh.hosts import netns
from mesh.hosts.netns import crl_domain, plan_hosts

from tests.hosts.conftest import needs_root

NAMES = ["cm.contoso.test", "sensor-1.contoso.test", "sensor-2.contoso.test"]


def test_the_plan_names_every_object_with_the_run_prefix():
    plan = plan_hosts(NAMES, run_id="0a1b2c")
    assert plan.prefix == "mesh-0a1b2c-"
    assert plan.namespaces == ["mesh-0a1b2c-sw", "mesh-0a1b2c-crl", "mesh-0a1b2c-1",
                               "mesh-0a1b2c-2", "mesh-0a1b2c-3"]
    assert plan.bridge == "mesh-0a1b2c-br"
    assert [h.port for h in plan.hosts] == ["mesh-0a1b2c-v00", "mesh-0a1b2c-v01",
                                            "mesh-0a1b2c-v02", "mesh-0a1b2c-v03"]
    assert all(netns.PREFIX.match(name) for name in plan.namespaces + [plan.bridge])


def test_the_addresses_are_one_slash_24_of_the_private_range_chosen_by_the_run_id():
    plan = plan_hosts(NAMES, run_id="0a1b2c")
    assert plan.subnet == ipaddress.IPv4Network("10.213.44.0/24")  # 0x2c = 44
    assert plan.subnet.subnet_of(netns.NETWORK)
    assert plan.crl.name == "crl.contoso.test"
    assert str(plan.crl.address) == "10.213.44.1"
    assert [(h.name, str(h.address)) for h in plan.appliances] == [
        ("cm.contoso.test", "10.213.44.2"),
        ("sensor-1.contoso.test", "10.213.44.3"),
        ("sensor-2.contoso.test", "10.213.44.4"),
    ]
    assert plan.host("sensor-2.contoso.test").namespace == "mesh-0a1b2c-3"


def test_the_hosts_file_names_every_host_of_the_run():
    text = plan_hosts(NAMES[:2], run_id="ffffff").hosts_file()
    assert text.splitlines()[1:] == [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost",
        "10.213.255.1\tcrl.contoso.test",
        "10.213.255.2\tcm.contoso.test",
        "10.213.255.3\tsensor-1.contoso.test",
    ]
    assert text.startswith("# mesh run --hosts, run mesh-ffffff-")


def test_with_shards_a_host_carries_every_name_of_its_shard():
    names = [*NAMES, "sensor-3.contoso.test"]
    plan = plan_hosts(names, run_id="ffffff", groups=[["cm.contoso.test"], names[1:]])
    assert [h.name for h in plan.appliances] == ["cm.contoso.test", "sensor-1.contoso.test"]
    assert plan.hosts_file().splitlines()[4:] == [
        "10.213.255.2\tcm.contoso.test",
        "10.213.255.3\tsensor-1.contoso.test",
        "10.213.255.3\tsensor-2.contoso.test",
        "10.213.255.3\tsensor-3.contoso.test",
    ]
    assert plan.host("sensor-3.contoso.test") == plan.host("sensor-1.contoso.test")
    assert plan.namespaces == ["mesh-ffffff-sw", "mesh-ffffff-crl", "mesh-ffffff-1", "mesh-ffffff-2"]
    # 20,000 appliances on a few hosts fit; it is hosts that a /24 counts.
    many = [f"s{n}.test" for n in range(20_000)]
    assert len(plan_hosts(many, run_id="000000", groups=[many[:10_000], many[10_000:]]).hosts) == 3


def test_on_shared_hosts_each_appliance_has_a_port_of_its_own():
    from mesh.scenario.hosts import API_PORT, NODE_PORT, SHARD_API_PORTS, SHARD_PORTS, OnHosts

    names = [*NAMES, "sensor-3.contoso.test"]
    on = OnHosts(plan_hosts(names, run_id="ffffff", groups=[["cm.contoso.test"], names[1:]]))
    assert [on.listen(n) for n in names] == [
        f"10.213.255.2:{NODE_PORT}", f"10.213.255.3:{NODE_PORT}",
        f"10.213.255.3:{SHARD_PORTS + 1}", f"10.213.255.3:{SHARD_PORTS + 2}"]
    assert on.dial("sensor-2.contoso.test", None) == f"sensor-2.contoso.test:{SHARD_PORTS + 1}"
    assert on.api_ports(names) == {"cm.contoso.test": API_PORT, "sensor-1.contoso.test": API_PORT,
                                   "sensor-2.contoso.test": SHARD_API_PORTS + 1,
                                   "sensor-3.contoso.test": SHARD_API_PORTS + 2}


@pytest.mark.parametrize(
    ("names", "domain"),
    [
        (["cm.contoso.test", "sensor-1.contoso.test"], "contoso.test"),
        (["cm.contoso.test"], "contoso.test"),
        (["cm.contoso.test", "siem.partner.test"], "test"),
        (["a.east.contoso.test", "b.west.contoso.test"], "contoso.test"),
        (["cm.contoso.test", "siem.partner.example"], netns.FALLBACK_DOMAIN),
        (["cm", "sensor"], netns.FALLBACK_DOMAIN),
        (["CM.Contoso.Test", "s.contoso.test"], "contoso.test"),
    ],
)
def test_the_crl_host_is_in_the_appliances_common_domain(names, domain):
    assert crl_domain(names) == domain


@pytest.mark.parametrize(
    ("names", "line"),
    [
        (["cm.contoso.test", "bad_name.contoso.test"],
         "appliance 'bad_name.contoso.test': is not a DNS name, which --hosts needs for the "
         "hosts files; name it like sensor-1.example.test (letters, digits, hyphens, dots)"),
        (["cm.contoso.test", "crl.contoso.test"],
         "appliance 'crl.contoso.test': has the name of the run's CRL host; rename the appliance"),
        (["cm.contoso.test", "CM.contoso.test"],
         "appliance 'CM.contoso.test': is named twice; give each its own name"),
        ([f"s{n}.test" for n in range(253)],
         "253 hosts: do not fit one /24 of --hosts; run at most 252, or add --workers N to put "
         "a shard of appliances on each host"),
    ],
)
def test_names_a_hosts_file_cannot_carry_are_one_line(names, line):
    with pytest.raises(InputError) as info:
        plan_hosts(names, run_id="000000")
    assert info.value.line() == line


def test_the_proxy_hosts_name_is_taken_only_when_the_run_has_a_proxy():
    names = ["cm.contoso.test", "proxy.contoso.test"]
    assert plan_hosts(names, run_id="000000").proxy is None
    with pytest.raises(InputError) as info:
        plan_hosts(names, run_id="000000", proxy=True)
    assert info.value.line() == ("appliance 'proxy.contoso.test': has the name of the run's "
                                 "CRL proxy host; rename the appliance")


def test_the_proxy_host_is_the_last_address_and_in_every_hosts_file():
    plan = plan_hosts(["cm.contoso.test"], run_id="0a1b2c", proxy=True)
    assert plan.proxy is not None
    assert (plan.proxy.name, str(plan.proxy.address), plan.proxy.namespace) == (
        "proxy.contoso.test", "10.213.44.254", "mesh-0a1b2c-px")
    assert plan.namespaces[-1] == "mesh-0a1b2c-px"
    assert "10.213.44.254\tproxy.contoso.test" in plan.hosts_file()
    assert plan_hosts(["cm.contoso.test"], run_id="0a1b2c").proxy is None


def test_a_port_name_fits_linux_limit_for_the_largest_plan():
    plan = plan_hosts([f"s{n}.test" for n in range(netns.MAX_HOSTS)], run_id="abcdef", proxy=True)
    assert max(len(h.port) for h in plan.hosts) == 15
    assert len({h.port for h in plan.hosts}) == netns.MAX_HOSTS + 2  # and the CRL and proxy hosts


@needs_root
async def test_the_namespaces_reach_each_other_by_name_and_leave_nothing(tmp_path):
    import sys

    import trio

    plan = plan_hosts(NAMES[:2], run_id=netns.new_run_id())
    listener, dialer = plan.appliances
    try:
        await netns.create(plan)
        script = (
            "import socket\n"
            f"s = socket.create_server(('{listener.address}', 8443))\n"
            "print('listening', flush=True)\n"
            "c, _ = s.accept(); c.sendall(b'hello'); c.close()\n"
        )
        async with trio.open_nursery() as nursery:
            server = await trio.lowlevel.open_process(
                ["ip", "netns", "exec", listener.namespace, sys.executable, "-c", script],
                stdout=-1,
            )
            assert (await server.stdout.receive_some()).startswith(b"listening")
            dial = (
                "import socket\n"
                "print(socket.create_connection(('cm.contoso.test', 8443), timeout=5).recv(5))\n"
                "import socket as s; print(s.gethostbyname('crl.contoso.test'))\n"
            )
            done = await trio.run_process(
                ["ip", "netns", "exec", dialer.namespace, sys.executable, "-c", dial],
                capture_stdout=True,
            )
            assert done.stdout.decode().split() == ["b'hello'", str(plan.crl.address)]
            await server.wait()
            nursery.cancel_scope.cancel()
        # the machine's own namespace sees no link of the run
        links = await netns.ip("link")
        assert plan.prefix not in links and "10.213." not in await netns.ip("addr")
    finally:
        removed = await netns.destroy(plan)
    assert f"network namespace {plan.switch}" in removed
    assert not any(plan.prefix in ns for ns in await netns.leftovers())
    assert not (netns.ETC_NETNS / plan.switch).exists()


@needs_root
async def test_a_failing_ip_command_is_one_line_naming_it():
    plan = plan_hosts(NAMES[:1], run_id=netns.new_run_id())
    await netns.ip("netns", "add", plan.switch)  # taken before the run makes it
    try:
        with pytest.raises(InputError) as info:
            await netns.create(plan)
        line = info.value.line()
        assert line.startswith(f"ip netns add {plan.switch}: failed (")
        assert line.endswith("; `mesh hosts clean` removes what a run left")
        assert "\n" not in line
    finally:
        await netns.destroy(plan)

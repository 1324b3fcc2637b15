"""Scenario files -> model, and every kind of bad file -> exact one-line errors."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from mesh.scenario.load import ScenarioInvalid, load_scenario, loads_scenario
from mesh.scenario.model import parse_duration

GOOD = """
[scenario]
name = "revoked-sensor"
description = "A revoked sensor certificate halts its link to the console."
start = 2027-01-15T09:00:00Z

[pki]
root = "Contoso Root CA"
intermediate = "Contoso Issuing CA"
key_size = 2048

[[appliance]]
name = "cm.contoso.test"
role = "management-console"
connects_to = ["ha.contoso.test"]
forwards_to = ["siem.contoso.test"]

[[appliance]]
name = "ha.contoso.test"
role = "ha-console"

[[appliance]]
name = "siem.contoso.test"
role = "forwarding-target"
certificate = "expired"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]
certificate = "revoked"
validation = false

[[step]]
after = "90d"
action = "revoke"
target = "sensor-1.contoso.test"

[[step]]
action = "set-validation"
target = "cm.contoso.test"
enabled = false

[[step]]
action = "upload"
target = "sensor-1.contoso.test"
certificate = "wrong-passphrase"

[[expect]]
link = "sensor-1.contoso.test -> cm.contoso.test"
state = "halted"
code = "revoked"
after_step = 1

[[expect]]
upload_step = 3
verdict = "refused"
code = "passphrase-mismatch"
"""


def test_a_good_file_loads_into_the_model():
    s = loads_scenario(GOOD, source="revoked.toml")
    assert s.name == "revoked-sensor"
    assert s.start == dt.datetime(2027, 1, 15, 9, 0, tzinfo=dt.timezone.utc)
    assert s.pki.intermediate == "Contoso Issuing CA"
    assert [a.name for a in s.appliances][:2] == ["cm.contoso.test", "ha.contoso.test"]
    assert s.appliance("sensor-1.contoso.test").validation is False
    assert s.appliance("siem.contoso.test").certificate == "expired"
    assert s.links() == [
        ("cm.contoso.test", "ha.contoso.test"),
        ("cm.contoso.test", "siem.contoso.test"),
        ("sensor-1.contoso.test", "cm.contoso.test"),
    ]
    assert s.steps[0].after == dt.timedelta(days=90)
    assert s.steps[1].enabled is False
    assert s.expectations[0].due == 1
    assert s.expectations[0].expected == "halted/revoked"
    # Codes may be written with dashes, as fault recipes are; they are stored as codes.
    assert s.expectations[1].code == "passphrase_mismatch"
    assert s.expectations[1].expected == "refused/passphrase_mismatch"


def test_defaults_name_from_the_file_and_start(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('[[appliance]]\nname = "a.test"\nrole = "sensor"\n')
    s = load_scenario(path)
    assert s.name == "tiny"
    assert s.start.year == 2027
    assert s.pki.key_size == 2048
    assert s.steps == () and s.expectations == ()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("90d", dt.timedelta(days=90)),
        ("12h", dt.timedelta(hours=12)),
        ("30m", dt.timedelta(minutes=30)),
        ("1y", dt.timedelta(days=365)),
        ("2w", dt.timedelta(weeks=2)),
        ("45s", dt.timedelta(seconds=45)),
        ("1d12h", dt.timedelta(days=1, hours=12)),
        ("0s", dt.timedelta()),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "90x", "1.5d", "-3d", "3d garbage"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


BASE = """
[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]
"""

CASES = [
    # (id, extra toml appended to BASE, exact error lines)
    (
        "bad-role",
        '[[appliance]]\nname = "s2.contoso.test"\nrole = "sensr"\n',
        ["bad.toml: appliance[3].role: 'sensr' is not a role; use one of sensor, "
         "management-console, ha-console, forwarding-target"],
    ),
    (
        "unknown-key-with-hint",
        '[[appliance]]\nname = "s2.contoso.test"\nrole = "sensor"\nconnect_to = ["cm.contoso.test"]\n',
        ["bad.toml: appliance[3].connect_to: unknown key; did you mean 'connects_to'? use one of "
         "name, role, certificate, validation, connects_to, forwards_to, crl_proxy, revocation, validator, trust, crl_files, "
         "valid_for, count, api"],
    ),
    (
        "trust-names-no-root",
        '[[appliance]]\nname = "s2.contoso.test"\nrole = "sensor"\ntrust = ["Fabrikam Root"]\n',
        ["bad.toml: appliance[3].trust[1]: 'Fabrikam Root' is not a root CA of [pki]; use "
         "'Mesh Root CA'"],
    ),
    (
        "unknown-top-level",
        '[sceanrio]\nname = "x"\n',
        ["bad.toml: sceanrio: unknown key; did you mean 'scenario'? use one of "
         "scenario, pki, appliance, block, step, expect"],
    ),
    (
        "missing-role",
        '[[appliance]]\nname = "s2.contoso.test"\n',
        ['bad.toml: appliance[3].role: missing; add role = "sensor"'],
    ),
    (
        "bad-certificate-recipe",
        '[[appliance]]\nname = "s2.contoso.test"\nrole = "sensor"\ncertificate = "expird"\n',
        ["bad.toml: appliance[3].certificate: 'expird' is not a certificate recipe; use one of "
         "ca-signed, self-signed, expired, not-yet-valid, revoked, untrusted, missing-intermediate, "
         "no-cdp, crl-unreachable, weak-key, sha1, missing-subject-fields, key-mismatch, "
         "wrong-passphrase, expired-intermediate, revoked-intermediate"],
    ),
    (
        "validation-as-string",
        '[[appliance]]\nname = "s2.contoso.test"\nrole = "sensor"\nvalidation = "no"\n',
        ["bad.toml: appliance[3].validation: 'no' is not true or false; write true or false (no quotes)"],
    ),
    (
        "unknown-peer",
        '[[appliance]]\nname = "s2.contoso.test"\nrole = "sensor"\nconnects_to = ["cm.contoso.tst"]\n',
        ["bad.toml: appliance[3].connects_to[1]: 'cm.contoso.tst' is not an appliance; "
         "did you mean 'cm.contoso.test'? use one of cm.contoso.test, sensor-1.contoso.test, "
         "s2.contoso.test"],
    ),
    (
        "duplicate-name",
        '[[appliance]]\nname = "cm.contoso.test"\nrole = "ha-console"\n',
        ["bad.toml: appliance[3].name: 'cm.contoso.test' is already used by another appliance; "
         "give every appliance its own name"],
    ),
    (
        "forward-to-a-console",
        '[[appliance]]\nname = "s2.contoso.test"\nrole = "sensor"\nforwards_to = ["cm.contoso.test"]\n',
        ["bad.toml: appliance[3].forwards_to[1]: 'cm.contoso.test' is a management-console, not a "
         "forwarding-target; forward only to forwarding-target appliances, or use connects_to"],
    ),
    (
        "key-size",
        "[pki]\nkey_size = 1024\n",
        ["bad.toml: pki.key_size: 1024 is not a supported RSA key size; use 2048 or 4096"],
    ),
    (
        "start-without-zone",
        "[scenario]\nstart = 2027-01-15T09:00:00\n",
        ["bad.toml: scenario.start: 2027-01-15T09:00:00 has no time zone; end it with Z for UTC"],
    ),
    (
        "bad-duration",
        '[[step]]\nafter = "90x"\naction = "advance"\n',
        ['bad.toml: step[1].after: \'90x\' is not a duration; write it like "90d", "12h", '
         '"30m", "45s" or "1y"'],
    ),
    (
        "bad-action",
        '[[step]]\naction = "revokee"\ntarget = "cm.contoso.test"\n',
        ["bad.toml: step[1].action: 'revokee' is not an action; use one of advance, revoke, "
         "upload, set-validation, crl-down, crl-up, crl-slow, crl-garbage, stop, start, block, unblock, partition, heal, loss, bandwidth"],
    ),
    (
        "step-target-unknown",
        '[[step]]\naction = "revoke"\ntarget = "sensor-9.contoso.test"\n',
        ["bad.toml: step[1].target: 'sensor-9.contoso.test' is not an appliance; did you mean "
         "'sensor-1.contoso.test'? use one of cm.contoso.test, sensor-1.contoso.test"],
    ),
    (
        "step-target-missing",
        '[[step]]\naction = "stop"\n',
        ["bad.toml: step[1].target: 'stop' needs a target; add target = 'cm.contoso.test'"],
    ),
    (
        "set-validation-without-enabled",
        '[[step]]\naction = "set-validation"\ntarget = "cm.contoso.test"\n',
        ["bad.toml: step[1].enabled: set-validation needs enabled; add enabled = true or enabled = false"],
    ),
    (
        "expect-link-not-declared",
        '[[expect]]\nlink = "cm.contoso.test -> sensor-1.contoso.test"\nstate = "up"\n',
        ["bad.toml: expect[1].link: 'sensor-1.contoso.test' is the one that dials this pair; "
         "write it as 'sensor-1.contoso.test -> cm.contoso.test'"],
    ),
    (
        "expect-link-nobody-dials",
        '[[appliance]]\nname = "s2.contoso.test"\nrole = "sensor"\n'
        '[[expect]]\nlink = "s2.contoso.test -> cm.contoso.test"\nstate = "up"\n',
        ["bad.toml: expect[1].link: no appliance dials 's2.contoso.test -> cm.contoso.test'; "
         "add 'cm.contoso.test' to connects_to or forwards_to of 's2.contoso.test'"],
    ),
    (
        "expect-link-shape",
        '[[expect]]\nlink = "cm.contoso.test sensor-1.contoso.test"\nstate = "up"\n',
        ["bad.toml: expect[1].link: 'cm.contoso.test sensor-1.contoso.test' is not a link; "
         'write it as "DIALER -> LISTENER"'],
    ),
    (
        "expect-bad-state-and-step",
        '[[expect]]\nlink = "sensor-1.contoso.test -> cm.contoso.test"\nstate = "broken"\nafter_step = 2\n',
        ["bad.toml: expect[1].state: 'broken' is not a link state; use one of up, "
         "up-unvalidated, halted, down, connecting",
         "bad.toml: expect[1].after_step: there is no step 2; use 0 (after start) to 0"],
    ),
    (
        "expect-code-on-up-link",
        '[[expect]]\nlink = "sensor-1.contoso.test -> cm.contoso.test"\nstate = "up"\ncode = "revoked"\n',
        ["bad.toml: expect[1].code: a link that is 'up' has no code; remove code, or expect "
         'state = "halted"'],
    ),
    (
        "expect-bad-mode",
        '[[expect]]\nlink = "sensor-1.contoso.test -> cm.contoso.test"\nstate = "up"\nmode = "both"\n',
        ["bad.toml: expect[1].mode: 'both' is not a validation run; use one of on, off"],
    ),
    (
        "expect-upload-of-a-non-upload-step",
        '[[step]]\naction = "crl-down"\n[[expect]]\nupload_step = 1\nverdict = "accepted"\n',
        ["bad.toml: expect[1].upload_step: step 1 is a 'crl-down', not an upload; "
         "name the number of an upload step"],
    ),
    (
        "appliance-as-single-table",
        None,
        ["bad.toml: appliance: a single table where a list of tables is needed; "
         "write [[appliance]] (double brackets) for each appliance"],
    ),
    (
        "toml-syntax",
        "[[step]\naction = 1\n",
        ["bad.toml: line 10, column 7: expected ']]' at the end of an array declaration; "
         "fix the TOML syntax there"],
    ),
]


@pytest.mark.parametrize("extra, lines", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_scenarios_give_exact_lines(extra, lines):
    text = '[appliance]\nname = "a.test"\nrole = "sensor"\n' if extra is None else BASE + extra
    with pytest.raises(ScenarioInvalid) as info:
        loads_scenario(text, source="bad.toml")
    assert info.value.lines() == lines


def test_every_problem_of_a_file_is_reported_in_file_order():
    text = textwrap.dedent(
        """
        [pki]
        key_size = 3000

        [[appliance]]
        name = "sensor-1.contoso.test"
        role = "sensr"
        connects_to = ["cm.contoso.test"]
        colour = "red"

        [[step]]
        after = "soon"
        action = "revoke"
        target = "sensor-2.contoso.test"
        """
    )
    with pytest.raises(ScenarioInvalid) as info:
        loads_scenario(text, source="revoked.toml")
    assert [line.split(": ")[1] for line in info.value.lines()] == [
        "pki.key_size",
        "appliance[1].role",
        "appliance[1].colour",
        "appliance[1].connects_to[1]",
        "step[1].after",
        "step[1].target",
    ]


def test_a_large_topology_never_lists_every_name():
    sensors = "".join(
        f'[[appliance]]\nname = "s{i}.test"\nrole = "sensor"\nconnects_to = ["cm.test"]\n'
        for i in range(200)
    )
    text = '[[appliance]]\nname = "cm.test"\nrole = "management-console"\n' + sensors
    text += '[[step]]\naction = "revoke"\ntarget = "nobody.example"\n'
    with pytest.raises(ScenarioInvalid) as info:
        loads_scenario(text, source="big.toml")
    assert info.value.lines() == [
        "big.toml: step[1].target: 'nobody.example' is not an appliance; "
        "use the name of one of the 201 appliances"
    ]


@pytest.mark.parametrize(
    "make, line",
    [
        (lambda p: p / "nope.toml", "nope.toml: no such file; check the path"),
        (lambda p: p, "is a folder, not a scenario file; name a .toml file inside it"),
        (lambda p: (p / "bin.toml").write_bytes(b"\xff\xfe\x00") and p / "bin.toml",
         "bin.toml: is not UTF-8 text; save it as a UTF-8 TOML file"),
    ],
)
def test_unreadable_files(tmp_path, make, line):
    path = make(tmp_path)
    with pytest.raises(ScenarioInvalid) as info:
        load_scenario(path)
    assert info.value.lines()[0].endswith(line)


def test_a_pair_that_names_each_other_is_one_link_dialled_by_the_lower_role():
    text = """
    [[appliance]]
    name = "ha.test"
    role = "ha-console"
    connects_to = ["cm.test"]

    [[appliance]]
    name = "cm.test"
    role = "management-console"
    connects_to = ["ha.test"]

    [[expect]]
    link = "ha.test -> cm.test"
    state = "up"
    """
    with pytest.raises(ScenarioInvalid) as info:
        loads_scenario(textwrap.dedent(text), source="pair.toml")
    assert info.value.lines() == [
        "pair.toml: expect[1].link: 'cm.test' is the one that dials this pair; "
        "write it as 'cm.test -> ha.test'"
    ]
    s = loads_scenario(textwrap.dedent(text).replace('"ha.test -> cm.test"', '"cm.test -> ha.test"'))
    assert s.links() == [("cm.test", "ha.test")]


def test_count_expands_one_table_into_numbered_appliances():
    text = """
    [[appliance]]
    name = "cm.test"
    role = "management-console"

    [[appliance]]
    name = "sensor-{n}.test"
    role = "sensor"
    count = 200
    connects_to = ["cm.test"]

    [[expect]]
    link = "sensor-200.test -> cm.test"
    state = "up"
    """
    s = loads_scenario(textwrap.dedent(text))
    assert len(s.appliances) == 201
    assert s.appliances[1].name == "sensor-1.test" and s.appliances[-1].name == "sensor-200.test"
    assert len(s.links()) == 200


@pytest.mark.parametrize(
    "table, line",
    [
        ('name = "sensor.test"\nrole = "sensor"\ncount = 3\n',
         "c.toml: appliance[1].count: needs {n} in the name to number the appliances; "
         'write name = "sensor-{n}.contoso.test"'),
        ('name = "sensor-{n}.test"\nrole = "sensor"\n',
         "c.toml: appliance[1].name: has {n} but no count; add count = N for N appliances, "
         "or write the name out"),
        ('name = "sensor-{n}.test"\nrole = "sensor"\ncount = 100000\n',
         "c.toml: appliance[1].count: 100000 is more appliances than one run can hold; "
         "use at most 20000"),
        ('name = "sensor-{n}.test"\nrole = "sensor"\ncount = 50\nconnects_to = ["cm.tset"]\n',
         "c.toml: appliance[1].connects_to[1]: 'cm.tset' is not an appliance; "
         "use the name of one of the 50 appliances"),
    ],
)
def test_count_problems_are_reported_once(table, line):
    with pytest.raises(ScenarioInvalid) as info:
        loads_scenario("[[appliance]]\n" + table, source="c.toml")
    assert info.value.lines() == [line]


def test_an_expectation_names_the_run_it_is_judged_in():
    scenario = loads_scenario(BASE + """
[[expect]]
link = "sensor-1.contoso.test -> cm.contoso.test"
state = "up"

[[expect]]
link = "sensor-1.contoso.test -> cm.contoso.test"
state = "up-unvalidated"
mode = "off"
""", source="modes.toml")
    assert [e.mode for e in scenario.expectations] == ["on", "off"]


def test_a_block_table_is_a_firewall_rule_in_force_from_the_start():
    text = GOOD + '\n[[block]]\nfrom = "sensor-1.contoso.test"\nto = "crl"\nport = 80\n' \
        '\n[[block]]\nfrom = "*"\nto = "ha.contoso.test"\ndrop = true\n'
    blocks = loads_scenario(text, source="revoked.toml").blocks
    assert [b.describe() for b in blocks] == [
        "sensor-1.contoso.test -> crl:80 (refused)",
        "* -> ha.contoso.test (dropped)",
    ]


@pytest.mark.parametrize("table, line", [
    ('from = "sensor-9.contoso.test"\nto = "crl"',
     "bad.toml: block[1].from: 'sensor-9.contoso.test' is not an appliance or a network host; "
     "did you mean 'sensor-1.contoso.test'?"),
    ('from = "crl"\nto = "crl"', "bad.toml: block[1].to: a host cannot be blocked from itself; "
     "name another host"),
    ('from = "crl"\nto = "cm.contoso.test"\nport = 0',
     "bad.toml: block[1].port: 0 is not a port; use a number from 1 to 65535, like 80"),
    ('to = "crl"', 'bad.toml: block[1].from: missing; add from = "sensor-2.contoso.test"'),
])
def test_bad_blocks_give_exact_lines(table, line):
    with pytest.raises(ScenarioInvalid) as info:
        loads_scenario(GOOD + "\n[[block]]\n" + table + "\n", source="bad.toml")
    assert info.value.lines() == [line]


def test_network_steps_load_with_their_keys():
    steps = loads_scenario(GOOD + """
[[step]]
action = "block"
from = "sensor-1.contoso.test"
to = "crl"
port = 80
drop = true

[[step]]
action = "unblock"
from = "sensor-1.contoso.test"
to = "crl"
port = 80

[[step]]
action = "partition"
between = [["sensor-1.contoso.test"], ["cm.contoso.test", "crl"]]

[[step]]
action = "heal"

[[step]]
action = "loss"
target = "proxy"
percent = 30

[[step]]
action = "bandwidth"
target = "crl"
rate = "2.5Mbit"
""", source="net.toml").steps[3:]  # after GOOD's three
    assert [s.describe() for s in steps] == [
        "+0s block sensor-1.contoso.test -> crl:80 (dropped)",
        "+0s unblock sensor-1.contoso.test -> crl:80",
        "+0s partition sensor-1.contoso.test | cm.contoso.test, crl",
        "+0s heal",
        "+0s loss proxy 30%",
        "+0s bandwidth crl 2.5mbit",
    ]
    assert steps[2].between == (("sensor-1.contoso.test",), ("cm.contoso.test", "crl"))
    assert all(s.action.network for s in steps)


@pytest.mark.parametrize("step, line", [
    ('action = "block"\nto = "crl"',
     "bad.toml: step[4].from: 'block' needs from; add from = \"sensor-1.contoso.test\""),
    ('action = "block"\nfrom = "crl"\nto = "crl"',
     "bad.toml: step[4].to: a host cannot be blocked from itself; name another host"),
    ('action = "unblock"\nfrom = "crl"\nto = "cm.contoso.test"\ndrop = true',
     "bad.toml: step[4].drop: 'unblock' takes no drop; remove drop"),
    ('action = "partition"\nbetween = [["cm.contoso.test"]]',
     "bad.toml: step[4].between: a partition needs two groups of hosts or more; "
     'write between = [["a"], ["b", "c"]]'),
    ('action = "partition"\nbetween = [["cm.contoso.test"], ["cm.contoso.test"]]',
     "bad.toml: step[4].between[2]: 'cm.contoso.test' is in two groups; name each host in one group"),
    ('action = "partition"\nbetween = [["cm.contoso.test"], ["*"]]',
     "bad.toml: step[4].between[2]: '*' is not a host; use one of cm.contoso.test, "
     "ha.contoso.test, siem.contoso.test, sensor-1.contoso.test, crl, proxy"),
    ('action = "partition"\nbetween = "cm.contoso.test"',
     "bad.toml: step[4].between: a string where groups of host names are needed; write it like "
     '[["sensor-1.contoso.test"], ["cm.contoso.test", "crl"]]'),
    ('action = "loss"\ntarget = "crl"\npercent = 101',
     "bad.toml: step[4].percent: 101 is not a percentage; write a whole number from 0 to 100, like 30"),
    ('action = "loss"\npercent = 10',
     "bad.toml: step[4].target: 'loss' needs target; add target = \"crl\""),
    ('action = "bandwidth"\ntarget = "crl"\nrate = "fast"',
     "bad.toml: step[4].rate: 'fast' is not a rate; write it like \"1mbit\", \"512kbit\" or "
     "\"off\" (no limit)"),
    ('action = "heal"\ntarget = "crl"', "bad.toml: step[4].target: 'heal' takes no target; remove target"),
    ('action = "revoke"\ntarget = "cm.contoso.test"\nport = 80',
     "bad.toml: step[4].port: 'revoke' takes no port; remove port"),
])
def test_bad_network_steps_give_exact_lines(step, line):
    with pytest.raises(ScenarioInvalid) as info:
        loads_scenario(GOOD + "\n[[step]]\n" + step + "\n", source="bad.toml")
    assert info.value.lines() == [line]


def test_a_down_link_may_be_expected_down_for_a_network_reason_only():
    scenario = loads_scenario(GOOD + """
[[expect]]
link = "sensor-1.contoso.test -> cm.contoso.test"
state = "down"
reason = "network: blocked"
""", source="why.toml")
    assert scenario.expectations[-1].expected == "down (network: blocked)"
    with pytest.raises(ScenarioInvalid) as info:
        loads_scenario(GOOD + """
[[expect]]
link = "sensor-1.contoso.test -> cm.contoso.test"
state = "halted"
reason = "network: fire"
""", source="why.toml")
    assert info.value.lines() == [
        "why.toml: expect[3].reason: 'network: fire' is not a network reason; use one of "
        "network: blocked, network: partitioned, network: loss",
    ]

"""Scenario consoles: ``api`` keys in files, served during a run, URLs printed at start."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import httpx
import pytest

from mesh.cli import main
from mesh.scenario.load import ScenarioInvalid, loads_scenario
from mesh.scenario.model import ApplianceDef, Scenario, Step

CM = "cm.contoso.test"
S1 = "sensor-1.contoso.test"
S2 = "sensor-2.contoso.test"
SIEM = "siem.contoso.test"

TOPOLOGY = f"""
[[appliance]]
name = "{CM}"
role = "management-console"
forwards_to = ["{SIEM}"]

[[appliance]]
name = "{S1}"
role = "sensor"
connects_to = ["{CM}"]

[[appliance]]
name = "{S2}"
role = "sensor"
connects_to = ["{CM}"]

[[appliance]]
name = "{SIEM}"
role = "forwarding-target"
"""


def _with(text: str, **appliance_api: bool) -> str:
    """TOPOLOGY with ``api = ...`` added to the named appliance's table."""
    for name, value in appliance_api.items():
        marker = f'name = "{name}"\n'
        text = text.replace(marker, f"{marker}api = {'true' if value else 'false'}\n")
    return text


# -- the keys --


def test_no_consoles_unless_asked():
    assert loads_scenario(TOPOLOGY).consoles() == []


def test_scenario_api_serves_every_sensor_and_console_not_forwarding_targets():
    scenario = loads_scenario("[scenario]\napi = true\n" + TOPOLOGY)
    assert scenario.api is True
    assert scenario.consoles() == [CM, S1, S2]


def test_an_appliance_turns_its_own_on_or_off():
    assert loads_scenario(_with(TOPOLOGY, **{S1: True})).consoles() == [S1]
    scenario = loads_scenario("[scenario]\napi = true\n" + _with(TOPOLOGY, **{S2: False}))
    assert scenario.consoles() == [CM, S1]
    # A forwarding target may say false (it has none anyway).
    assert loads_scenario(_with(TOPOLOGY, **{SIEM: False})).consoles() == []


def test_scenarios_built_in_python_say_the_same():
    scenario = Scenario(
        name="py", api=True,
        appliances=[ApplianceDef(name=CM, role="management-console"),
                    ApplianceDef(name=S1, role="sensor", connects_to=[CM], api=False)],
    )
    assert scenario.consoles() == [CM]


@pytest.mark.parametrize(
    "text, line",
    [
        ('[scenario]\napi = "yes"\n' + TOPOLOGY,
         "<scenario>: scenario.api: 'yes' is not true or false; write true or false (no quotes)"),
        (TOPOLOGY.replace('role = "sensor"\n', 'role = "sensor"\napi = 1\n', 1),
         "<scenario>: appliance[2].api: 1 is not true or false; write true or false (no quotes)"),
        (_with(TOPOLOGY, **{SIEM: True}),
         "<scenario>: appliance[4].api: a forwarding-target has no REST API; "
         "remove api (sensors and consoles serve one)"),
        ("[scenario]\napis = true\n" + TOPOLOGY,
         "<scenario>: scenario.apis: unknown key; did you mean 'api'? "
         "use one of name, description, start, api"),
    ],
    ids=["scenario-api", "appliance-api", "forwarding-target", "unknown-key"],
)
def test_bad_api_keys_are_one_line_each(text, line):
    with pytest.raises(ScenarioInvalid) as info:
        loads_scenario(text)
    assert info.value.lines() == [line]


def test_mesh_check_accepts_the_keys_and_names_a_bad_one(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text("[scenario]\napi = true\n" + _with(TOPOLOGY, **{S2: False}))
    assert main(["check", str(good)]) == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(_with(TOPOLOGY, **{SIEM: True}))
    assert main(["check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"mesh: {bad}: appliance[4].api: a forwarding-target has no REST "
                                "API; remove api (sensors and consoles serve one)"]


# -- served during a run --


async def _status(url: str) -> dict:
    # The scenario's certificates are dated on its emulated clock (2027):
    # trust is not the point here, the appliance's TLS and its answers are.
    async with httpx.AsyncClient(verify=False, timeout=10) as client:
        answer = await client.get(f"{url}/api/v1/status")
    assert answer.status_code == 200
    return answer.json()


def _link(status: dict, name: str) -> dict:
    return next(link for link in status["links"] if link["name"] == name)


async def test_consoles_serve_status_while_the_timeline_plays(mesh_start):
    source = _with(TOPOLOGY, **{CM: True, S1: True})
    async with mesh_start(source) as run:
        assert list(run.consoles) == [CM, S1]
        listening = [e for e in run.events if e.kind == "api-listening"]
        assert [(e.appliance, e.role, e.url) for e in listening] == [
            (CM, "management-console", run.consoles[CM]), (S1, "sensor", run.consoles[S1]),
        ]
        status = await _status(run.consoles[S1])
        assert status["appliance"] == {"name": S1, "role": "sensor"}
        assert _link(status, f"{S1} -> {CM}")["state"] == "up"

        await run.step(Step(action="revoke", target=S1))
        console = await _status(run.consoles[CM])
        halted = _link(console, f"{S1} -> {CM}")
        assert (halted["state"], halted["code"]) == ("halted", "revoked")
        assert _link(console, f"{S2} -> {CM}")["state"] == "up"
        # The console's graph shows the whole mesh.
        assert console["roles"][SIEM] == "forwarding-target"


def test_mesh_run_prints_the_urls_at_start(tmp_path, capsys):
    path = tmp_path / "api.toml"
    path.write_text("[scenario]\nname = \"api\"\napi = true\n" + TOPOLOGY)
    assert main(["run", "--quiet", str(path)]) == 0
    err = capsys.readouterr().err.splitlines()
    lines = [line for line in err if "console of" in line]
    assert [line.split(": https://127.0.0.1:")[0] for line in lines] == [
        f"[api] console of {CM} (management-console)",
        f"[api] console of {S1} (sensor)",
        f"[api] console of {S2} (sensor)",
    ]
    urls = [line.split(": ", 1)[1].split(" (token in ")[0] for line in lines]
    assert all(url.endswith("/") for url in urls)
    # Each names its token file, all in one private folder of the run.
    files = [Path(line.split(" (token in ", 1)[1].removesuffix(")")) for line in lines]
    assert [f.name for f in files] == [f"{CM}.api-token", f"{S1}.api-token", f"{S2}.api-token"]
    assert len({f.parent for f in files}) == 1


@pytest.mark.slow
async def test_processes_serve_the_consoles_on_ports_kept_across_steps(key_pool):
    from mesh.scenario.processes import run_in_processes

    scenario = loads_scenario(
        _with(TOPOLOGY, **{S1: True})
        + f'[[step]]\nafter = "1d"\naction = "revoke"\ntarget = "{S1}"\n'
    )
    answers: dict[str, dict] = {}

    def progress(kind, record, fleet):
        if kind in ("started", "step"):
            assert list(fleet.consoles) == [S1]
            # The node is its own process: a blocking curl here does not stall it.
            result = subprocess.run(
                ["curl", "-k", "--silent", "--show-error", "--max-time", "10",
                 f"{fleet.consoles[S1]}/api/v1/status"],
                capture_output=True, text=True, check=False,
            )
            assert result.returncode == 0, result.stderr
            answers[kind] = json.loads(result.stdout)
            # The node writes its token beside its config; a change without it is refused.
            token_file = Path(fleet.console_tokens[S1])
            assert token_file.stat().st_mode & 0o777 == 0o600
            refused = subprocess.run(
                ["curl", "-k", "--silent", "--show-error", "--max-time", "10", "-X", "POST",
                 f"{fleet.consoles[S1]}/api/v1/crls/refresh"],
                capture_output=True, text=True, check=False,
            )
            assert json.loads(refused.stdout)["code"] == "unauthorized"

    sink = io.StringIO()
    await run_in_processes(scenario, keys=key_pool.cursor(), sink=sink, progress=progress)
    assert _link(answers["started"], f"{S1} -> {CM}")["state"] == "up"
    after = _link(answers["step"], f"{S1} -> {CM}")
    assert (after["state"], after["code"]) == ("halted", "revoked")
    urls = [json.loads(line)["url"] for line in sink.getvalue().splitlines()
            if json.loads(line)["kind"] == "api-listening" and json.loads(line)["appliance"] == S1]
    assert len(urls) == 1  # the node starts once: one console, one port, for the whole run


async def test_the_live_view_prints_the_urls_first(keys):
    from mesh.scenario.live import run_live

    out = io.StringIO()
    result = await run_live(loads_scenario(_with(TOPOLOGY, **{CM: True})), pace=0, file=out,
                            keys=keys)
    assert result.ok
    first = out.getvalue().splitlines()[0]
    assert first.startswith(f"console of {CM} (management-console): https://127.0.0.1:")


async def test_a_runs_consoles_need_their_tokens_which_never_leak(mesh_start):
    """Each console of a run has its own token, in a private folder that goes
    with the run; a change without it is refused and recorded, and the token
    is in no event, log line or report."""
    import stat
    from pathlib import Path

    from mesh.scenario.report import render_plain

    source = _with(TOPOLOGY, **{CM: True, S1: True})
    async with mesh_start(source) as run:
        listening = {e.appliance: e for e in run.events if e.kind == "api-listening"}
        files = {name: Path(e.token_file) for name, e in listening.items()}
        folder = files[CM].parent
        assert files == {CM: folder / f"{CM}.api-token", S1: folder / f"{S1}.api-token"}
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files.values())
        tokens = {name: f.read_text().strip() for name, f in files.items()}
        assert tokens[CM] != tokens[S1]

        async with httpx.AsyncClient(base_url=run.consoles[CM], verify=False, timeout=10) as client:
            refused = await client.put("/api/v1/validation", json={"enabled": False})
            other = await client.put("/api/v1/validation", json={"enabled": False},
                                     headers={"Authorization": f"Bearer {tokens[S1]}"})
            assert run.mesh.appliance(CM).validation is True
            accepted = await client.put("/api/v1/validation", json={"enabled": False},
                                        headers={"Authorization": f"Bearer {tokens[CM]}"})
        assert (refused.status_code, other.status_code, accepted.status_code) == (401, 403, 200)
        assert run.mesh.appliance(CM).validation is False
        denied = [(e.appliance, e.method, e.path, e.reason) for e in run.events if e.kind == "api-denied"]
        assert denied == [(CM, "PUT", "/api/v1/validation", "no-credential"),
                          (CM, "PUT", "/api/v1/validation", "wrong-token")]
        result = run.result()
        outputs = "\n".join(e.to_json() + "\n" + e.log_line() for e in run.events)
        outputs += json.dumps(result.to_json()) + render_plain(result)
    for token in tokens.values():
        assert token not in outputs
    assert not folder.exists()  # gone with the run

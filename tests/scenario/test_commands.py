"""``mesh check`` and ``mesh run`` through ``mesh.cli.main``, in-process."""

from __future__ import annotations

from mesh.cli import main

GOOD = """
[[appliance]]
name = "cm.contoso.test"
role = "management-console"

[[appliance]]
name = "sensor-1.contoso.test"
role = "sensor"
connects_to = ["cm.contoso.test"]

[[expect]]
link = "sensor-1.contoso.test -> cm.contoso.test"
state = "up"
"""


def test_check_accepts_a_good_file(tmp_path, capsys):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {path}: good")
    assert "2 appliances, 1 links, 0 steps, 1 expectations" in out


def test_check_prints_every_problem_of_every_file_and_exits_2(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    bad = tmp_path / "revoked.toml"
    bad.write_text(GOOD.replace('role = "sensor"', 'role = "sensr"').replace('"up"', '"upp"'))
    assert main(["check", str(bad), str(good)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"mesh: {bad}: appliance[2].role: 'sensr' is not a role; use one of sensor, "
        "management-console, ha-console, forwarding-target",
        f"mesh: {bad}: expect[1].state: 'upp' is not a link state; use one of up, "
        "up-unvalidated, halted, down, connecting",
    ]
    assert f"ok: {good}" in captured.out
    assert "Traceback" not in captured.err


def test_check_missing_file(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err == f"mesh: {tmp_path / 'nope.toml'}: no such file; check the path\n"

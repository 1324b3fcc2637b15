"""``mesh.cli``: the whole tree parses and helps without loading the engine."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from mesh.cli import build_parser, handler, main

#: Every command and subcommand, in the order ``mesh --help`` lists them.
COMMANDS = [
    [],
    ["cert"],
    ["cert", "show"],
    ["cert", "lint"],
    ["cert", "convert"],
    ["cert", "check"],
    ["pki"],
    ["pki", "init"],
    ["pki", "revoke"],
    ["pki", "issue"],
    ["pki", "crl"],
    ["pki", "operator"],
    ["check"],
    ["run"],
    ["diff"],
    ["graph"],
    ["console"],
    ["hash-password"],
    ["crl"],
    ["crl", "serve"],
    ["crl", "proxy"],
    ["node"],
    ["hosts"],
    ["hosts", "clean"],
    ["export"],
    ["export", "kubernetes"],
]

HEAVY = ("trio", "OpenSSL", "cryptography", "pytest")


def _walk(parser: argparse.ArgumentParser, path: list[str]):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, [*path, name])


def _loaded_after(code: str, tmp_path) -> list[str]:
    """The heavy modules a fresh interpreter holds after running ``code``."""
    script = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    # cwd: a folder of our own, so no stray module in the caller's folder shadows one.
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_tree_holds_every_command():
    assert [path for path, _ in _walk(build_parser(), [])] == COMMANDS


def test_mesh_help_loads_no_trio_openssl_cryptography_or_pytest(tmp_path):
    code = (
        "from mesh.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
    )
    assert _loaded_after(code, tmp_path) == []


def test_no_command_help_loads_them_either(tmp_path):
    code = (
        "import contextlib, io\n"
        "from mesh.cli import main\n"
        f"for path in {COMMANDS!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main([*path, '--help'])\n"
        "        except SystemExit as exc:\n"
        "            assert exc.code == 0, (path, exc.code)\n"
    )
    assert _loaded_after(code, tmp_path) == []


def test_no_command_loads_pytest(tmp_path):
    handlers = sorted(
        parser.get_default("func")
        for _, parser in _walk(build_parser(), [])
        if isinstance(parser.get_default("func"), str)
    )
    code = f"from mesh.cli import handler\nfor name in {handlers!r}:\n    handler(name)\n"
    assert "pytest" not in _loaded_after(code, tmp_path)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(path) or "mesh")
def test_every_command_prints_its_help(path, capsys):
    with pytest.raises(SystemExit) as exit:
        main([*path, "--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(" ".join(["usage: mesh", *path]) + " ")


def test_every_handler_names_a_function():
    named = {
        " ".join(path): parser.get_default("func")
        for path, parser in _walk(build_parser(), [])
        if isinstance(parser.get_default("func"), str)
    }
    assert named == {
        "cert show": "mesh.pki.commands:_show",
        "cert lint": "mesh.pki.commands:_lint",
        "cert convert": "mesh.pki.commands:_convert",
        "cert check": "mesh.upload:_check_command",
        "pki init": "mesh.pki.commands:_init",
        "pki revoke": "mesh.pki.commands:_revoke",
        "pki issue": "mesh.pki.commands:_issue",
        "pki crl": "mesh.pki.commands:_crl",
        "pki operator": "mesh.pki.operator:_command",
        "check": "mesh.scenario.commands:check_command",
        "run": "mesh.scenario.commands:run_command",
        "diff": "mesh.scenario.diff:diff_command",
        "graph": "mesh.scenario.graph_command:graph_command",
        "console": "mesh.scenario.console_command:console_command",
        "hash-password": "mesh.password_hash:_command",
        "crl serve": "mesh.crl_service:serve_command",
        "crl proxy": "mesh.net.crl_commands:_proxy",
        "node": "mesh.node:_command",
        "hosts clean": "mesh.hosts.commands:clean_command",
        "export kubernetes": "mesh.export.commands:kubernetes_command",
    }
    for name in named.values():
        assert callable(handler(name)), name


def test_a_group_without_its_subcommand_prints_the_group_help_and_exits_2(capsys):
    assert main(["pki"]) == 2
    assert capsys.readouterr().err.startswith("usage: mesh pki [-h] SUBCOMMAND ...\n")


def test_no_command_prints_the_help_and_exits_2(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("usage: mesh [-h] COMMAND ...\n")

"""The import rules of docs/architecture.md, checked on the source.

Every import statement counts, at the top of a module or inside a function:
an import deferred to the one function that needs it is still a dependency of
the layer. ``tests/validation/test_purity.py`` checks the core at run time too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import mesh

ROOT = Path(mesh.__file__).parent

#: layer -> what its modules must not import.
FORBIDDEN = {
    "mesh.validation": (
        "trio", "mesh.net", "mesh.appliances", "mesh.scenario", "mesh.web", "mesh.pki",
    ),
    "mesh.net": ("mesh.appliances", "mesh.scenario", "mesh.web"),
    "mesh.appliances": ("mesh.scenario",),
    "mesh.web": ("mesh.scenario",),
    "mesh.graph": ("mesh.scenario",),  # the web console draws with it
    "mesh.hosts": ("mesh.appliances", "mesh.scenario", "mesh.web", "mesh.net"),
    "mesh.scenario": ("mesh.export",),
}

#: What the command-line parsers may import besides the standard library
#: (each of these imports nothing but the standard library itself).
CLI_ALLOWED = ("mesh.cli", "mesh.errors", "mesh.passphrase", "mesh.parent_watch")


def _modules(layer: str) -> list[Path]:
    folder = ROOT.joinpath(*layer.split(".")[1:])
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "mesh":  # from mesh import scenario
                found += [(node.lineno, f"mesh.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT.parent)}:{line}"


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_it_must_not(layer):
    wrong = [
        f"{_where(path, line)} imports {name}"
        for path in _modules(layer)
        for line, name in _imports(path)
        if _within(name, FORBIDDEN[layer])
    ]
    assert wrong == []


def test_the_parsers_import_only_the_standard_library_errors_and_passphrase():
    wrong = [
        f"{_where(path, line)} imports {name}"
        for path in _modules("mesh.cli")
        for line, name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names and not _within(name, CLI_ALLOWED)
    ]
    assert wrong == []


def test_the_rules_see_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from mesh import scenario\n    import trio.testing\n")
    assert _imports(module) == [(2, "mesh.scenario"), (3, "trio.testing")]

"""The roles, named once: the engine, the scenario model and `mesh pki` agree."""

from __future__ import annotations

import subprocess
import sys

from mesh.appliances.spec import Role as EngineRole
from mesh.pki import commands
from mesh.roles import ROLES, Role
from mesh.scenario import model


def test_every_module_uses_the_one_list_in_rank_order() -> None:
    assert EngineRole is Role
    assert ROLES == ("sensor", "management-console", "ha-console", "forwarding-target")
    assert model.ROLES is ROLES and commands.ROLES is ROLES
    assert [role.rank for role in Role] == [0, 1, 2, 3]


def test_naming_the_roles_loads_no_engine() -> None:
    code = "import sys, mesh.roles; print('trio' in sys.modules, 'OpenSSL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]

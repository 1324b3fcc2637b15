"""``mesh run --inventory FLEET.toml``: the file that says where a running fleet is.

The format (fixed; a Kubernetes export writes it too)::

    # FLEET.toml: appliances already running somewhere. Relative paths resolve against this file's folder.
    pki = "pki"                      # the PKI folder that revoke and upload steps draw on

    [operator]                       # optional: a mutual-TLS operator client credential, for every API
    certificate = "operator.crt"
    key = "operator.key"
    ca = "ca.crt"                    # optional: verify the APIs' certificates against this

    [crl]                            # the CRL server's control API (`mesh crl serve --api-port`)
    api = "https://crl-contoso-test:9443"
    token_file = "crl.token"         # or token_env = "MESH_TOKEN_CRL"

    [[node]]                         # one per appliance of the scenario
    name = "cm.contoso.test"
    api = "https://cm-contoso-test:9443"
    token_file = "cm.token"          # or token_env = "MESH_TOKEN_CM"

Every ``[[node]]`` needs ``name``, ``api`` and one credential (``token_file``,
``token_env``, or the ``[operator]`` table); so does ``[crl]``. Every problem
is one line naming the file and the key (:class:`~mesh.errors.InputError`),
the first one found. Token files are read when the inventory is loaded; a
token is never shown in a message.

:func:`check_inventory` then holds the inventory against a scenario: every
appliance with a console (sensors and management consoles; forwarding
targets have no API) must be listed, and a scenario that revokes, advances
the clock or switches CRL faults needs ``[crl]``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from attrs import define
from urllib.parse import urlsplit

from mesh.consoles import has_console
from mesh.errors import InputError
from mesh.scenario.fleet_client import Api, Operator
from mesh.scenario.model import Scenario

__all__ = ["Inventory", "check_inventory", "load_inventory"]

_TOP = ("pki", "operator", "crl", "node")
_OPERATOR = ("certificate", "key", "ca")
_CRL = ("api", "token_file", "token_env")
_NODE = ("name", "api", "token_file", "token_env")

#: The steps that need the CRL server's control API.
_CRL_STEPS = ("revoke", "advance", "crl-down", "crl-up", "crl-slow", "crl-garbage")


@define(frozen=True, kw_only=True)
class Inventory:
    """Where a running fleet is and how to reach it."""

    source: Path
    pki: Path
    operator: Operator | None
    crl: Api | None
    nodes: dict[str, Api]


def load_inventory(path: str | Path) -> Inventory:
    """Read FLEET.toml.

    Raises:
        InputError: one line naming the file and key, and the fix.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(path), "not found", "give the inventory file of the running fleet") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), f"cannot be read ({exc})", "check the path and its permissions") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), f"is not valid TOML ({exc})", "fix the syntax") from None
    base = path.parent
    _unknown(data, _TOP, str(path), "a key of the inventory")
    pki = data.get("pki")
    if not isinstance(pki, str) or not pki.strip():
        raise InputError(f"{path}: pki", "is missing" if pki is None else "is not a folder name",
                         'add pki = "pki", the PKI folder the fleet\'s certificates came from')
    pki_folder = base / pki
    if not (pki_folder / "pki.json").is_file():
        raise InputError(f"{path}: pki", f"{pki_folder} has no pki.json",
                         "give the folder `mesh pki init` (or the run) wrote")
    operator = None
    if "operator" in data:
        table = _table(data["operator"], f"{path}: operator")
        _unknown(table, _OPERATOR, f"{path}: operator", "an operator setting")
        for key in ("certificate", "key"):
            if not isinstance(table.get(key), str):
                raise InputError(f"{path}: operator.{key}", "is missing",
                                 f'add {key} = "operator.{"crt" if key == "certificate" else "key"}"')
        files = {key: _file(base, table[key], f"{path}: operator.{key}")
                 for key in _OPERATOR if key in table}
        operator = Operator(certificate=files["certificate"], key=files["key"], ca=files.get("ca"))
    crl = None
    if "crl" in data:
        where = f"{path}: crl"
        table = _table(data["crl"], where)
        _unknown(table, _CRL, where, "a [crl] setting")
        crl = Api(name="crl-server", url=_url(table, where),
                  token=_token(table, base, where, operator))
    raw_nodes = data.get("node", [])
    if not isinstance(raw_nodes, list):
        raise InputError(f"{path}: node", "is not a list of [[node]] tables", "write [[node]] tables")
    nodes: dict[str, Api] = {}
    for number, raw in enumerate(raw_nodes, 1):
        where = f"{path}: node[{number}]"
        table = _table(raw, where)
        _unknown(table, _NODE, where, "a [[node]] setting")
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where}.name", "is missing",
                             'add name = "cm.contoso.test", the appliance\'s name in the scenario')
        if name in nodes:
            raise InputError(f"{where}.name", f"{name!r} is listed twice", "list each appliance once")
        nodes[name] = Api(name=name, url=_url(table, where), token=_token(table, base, where, operator))
    return Inventory(source=path, pki=pki_folder, operator=operator, crl=crl, nodes=nodes)


def check_inventory(inventory: Inventory, scenario: Scenario) -> None:
    """Raise one line when ``scenario`` cannot be driven on ``inventory``."""
    for appliance in scenario.appliances:
        if has_console(appliance.role) and appliance.name not in inventory.nodes:
            raise InputError(
                str(inventory.source),
                f"has no [[node]] for {appliance.name!r} (a {appliance.role} of scenario "
                f"{scenario.name!r})",
                f'add [[node]] name = "{appliance.name}" with its api and token',
            )
    needing = [str(step.action) for step in scenario.steps if str(step.action) in _CRL_STEPS]
    if (needing or any(step.after for step in scenario.steps)) and inventory.crl is None:
        action = needing[0] if needing else "advance"
        raise InputError(str(inventory.source), f"has no [crl] table, and the scenario's {action} "
                         "steps republish or switch the CRL server",
                         'add [crl] with api = "https://HOST:PORT" of `mesh crl serve --api-port` '
                         "and its token")


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(where, "is not a table", "write it as a [table] of keys")
    return value


def _unknown(table: dict[str, Any], known: tuple[str, ...], where: str, what: str) -> None:
    for key in table:
        if key not in known:
            raise InputError(f"{where}: {key}" if not where.endswith(".toml") else f"{where}: {key}",
                             f"is not {what}", f"use one of {', '.join(known)}")


def _url(table: dict[str, Any], where: str) -> str:
    value = table.get("api")
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}.api", "is missing", 'add api = "https://HOST:PORT"')
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise InputError(f"{where}.api", f"{value!r} is not an https://HOST:PORT address",
                         "give the API's base URL, as its api-listening event names it")
    return value.strip().rstrip("/")


def _file(base: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise InputError(where, "is not a file name", "give a path, relative to the inventory's folder")
    path = base / value
    if not path.is_file():
        raise InputError(where, f"{path} does not exist", "give a path, relative to the inventory's folder")
    return path


def _token(table: dict[str, Any], base: Path, where: str, operator: Operator | None) -> str | None:
    if "token_file" in table and "token_env" in table:
        raise InputError(f"{where}.token_env", "is set beside token_file", "give one of the two")
    if "token_file" in table:
        file = _file(base, table["token_file"], f"{where}.token_file")
        try:
            token = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{where}.token_file", f"{file} cannot be read ({exc.__class__.__name__})",
                             "check its permissions: the token file is its owner's only") from None
        if not token:
            raise InputError(f"{where}.token_file", f"{file} is empty", "give the file the API wrote")
        return token
    if "token_env" in table:
        name = table["token_env"]
        if not isinstance(name, str) or not name:
            raise InputError(f"{where}.token_env", "is not a variable name", 'write token_env = "MESH_TOKEN_CM"')
        token = os.environ.get(name, "").strip()
        if not token:
            raise InputError(f"{where}.token_env", f"${name} is not set", f"export {name} with the API's token")
        return token
    if operator is None:
        raise InputError(where, "has no credential",
                         "add token_file or token_env, or an [operator] table for every API")
    return None

"""TOML scenario files -> :class:`~mesh.scenario.model.Scenario`.

A person writes these files by hand, so the loader's real product is its
error messages: every problem in a file is reported at once (as cattrs'
``transform_error`` does), each on one line naming the file, the key path and
the fix::

    revoked.toml: appliance[2].role: 'sensr' is not a role; use one of sensor, ...

Key paths count tables from 1 as a person reads the file: ``appliance[2]`` is
the second ``[[appliance]]`` table, ``step[1]`` the first ``[[step]]``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Callable

from mesh.errors import FailureCode, InputError
from mesh.hosts.firewall import parse_rate
from mesh.validation.policy import PROFILES
from mesh.scenario.model import (
    ACTIONS,
    CERTIFICATE_RECIPES,
    DEFAULT_START,
    LINK_STATES,
    NETWORK_REASONS,
    ROLES,
    STEP_ATTRIBUTES,
    UPLOAD_VERDICTS,
    VALIDATION_RUNS,
    ApplianceDef,
    Block,
    Expectation,
    PkiSpec,
    Scenario,
    Step,
    parse_duration,
)

__all__ = [
    "ScenarioInvalid",
    "check_scenario",
    "load_scenario",
    "loads_scenario",
    "scenario_from_dict",
]


#: The most appliances one ``count`` may stand for (each is a key and a
#: certificate): a fleet for ``mesh run --workers``. How many one process
#: can hold is the backend's check (``Scenario.descriptor_line``).
MAX_COUNT = 20_000


class ScenarioInvalid(InputError):
    """A scenario file with one or more problems; ``problems`` holds one InputError each."""

    def __init__(self, source: str, problems: list[InputError]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(first.where, first.problem, first.fix)
        self.source = source

    def lines(self) -> list[str]:
        return [problem.line() for problem in self.problems]

    def line(self) -> str:
        return "\n".join(self.lines()) if hasattr(self, "problems") else super().line()


class _Bad(Exception):
    """One bad value: the problem and the fix, without the path (added by the caller)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


_MISSING = object()


def _type_name(value: Any) -> str:
    return {
        str: "a string", bool: "true/false", int: "a number", float: "a number",
        list: "a list", dict: "a table", dt.datetime: "a date-time",
    }.get(type(value), type(value).__name__)


# -- value converters: (value) -> converted, or raise _Bad ------------------


def _string(example: str) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise _Bad(f"{_type_name(value) if not isinstance(value, str) else 'an empty string'}"
                       " where a text is needed", f"write it like {example}")
        return value.strip()

    return convert


def _optional_string(example: str) -> Callable[[Any], str | None]:
    inner = _string(example)
    return lambda value: inner(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"{value!r} is not true or false", "write true or false (no quotes)")
    return value


def _choice(what: str, allowed: tuple[str, ...]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _Bad(f"{value!r} is not {what}", f"use one of {', '.join(allowed)}")
        return value

    return convert


def _key_size(value: Any) -> int:
    if isinstance(value, bool) or value not in (2048, 4096):
        raise _Bad(f"{value!r} is not a supported RSA key size", "use 2048 or 4096")
    return int(value)


def _positive_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Bad(f"{value!r} is not a positive whole number", "write a number like 365")
    return value


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _Bad(f"{value!r} is not a port", "use a number from 1 to 65535, like 80")
    return value


def _step_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Bad(f"{value!r} is not a step number",
                   "write 0 (after start) or the number of a step, counted from 1")
    return value


def _duration(value: Any) -> dt.timedelta:
    try:
        if not isinstance(value, str):
            raise ValueError
        return parse_duration(value)
    except ValueError:
        raise _Bad(f"{value!r} is not a duration",
                   'write it like "90d", "12h", "30m", "45s" or "1y"') from None


def _instant(value: Any) -> dt.datetime:
    fix = 'write it like 2027-01-15T09:00:00Z'
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _Bad(f"{value!r} is not a date and time", fix) from None
    if not isinstance(value, dt.datetime):
        raise _Bad(f"{value!r} is not a date and time", fix)
    if value.tzinfo is None:
        raise _Bad(f"{value.isoformat()} has no time zone", "end it with Z for UTC")
    return value.astimezone(dt.timezone.utc)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _Bad(f"{_type_name(value)} where a list of appliance names is needed",
                   'write it like ["cm.contoso.test"]')
    return tuple(v.strip() for v in value)


def _percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise _Bad(f"{value!r} is not a percentage", "write a whole number from 0 to 100, like 30")
    return value


def _rate(value: Any) -> str:
    fix = 'write it like "1mbit", "512kbit" or "off" (no limit)'
    if not isinstance(value, str):
        raise _Bad(f"{_type_name(value)} where a rate is needed", fix)
    if value.strip().lower() == "off":
        return "off"
    try:
        parse_rate(value)
    except ValueError:
        raise _Bad(f"{value!r} is not a rate", fix) from None
    return value.strip().lower()


def _groups(value: Any) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list) or not value or not all(
        isinstance(group, list) and group and all(isinstance(n, str) and n.strip() for n in group)
        for group in value
    ):
        raise _Bad(f"{_type_name(value)} where groups of host names are needed",
                   'write it like [["sensor-1.contoso.test"], ["cm.contoso.test", "crl"]]')
    return tuple(tuple(n.strip() for n in group) for group in value)


def _code(value: Any) -> str:
    known = [member.code for member in FailureCode]
    if isinstance(value, str):
        normal = value.strip().replace("-", "_")
        if normal in known:
            return normal
    close = difflib.get_close_matches(str(value), known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise _Bad(f"{value!r} is not a failure code", f"{hint}use one of {', '.join(known)}")


_NAME = re.compile(r"^[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")


def _appliance_name(value: Any) -> str:
    name = _string('"sensor-1.contoso.test"')(value)
    if not _NAME.match(name.replace("{n}", "1")):
        raise _Bad(f"{name!r} is not a domain name",
                   'use letters, digits, dashes and dots, like "sensor-1.contoso.test"')
    return name


# -- the tables -------------------------------------------------------------

# key -> (converter, required, example for a missing key)
_Spec = dict[str, tuple[Callable[[Any], Any], bool, str]]

_SCENARIO: _Spec = {
    "name": (_string('"revoked-sensor"'), False, ""),
    "description": (_string('"A revoked sensor halts."'), False, ""),
    "start": (_instant, False, ""),
    "api": (_boolean, False, ""),
}
_PKI: _Spec = {
    "root": (_string('"Contoso Root CA"'), False, ""),
    "intermediate": (_optional_string('"Contoso Issuing CA"'), False, ""),
    "key_size": (_key_size, False, ""),
    "crl_validity": (_duration, False, ""),
    "crl_proxy_only": (_boolean, False, ""),
    "cross_signed_by": (_optional_string('"Contoso Root CA 2019"'), False, ""),
}
_APPLIANCE: _Spec = {
    "name": (_appliance_name, True, 'name = "sensor-1.contoso.test"'),
    "role": (_choice("a role", ROLES), True, 'role = "sensor"'),
    "certificate": (_choice("a certificate recipe", CERTIFICATE_RECIPES), False, ""),
    "validation": (_boolean, False, ""),
    "connects_to": (_names, False, ""),
    "forwards_to": (_names, False, ""),
    "crl_proxy": (_boolean, False, ""),
    "revocation": (_choice("a revocation mode", ("hard", "soft")), False, ""),
    "validator": (_choice("a validator profile", PROFILES), False, ""),
    "trust": (_names, False, ""),
    "crl_files": (_boolean, False, ""),
    "valid_for": (_duration, False, ""),
    "count": (_positive_int, False, ""),
    "api": (_boolean, False, ""),
}
_STEP: _Spec = {
    "after": (_duration, False, ""),
    "action": (_choice("an action", ACTIONS), True, 'action = "revoke"'),
    "target": (_string('"sensor-1.contoso.test"'), False, ""),
    "certificate": (_choice("a certificate recipe", CERTIFICATE_RECIPES), False, ""),
    "enabled": (_boolean, False, ""),
    "note": (_string('"why this step"'), False, ""),
    "from": (_string('"sensor-2.contoso.test"'), False, ""),
    "to": (_string('"crl"'), False, ""),
    "port": (_port, False, ""),
    "drop": (_boolean, False, ""),
    "between": (_groups, False, ""),
    "percent": (_percent, False, ""),
    "rate": (_rate, False, ""),
}
_EXPECT: _Spec = {
    "link": (_string('"sensor-1.contoso.test -> cm.contoso.test"'), False, ""),
    "state": (_choice("a link state", LINK_STATES), False, ""),
    "code": (_code, False, ""),
    "after_step": (_step_number, False, ""),
    "upload_step": (_positive_int, False, ""),
    "verdict": (_choice("an upload verdict", UPLOAD_VERDICTS), False, ""),
    "mode": (_choice("a validation run", VALIDATION_RUNS), False, ""),
    "reason": (_choice("a network reason", NETWORK_REASONS), False, ""),
}
_BLOCK: _Spec = {
    "from": (_string('"sensor-2.contoso.test"'), True, 'from = "sensor-2.contoso.test"'),
    "to": (_string('"crl"'), True, 'to = "crl"'),
    "port": (_port, False, ""),
    "drop": (_boolean, False, ""),
}
_TOP = {"scenario": "table", "pki": "table", "appliance": "array", "block": "array",
        "step": "array", "expect": "array"}


class _Collector:
    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[InputError] = []
        self.bad_paths: set[str] = set()

    def add(self, path: str, problem: str, fix: str) -> None:
        self.bad_paths.add(path)
        where = f"{self.source}: {path}" if path else self.source
        self.problems.append(InputError(where, problem, fix))

    def table(self, data: Any, path: str, spec: _Spec) -> dict[str, Any] | None:
        """Convert one table by its spec; None when it is not a table at all."""
        if not isinstance(data, dict):
            self.add(path, f"{_type_name(data)} where a table is needed",
                     f"write it as [{path.split('[')[0]}] with keys under it")
            return None
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key not in spec:
                close = difflib.get_close_matches(key, list(spec), n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.add(f"{path}.{key}", "unknown key", f"{hint}use one of {', '.join(spec)}")
                continue
            convert = spec[key][0]
            try:
                out[key] = convert(value)
            except _Bad as bad:
                self.add(f"{path}.{key}", bad.problem, bad.fix)
        for key, (_, required, example) in spec.items():
            if required and key not in data:
                self.add(f"{path}.{key}", "missing", f"add {example}")
        return out

    def array(self, data: Any, name: str) -> list[Any]:
        if data is _MISSING:
            return []
        if isinstance(data, dict):
            self.add(name, "a single table where a list of tables is needed",
                     f"write [[{name}]] (double brackets) for each {name}")
            return []
        if not isinstance(data, list):
            self.add(name, f"{_type_name(data)} where a list of tables is needed",
                     f"write [[{name}]] (double brackets) for each {name}")
            return []
        return data


def scenario_from_dict(data: dict[str, Any], *, source: str = "<scenario>",
                       default_name: str = "scenario") -> Scenario:
    """Build a Scenario from parsed TOML; raise ScenarioInvalid listing every problem."""
    c = _Collector(source)
    for key in data:
        if key not in _TOP:
            close = difflib.get_close_matches(key, list(_TOP), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            c.add(key, "unknown key", f"{hint}use one of {', '.join(_TOP)}")

    head = c.table(data.get("scenario", {}), "scenario", _SCENARIO) or {}
    pki_fields = c.table(data.get("pki", {}), "pki", _PKI) or {}

    appliances: list[ApplianceDef] = []
    for i, raw in enumerate(c.array(data.get("appliance", _MISSING), "appliance"), 1):
        fields = c.table(raw, f"appliance[{i}]", _APPLIANCE)
        if fields is None:
            continue
        fields.setdefault("name", f"appliance-{i}.invalid")
        fields.setdefault("role", "sensor")
        count = fields.pop("count", None)
        name = fields.pop("name")
        if count is None and "{n}" in name:
            c.add(f"appliance[{i}].name", "has {n} but no count",
                  "add count = N for N appliances, or write the name out")
        if count is not None and count > MAX_COUNT:
            c.add(f"appliance[{i}].count", f"{count} is more appliances than one run can hold",
                  f"use at most {MAX_COUNT}")
            count = None
        if count is not None and "{n}" not in name:
            c.add(f"appliance[{i}].count", "needs {n} in the name to number the appliances",
                  'write name = "sensor-{n}.contoso.test"')
            count = None
        for k in range(1, (count or 1) + 1):
            appliances.append(
                ApplianceDef(name=name.replace("{n}", str(k)), origin=f"appliance[{i}]", **fields)
            )
    if "appliance" in data and not appliances and not c.problems:
        c.add("appliance", "no appliances", "add at least one [[appliance]] table")
    if "appliance" not in data:
        c.add("appliance", "no appliances", "add at least one [[appliance]] table")

    blocks: list[Block] = []
    for i, raw in enumerate(c.array(data.get("block", _MISSING), "block"), 1):
        fields = c.table(raw, f"block[{i}]", _BLOCK)
        if fields is None or "from" not in fields or "to" not in fields:
            continue
        blocks.append(Block(source=fields["from"], destination=fields["to"],
                            port=fields.get("port"), drop=fields.get("drop", False),
                            origin=f"block[{i}]"))

    steps: list[Step] = []
    for i, raw in enumerate(c.array(data.get("step", _MISSING), "step"), 1):
        fields = c.table(raw, f"step[{i}]", _STEP)
        if fields is None:
            fields = {}
        fields.setdefault("action", "advance")
        for key, attribute in STEP_ATTRIBUTES.items():
            if key in fields:
                fields[attribute] = fields.pop(key)
        steps.append(Step(**fields))

    expectations: list[Expectation] = []
    for i, raw in enumerate(c.array(data.get("expect", _MISSING), "expect"), 1):
        path = f"expect[{i}]"
        fields = c.table(raw, path, _EXPECT)
        if fields is None:
            continue
        about_link = "link" in fields or "state" in fields
        about_upload = "upload_step" in fields or "verdict" in fields
        if isinstance(raw, dict) and not any(k in raw for k in ("link", "upload_step")):
            c.add(f"{path}.link", "missing",
                  'add link = "DIALER -> LISTENER" (or upload_step = N for an upload verdict)')
        elif about_link and about_upload:
            c.add(path, "mixes a link expectation with an upload one",
                  "split it into two [[expect]] tables")
        elif "link" in raw and "state" not in raw:
            c.add(f"{path}.state", "missing", f"add state = one of {', '.join(LINK_STATES)}")
        elif "upload_step" in raw and "verdict" not in raw:
            c.add(f"{path}.verdict", "missing", 'add verdict = "accepted" or "refused"')
        if fields.get("code") and fields.get("state") not in (None, "halted", "up-unvalidated"):
            c.add(f"{path}.code", f"a link that is {fields['state']!r} has no code",
                  "remove code, or expect state = \"halted\"")
        if fields.get("reason") and fields.get("state") != "down":
            c.add(f"{path}.reason", f"a link that is {fields.get('state')!r} has no network reason",
                  "remove reason, or expect state = \"down\"")
        if "after_step" in fields and "upload_step" in fields:
            c.add(f"{path}.after_step", "an upload verdict is checked at its own step",
                  "remove after_step")
        expectations.append(Expectation(**fields))

    try:
        pki = PkiSpec(**pki_fields)
    except (TypeError, ValueError):  # pragma: no cover - fields were checked above
        pki = PkiSpec()
    scenario = Scenario(
        name=head.get("name", default_name),
        description=head.get("description", ""),
        start=head.get("start", DEFAULT_START),
        pki=pki,
        appliances=appliances,
        steps=steps,
        expectations=expectations,
        blocks=blocks,
        source=source,
        api=head.get("api", False),
    )
    for path, problem, fix in scenario.problems():
        # A table already reported broken would only echo its own problem.
        table = path.split(".")[0]
        if path in c.bad_paths or table in c.bad_paths or f"{table}.action" in c.bad_paths:
            continue
        c.add(path, problem, fix)
    if c.problems:
        # Appliances expanded from one table with ``count`` share their
        # problems: report each once.
        unique = list({problem.line(): problem for problem in c.problems}.values())
        raise ScenarioInvalid(source, sorted(unique, key=_file_order(source)))
    return scenario


_SECTION_ORDER = {name: i for i, name in enumerate(["", *_TOP])}


def _file_order(source: str) -> Callable[[InputError], tuple[int, int]]:
    """Sort problems the way the file reads: sections in order, tables by index."""
    prefix = f"{source}: "

    def key(problem: InputError) -> tuple[int, int]:
        path = problem.where[len(prefix):] if problem.where.startswith(prefix) else ""
        match = re.match(r"([a-z_]+)(?:\[(\d+)\])?", path)
        if not match:
            return (0, 0)
        return (_SECTION_ORDER.get(match.group(1), 0), int(match.group(2) or 0))

    return key


def check_scenario(scenario: Scenario) -> Scenario:
    """Raise ScenarioInvalid if a Scenario (e.g. one built in Python) is unsound."""
    problems = scenario.problems()
    if problems:
        where = scenario.source or scenario.name
        raise ScenarioInvalid(
            where, [InputError(f"{where}: {path}", problem, fix) for path, problem, fix in problems]
        )
    return scenario


_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def loads_scenario(text: str, *, source: str = "<scenario>", default_name: str = "scenario") -> Scenario:
    """Parse TOML text into a Scenario; ScenarioInvalid on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _AT.search(message)
        where = f"line {match.group(1)}, column {match.group(2)}" if match else "TOML"
        problem = _AT.sub("", message) if match else message
        problem = problem[:1].lower() + problem[1:]
        raise ScenarioInvalid(source, [InputError(f"{source}: {where}", problem,
                                                  "fix the TOML syntax there")]) from None
    return scenario_from_dict(data, source=source, default_name=default_name)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and check one scenario file; ScenarioInvalid (an InputError) on any problem."""
    source = str(path)
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioInvalid(source, [InputError(source, "no such file", "check the path")]) from None
    except IsADirectoryError:
        raise ScenarioInvalid(source, [InputError(source, "is a folder, not a scenario file",
                                                  "name a .toml file inside it")]) from None
    except PermissionError:
        raise ScenarioInvalid(source, [InputError(source, "cannot be read (permission denied)",
                                                  "check the file's permissions")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioInvalid(source, [InputError(source, "is not UTF-8 text",
                                                  "save it as a UTF-8 TOML file")]) from None
    return loads_scenario(text, source=source, default_name=p.stem)

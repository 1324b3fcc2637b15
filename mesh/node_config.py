"""``mesh node``'s config file: read, checked, every problem reported at once.

The format is :data:`mesh.cli.node.CONFIG` (what ``mesh node --help`` prints).
Each key is read by a small function that raises one :class:`InputError`;
:class:`ConfigProblems` runs them all, so a config with three mistakes gets
three lines (as a scenario file does), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from attrs import define, evolve, field
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mesh.appliances.appliance import EngineSettings
from mesh.appliances.spec import ApplianceSpec, Role
from mesh.consoles import has_console
from mesh.errors import InputError, ValidationFailed
from mesh.password_hash import PasswordHash
from mesh.pki.files import load_certificate, load_certificates, load_key
from mesh.pki.issue import Issued
from mesh.pki.operator import load_operator_cas
from mesh.pki.crl_files import load_crl_files
from mesh.validation.chain import public_key_der
from mesh.validation.memo import certificate_from_der
from mesh.validation.policy import PROFILES, ValidationPolicy

__all__ = [
    "NodeConfig", "PeerAddress", "ShardConfig", "ConfigInvalid", "ConfigProblems", "load_config",
    "load_shard",
]

T = TypeVar("T")

_KEYS = {
    "name", "hostname", "role", "listen", "certificate", "key", "chain", "passphrase",
    "trust", "validation", "revocation", "validator", "crl_files", "crl_proxy", "crl_cache", "start",
    "accept_from",
    "backoff_cap", "connects_to", "peers", "forwards_to", "api", "api_port",
    "api_token_file", "operator_ca", "admin_password_hash",
}  # fmt: skip

#: A shard config's own keys; everything else is in its ``[[appliance]]`` tables.
_SHARD_KEYS = {"appliance", "start", "backoff_cap"}

#: A peer's address in a shard config when it is another appliance of the
#: same shard: the process links them itself (loopback, as ``Mesh`` does).
LOCAL = "local"


@define(frozen=True, kw_only=True)
class PeerAddress:
    name: str
    host: str
    port: int
    hostname: str
    role: Role | None = None
    speaks_mesh: bool = True


@define(frozen=True, kw_only=True)
class NodeConfig:
    spec: ApplianceSpec
    start: dt.datetime
    connects_to: tuple[PeerAddress, ...] = ()
    forwards_to: tuple[PeerAddress, ...] = ()
    accept_from: tuple[str, ...] = ()
    settings: EngineSettings = field(factory=EngineSettings)
    #: The REST API's port on the listen host (0 picks one); None: no API.
    #: A config file turns it on by default for sensors and consoles.
    api_port: int | None = None
    #: Where the console writes its token (0600) at every start; None: a
    #: private temporary folder for the node's lifetime. A config file
    #: defaults to ``<name>.api-token`` beside itself.
    api_token_file: Path | None = None
    #: The CAs whose client certificates are operator credentials (``operator_ca``).
    operator_cas: tuple[x509.Certificate, ...] = ()
    #: The admin password's hash (``admin_password_hash``), for the page's sign-in.
    admin_password: PasswordHash | None = None
    #: The config file it was read from, for messages ("" when built in Python).
    source: str = ""


@define(frozen=True, kw_only=True)
class ShardConfig:
    """Several appliances for one process: one clock, one link book, one retry gate.

    Links between its appliances stay in the process; ``external()`` are the
    peers elsewhere, dialled at their addresses.
    """

    nodes: tuple[NodeConfig, ...]
    start: dt.datetime
    source: str = ""

    def names(self) -> set[str]:
        return {node.spec.name for node in self.nodes}

    def external(self) -> list[PeerAddress]:
        """Every peer an appliance here dials that is not in this shard, once."""
        here = self.names()
        peers = {p.name: p for n in self.nodes for p in (*n.connects_to, *n.forwards_to)
                 if p.name not in here}
        return list(peers.values())


def _address(text: object, where: str) -> tuple[str, int]:
    if not isinstance(text, str) or ":" not in text:
        raise InputError(where, f"{text!r} is not an address", 'write "host:port", e.g. "127.0.0.1:8443"')
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not host or not 0 <= number <= 65535:
        raise InputError(where, f"{text!r} is not an address", 'write "host:port", e.g. "127.0.0.1:8443"')
    return host, number


#: Settings whose values are never repeated in an error: only their type is.
_SECRETS = frozenset({"passphrase", "admin_password_hash"})


def _str(data: dict[str, Any], key: str, where: str, default: str | None = None) -> str | None:
    value = data.get(key, default)
    if value is not None and not isinstance(value, str):
        shown = _kind(value) if key in _SECRETS else repr(value)
        raise InputError(f"{where}: {key}", f"must be a string, not {shown}", "quote it")
    return value


def _kind(value: object) -> str:
    """What a TOML value is, without what it says."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def _path(base: Path, value: str, where: str) -> Path:
    # A file name with a line break would break the one-line error that
    # names it (and no file a person means is called that).
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InputError(
            where, f"{value!r} is not a file name", "write the file's path on one line"
        )
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _peers(data: dict[str, Any], key: str, where: str,
           local: frozenset[str] = frozenset()) -> tuple[PeerAddress, ...]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise InputError(f"{where}: {key}", "must be a table of name = \"host:port\"", f"write [{key}]")
    out = []
    for name, value in table.items():
        here = f"{where}: {key}.{name}"
        role = None
        hostname = name
        speaks_mesh = True
        if isinstance(value, dict):
            unknown = set(value) - {"address", "hostname", "role", "raw"}
            if unknown:
                raise InputError(
                    here, f"unknown key {sorted(unknown)[0]!r}", "use address, hostname, role, raw"
                )
            raw = value.get("raw", False)
            if not isinstance(raw, bool):
                raise InputError(f"{here}.raw", f"must be true or false, not {raw!r}", "")
            speaks_mesh = not raw
            if "role" in value:
                try:
                    role = Role.parse(value["role"])
                except ValueError as exc:
                    raise InputError(f"{here}.role", str(exc), "") from None
            hostname = str(value.get("hostname") or name)
            value = value.get("address")
        if value == LOCAL:
            if name not in local:
                raise InputError(here, f"{LOCAL!r} names no appliance of this shard",
                                 'give its address, "host:port"')
            out.append(PeerAddress(name=name, host="", port=0, hostname=hostname, role=role,
                                   speaks_mesh=speaks_mesh))
            continue
        host, port = _address(value, here)
        if port == 0:
            raise InputError(here, "port 0 cannot be dialed", "give the port the peer listens on")
        out.append(
            PeerAddress(
                name=name, host=host, port=port, hostname=hostname, role=role,
                speaks_mesh=speaks_mesh,
            )
        )
    return tuple(out)


class ConfigInvalid(InputError):
    """A node config with one or more problems, every one a line (as a scenario's)."""

    def __init__(self, problems: list[InputError]) -> None:
        self.problems = problems
        first = problems[0]
        super().__init__(first.where, first.problem, first.fix)

    def line(self) -> str:
        return "\nmesh: ".join(problem.line() for problem in self.problems)


class ConfigProblems:
    """Collects every problem of a config, so a person fixes them in one go."""

    def __init__(self) -> None:
        self.problems: list[InputError] = []

    def add(self, problem: InputError) -> None:
        self.problems.append(problem)

    def take(self, read: Callable[[], T], default: T) -> T:
        """``read()``'s value, or ``default`` with its problem noted."""
        try:
            return read()
        except InputError as problem:
            self.problems.append(problem)
            return default

    def raise_if_any(self, where: str) -> None:
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            raise ConfigInvalid(self.problems)


def _name(data: dict[str, Any], where: str) -> str:
    name = _str(data, "name", where)
    if not name:
        raise InputError(f"{where}: name", "is missing", 'add name = "sensor-1"')
    return name


def _role(data: dict[str, Any], where: str) -> Role:
    text = _str(data, "role", where)
    if not text:
        raise InputError(f"{where}: role", "is missing",
                         "add role = \"sensor\" (or management-console, ha-console, forwarding-target)")
    try:
        return Role.parse(text)
    except ValueError as exc:
        raise InputError(f"{where}: role", str(exc), "") from None


def _identity(data: dict[str, Any], base: Path, where: str) -> Issued | None:
    certificate, key_file = _str(data, "certificate", where), _str(data, "key", where)
    if (certificate is None) != (key_file is None):
        raise InputError(
            f"{where}: {'key' if certificate else 'certificate'}",
            "is missing",
            "give certificate and key together (or neither, for a self-signed first start)",
        )
    if not (certificate and key_file):
        return None
    cert = load_certificate(_path(base, certificate, f"{where}: certificate"))
    try:
        key = load_key(_path(base, key_file, f"{where}: key"), _str(data, "passphrase", where))
    except ValidationFailed as exc:
        raise InputError(f"{where}: passphrase", exc.code.message, "give the key's passphrase") from None
    if public_key_der(key.public_key()) != public_key_der(cert.public_key()):
        raise InputError(
            f"{where}: key",
            f"{_path(base, key_file, where)} is not the key of the certificate "
            f"{_path(base, certificate, where)}",
            "give the certificate's own key",
        )
    chain_file = _str(data, "chain", where)
    chain = tuple(load_certificates(_path(base, chain_file, f"{where}: chain"))) if chain_file else ()
    return Issued(cert=cert, key=key, chain=chain)


def _files(data: dict[str, Any], key: str, where: str, example: str) -> list[str]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: {key}", "must be a file name or a list of them", f"write {key} = {example}")
    return value


def _trust(data: dict[str, Any], base: Path, where: str) -> tuple[x509.Certificate, ...]:
    """The anchors, interned by their DER: the appliances of a shard that trust
    the same certificates then hold the same objects, and so share one
    verifier and its memos (``verifier_for`` knows anchors by identity).
    Each with anchors of its own, 1,000 sensors each searched the console's
    chain themselves, and a 64-entry memo of verifiers thrashed."""
    names = _files(data, "trust", where, '["root.crt"]')
    return tuple(certificate_from_der(cert.public_bytes(Encoding.DER))
                 for t in names for cert in load_certificates(_path(base, t, f"{where}: trust")))


def _crl_files(data: dict[str, Any], base: Path, where: str) -> tuple[Any, ...]:
    names = _files(data, "crl_files", where, '["issuing.crl"]')
    return load_crl_files(_path(base, c, f"{where}: crl_files") for c in names)


def _crl_cache(data: dict[str, Any], base: Path, where: str) -> Path | None:
    """The folder the appliance keeps its fetched CRLs in across restarts (None: memory only)."""
    value = _str(data, "crl_cache", where)
    if value is None:
        return None
    path = _path(base, value, f"{where}: crl_cache")
    if path.exists() and not path.is_dir():
        raise InputError(f"{where}: crl_cache", f"{str(path)!r} is not a folder",
                         "name a folder (it is made when the first CRL is kept)")
    return path


def _validation(data: dict[str, Any], where: str) -> bool:
    validation = data.get("validation", True)
    if not isinstance(validation, bool):
        raise InputError(f"{where}: validation", f"must be true or false, not {validation!r}", "")
    return validation


def _choice(data: dict[str, Any], where: str, key: str, choices: Sequence[str], default: str) -> str:
    value = _str(data, key, where, default) or default
    if value not in choices:
        raise InputError(f"{where}: {key}", f"{value!r} is not one of {', '.join(choices)}",
                         f'write {key} = "{choices[0]}"')
    return value


def _start(data: dict[str, Any], where: str) -> dt.datetime:
    start_text = data.get("start")
    if start_text is None:
        return dt.datetime.now(dt.timezone.utc)
    if isinstance(start_text, dt.datetime):
        return start_text if start_text.tzinfo else start_text.replace(tzinfo=dt.timezone.utc)
    try:
        start = dt.datetime.fromisoformat(str(start_text).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{where}: start", f"{start_text!r} is not an instant", 'write "2027-01-15T09:00:00Z"') from None
    return start if start.tzinfo else start.replace(tzinfo=dt.timezone.utc)


def _accept_from(data: dict[str, Any], where: str) -> tuple[str, ...]:
    accept_from = data.get("accept_from", [])
    if isinstance(accept_from, str):
        accept_from = [accept_from]
    if not isinstance(accept_from, list) or not all(isinstance(a, str) for a in accept_from):
        raise InputError(
            f"{where}: accept_from", "must be a name or a list of names", 'write accept_from = ["console"]'
        )
    return tuple(accept_from)


def _backoff_cap(data: dict[str, Any], where: str) -> float:
    cap = data.get("backoff_cap", 60)
    if not isinstance(cap, (int, float)) or isinstance(cap, bool) or cap <= 0:
        raise InputError(f"{where}: backoff_cap", f"must be a positive number of seconds, not {cap!r}", "")
    return float(cap)


def _dialed(data: dict[str, Any], where: str, local: frozenset[str]) -> tuple[PeerAddress, ...]:
    if "peers" in data and "connects_to" in data:
        raise InputError(f"{where}: peers", "and connects_to both list peers to dial", "keep one")
    return _peers(data, "peers" if "peers" in data else "connects_to", where, local)


def _read_toml(path: Path) -> dict[str, Any]:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(where, f"cannot be read ({exc.strerror or exc})", "check the path") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(where, f"is not valid TOML ({exc})", "fix the syntax") from None


def load_config(path: str | Path) -> NodeConfig:
    """Read and check a one-appliance node config; every problem is one InputError line."""
    path = Path(path)
    data = _read_toml(path)
    problems = ConfigProblems()
    for key in sorted(set(data) - _KEYS):
        problems.add(InputError(f"{path}: {key}", "is not a node setting",
                                "known: " + ", ".join(sorted(_KEYS))))
    config = _appliance(data, path.parent, str(path), problems, start=None, cap=None)
    problems.raise_if_any(str(path))
    assert config is not None  # no problems: it was read
    return evolve(config, source=str(path))


def load_shard(path: str | Path) -> ShardConfig:
    """A node config with ``[[appliance]]`` tables, or a one-appliance config as a shard of one.

    The tables take every key of a one-appliance config but ``start`` and
    ``backoff_cap``, which the shard's one clock and retry gate share, so
    they are set once at the top. A peer that is another appliance of the
    shard is written ``name = "local"``. Every problem of every table is one
    line, all at once.
    """
    path = Path(path)
    where = str(path)
    data = _read_toml(path)
    if "appliance" not in data:
        single = load_config(path)
        return ShardConfig(nodes=(single,), start=single.start, source=where)
    problems = ConfigProblems()
    for key in sorted(set(data) - _SHARD_KEYS):
        problems.add(InputError(f"{where}: {key}", "is not a shard setting",
                                "known: " + ", ".join(sorted(_SHARD_KEYS))))
    start = problems.take(lambda: _start(data, where), None)
    cap: float = problems.take(lambda: _backoff_cap(data, where), 60.0)
    tables = data["appliance"]
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        problems.add(InputError(f"{where}: appliance", "must be [[appliance]] tables", "write [[appliance]]"))
        tables = []
    local = frozenset(t["name"] for t in tables if isinstance(t.get("name"), str))
    nodes: list[NodeConfig] = []
    seen: dict[str, str] = {}
    for number, table in enumerate(tables, 1):
        here = f"{where}: appliance[{number}]"
        for key in sorted(set(table) & (_SHARD_KEYS - {"appliance"})):
            problems.add(InputError(f"{here}: {key}", "is a shard setting",
                                    "set it once, before the first [[appliance]]"))
        for key in sorted(set(table) - _KEYS):
            problems.add(InputError(f"{here}: {key}", "is not a node setting",
                                    "known: " + ", ".join(sorted(_KEYS - _SHARD_KEYS))))
        node = _appliance(table, path.parent, here, problems, start=start, cap=cap, local=local)
        name = table.get("name")
        if isinstance(name, str) and name:
            if name in seen:
                problems.add(InputError(f"{here}: name", f"{name!r} is already {seen[name]}",
                                        "give each appliance its own name"))
            seen.setdefault(name, f"appliance[{number}]")
        if node is not None:
            nodes.append(evolve(node, source=where))
    problems.raise_if_any(where)
    assert start is not None  # no problems: it was read
    return ShardConfig(nodes=tuple(nodes), start=start, source=where)


def _appliance(
    data: dict[str, Any], base: Path, where: str, problems: ConfigProblems, *,
    start: dt.datetime | None, cap: float | None, local: frozenset[str] = frozenset(),
) -> NodeConfig | None:
    """One appliance's settings (a whole single config, or one ``[[appliance]]`` table).

    ``start`` and ``cap``: the shard's, or None to read them from ``data``.
    Problems go to ``problems``; the result is None when there were any.
    """
    before = len(problems.problems)
    name = problems.take(lambda: _name(data, where), "")
    role = problems.take(lambda: _role(data, where), None)
    host, port = problems.take(
        lambda: _address(_str(data, "listen", where, "127.0.0.1:0"), f"{where}: listen"),
        ("127.0.0.1", 0),
    )
    identity = problems.take(lambda: _identity(data, base, where), None)
    trust: tuple[x509.Certificate, ...] = problems.take(lambda: _trust(data, base, where), ())
    validation = problems.take(lambda: _validation(data, where), True)
    revocation = problems.take(lambda: _choice(data, where, "revocation", ("hard", "soft"), "hard"), "hard")
    validator = problems.take(lambda: _choice(data, where, "validator", PROFILES, "strict"), "strict")
    crl_files: tuple[Any, ...] = problems.take(lambda: _crl_files(data, base, where), ())
    if start is None:
        start = problems.take(lambda: _start(data, where), None)
    accept_from: tuple[str, ...] = problems.take(lambda: _accept_from(data, where), ())
    if cap is None:
        cap = problems.take(lambda: _backoff_cap(data, where), 60.0)
    api_port = problems.take(lambda: _api_port(data, role, where), None) if role is not None else None
    token_file = problems.take(lambda: _api_token_file(data, base, name, api_port, where), None)
    operator_cas: tuple[x509.Certificate, ...] = problems.take(
        lambda: _operator_ca(data, base, api_port, where), ())
    admin_password = problems.take(lambda: _admin_password(data, api_port, where), None)
    connects_to: tuple[PeerAddress, ...] = problems.take(lambda: _dialed(data, where, local), ())
    forwards_to: tuple[PeerAddress, ...] = problems.take(
        lambda: _peers(data, "forwards_to", where, local), ()
    )
    hostname = problems.take(lambda: _str(data, "hostname", where), None)
    crl_proxy = problems.take(lambda: _str(data, "crl_proxy", where), None)
    crl_cache = problems.take(lambda: _crl_cache(data, base, where), None)
    if len(problems.problems) > before or role is None or start is None:
        return None
    spec = ApplianceSpec(
        name=name,
        hostname=hostname,
        role=role,
        identity=identity,
        trust=trust,
        validation=validation,
        connects_to=[p.name for p in connects_to],
        forwards_to=[p.name for p in forwards_to],
        crl_proxy=crl_proxy,
        crl_files=crl_files,
        crl_cache=crl_cache,
        policy=ValidationPolicy(revocation=revocation, validator=validator),  # type: ignore[arg-type]
        host=host,
        port=port,
    )
    return NodeConfig(
        spec=spec,
        start=start,
        connects_to=connects_to,
        forwards_to=forwards_to,
        accept_from=accept_from,
        settings=EngineSettings(backoff_initial=min(1.0, cap), backoff_cap=cap),
        api_port=api_port,
        api_token_file=token_file,
        operator_cas=operator_cas,
        admin_password=admin_password,
        source=where,
    )


def _api_token_file(
    data: dict[str, Any], base: Path, name: str, api_port: int | None, where: str
) -> Path | None:
    """``api_token_file``, default ``<name>.api-token`` beside the config; None without an API."""
    value = _str(data, "api_token_file", where)
    if value is not None and api_port is None and data.get("api") is False:
        raise InputError(f"{where}: api_token_file", "is set but api = false",
                         "remove api_token_file, or set api = true")
    if api_port is None:
        return None
    return _path(base, value or f"{name}.api-token", f"{where}: api_token_file").absolute()


def _operator_ca(data: dict[str, Any], base: Path, api_port: int | None,
                 where: str) -> tuple[x509.Certificate, ...]:
    """``operator_ca``: the CA certificate file(s) whose client certificates may change the node."""
    names = _files(data, "operator_ca", where, '"operator-ca.crt"')
    if names and api_port is None:
        raise InputError(f"{where}: operator_ca", "is set but the node serves no API",
                         "remove operator_ca, or set api = true")
    return tuple(cert for n in names
                 for cert in load_operator_cas(_path(base, n, f"{where}: operator_ca")))


def _admin_password(data: dict[str, Any], api_port: int | None, where: str) -> PasswordHash | None:
    """``admin_password_hash``: what ``mesh hash-password`` printed; never the password."""
    text = _str(data, "admin_password_hash", where)
    if text is None:
        return None
    if api_port is None:
        raise InputError(f"{where}: admin_password_hash", "is set but the node serves no API",
                         "remove admin_password_hash, or set api = true")
    return PasswordHash.parse(text, where=f"{where}: admin_password_hash")


def _api_port(data: dict[str, Any], role: Role, where: str) -> int | None:
    """``api`` and ``api_port`` -> the API's port, or None when it is off."""
    api = data.get("api", has_console(role))
    if not isinstance(api, bool):
        raise InputError(f"{where}: api", f"must be true or false, not {api!r}", "")
    port = data.get("api_port", 0)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InputError(
            f"{where}: api_port",
            f"{port!r} is not a port number",
            "use 1-65535, or 0 to pick a free one",
        )
    if not has_console(role) and (data.get("api") is True or "api_port" in data):
        raise InputError(
            f"{where}: {'api' if data.get('api') is True else 'api_port'}",
            "a forwarding-target has no REST API",
            "remove it (sensors and consoles serve one)",
        )
    if api is False and "api_port" in data:
        raise InputError(
            f"{where}: api_port", "is set but api = false", "remove api_port, or set api = true"
        )
    return port if api else None


# -- running --


"""Bad input, fuzzed through the command line: one clear line, never a traceback.

Certificates, keys, chains, CRLs and scenario files go through ``mesh.cli.main``
in-process, as a person would hand them over: random bytes, real files with
bytes flipped or cut short, PEM armour around nonsense, text. Whatever comes
in, the command either gives its documented verdict (``cert check``: exit 1
with the verdict on stdout; ``cert lint``: its findings) or exits 2 with
exactly one ``mesh: <file>: <problem>; <fix>`` line on stderr (``mesh check``:
one such line per problem). An exception escaping ``main`` fails the test
with its traceback, which is the point.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mesh.cli import main
from mesh.errors import FailureCode
from mesh.pki.faults import UNREACHABLE_PORT
from mesh.pki.deployment import ApplianceRequest, Pki

EPOCH = "2027-01-15T09:00:00+00:00"
FUZZ = settings(
    max_examples=int(os.environ.get("MESH_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
_MESSAGES = {code.message for code in FailureCode}


@pytest.fixture(scope="module")
def folder(tmp_path_factory, key_pool) -> Path:
    """A PKI folder on disk: the good files every fuzzed one starts from."""
    import datetime as dt

    pki = Pki.build(
        at=dt.datetime.fromisoformat(EPOCH),
        appliances=[ApplianceRequest(name="sensor-1"), ApplianceRequest(name="console", role="console")],
        crl_base_url=f"http://127.0.0.1:{UNREACHABLE_PORT}/crl",  # refused at once
        keys=key_pool.cursor(),
    )
    base = tmp_path_factory.mktemp("pki")
    pki.write(base)
    return base


# -- strategies: what a person might hand over by mistake --


def _flip(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for index, value in edits:
        out[index % len(out)] = value
    return bytes(out)


def _pem(label: str, body: bytes) -> bytes:
    text = base64.encodebytes(body).decode()
    return f"-----BEGIN {label}-----\n{text}-----END {label}-----\n".encode()


def damaged(original: bytes) -> st.SearchStrategy[bytes]:
    """Bytes near ``original`` (flipped, cut, re-armoured) or nowhere near it."""
    edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8)
    der = _der_of(original)
    return st.one_of(
        st.binary(max_size=2048),
        st.text(max_size=400).map(lambda t: t.encode("utf-8")),
        edits.map(lambda e: _flip(original, e)),
        st.integers(0, len(original)).map(lambda n: original[:n]),
        edits.map(lambda e: _flip(der, e)) if der else st.nothing(),
        st.integers(0, len(der)).map(lambda n: der[:n]) if der else st.nothing(),
        st.tuples(
            st.sampled_from(
                ["CERTIFICATE", "PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
                 "X509 CRL", "PKCS7"]
            ),
            st.binary(max_size=1200),
        ).map(lambda lb: _pem(*lb)),
        st.binary(max_size=600).map(lambda junk: original + junk),
    )


def _der_of(pem: bytes) -> bytes:
    """The DER inside the first PEM block (empty if there is none)."""
    lines = pem.decode("ascii", "replace").splitlines()
    body = [ln for ln in lines if ln and not ln.startswith("-----")]
    try:
        return base64.b64decode("".join(body[:200]), validate=False)
    except ValueError:
        return b""


# -- running the CLI --


def _cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    for warning in caught:
        # Known and left as is: cryptography still reads a certificate whose
        # serial number is zero or negative, with a deprecation warning that
        # Python prints on stderr. Any other warning is a finding.
        assert issubclass(warning.category, CryptographyDeprecationWarning), warning
        assert "serial number which wasn't positive" in str(warning.message), warning
    return rc, out, err


def _one_line(err: str, name: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("mesh: ") and name in lines[0], err


def _good(folder: Path, relative: str) -> bytes:
    return (folder / relative).read_bytes()


@FUZZ
@given(data=st.data(), as_json=st.booleans())
def test_cert_lint(folder, tmp_path, capsys, data, as_json):
    bad = tmp_path / "fuzzed.crt"
    bad.write_bytes(data.draw(damaged(_good(folder, "appliances/sensor-1.crt"))))
    rc, out, err = _cli(capsys, ["cert", "lint", "--at", EPOCH, *(["--json"] * as_json), str(bad)])
    if rc == 2:
        _one_line(err, "fuzzed.crt")
    else:
        assert rc in (0, 1) and err == "", (rc, err)
        if as_json:
            json.loads(out)


@FUZZ
@given(data=st.data(), which=st.sampled_from(["crt", "key", "chain", "trust"]), as_json=st.booleans())
def test_cert_check(folder, tmp_path, capsys, data, which, as_json):
    files = {
        "crt": folder / "appliances/sensor-1.crt",
        "key": folder / "appliances/sensor-1.key",
        "chain": folder / "appliances/sensor-1.pem",
        "trust": folder / "ca/contoso-root-ca.crt",
    }
    fuzzed = tmp_path / f"fuzzed.{which}"
    fuzzed.write_bytes(data.draw(damaged(files[which].read_bytes())))
    files[which] = fuzzed
    argv = ["cert", "check", "--at", EPOCH, *(["--json"] * as_json)]
    for option, path in files.items():
        argv += [f"--{option}", str(path)]
    rc, out, err = _cli(capsys, argv)
    if rc == 2:
        _one_line(err, fuzzed.name)
    else:
        # The documented verdict: exit 1 (or 0), the operator message first, on stdout.
        assert rc in (0, 1) and err == "", (rc, err)
        if as_json:
            assert json.loads(out)["valid"] is (rc == 0)
        elif rc == 1:
            assert out.splitlines()[0] in _MESSAGES, out


@FUZZ
@given(data=st.data(), source=st.sampled_from(["appliances/sensor-1.crt", "appliances/sensor-1.key",
                                                "appliances/sensor-1.pem"]))
def test_cert_convert(folder, tmp_path, capsys, data, source):
    suffix = Path(source).suffix
    fuzzed = tmp_path / f"fuzzed{suffix}"
    fuzzed.write_bytes(data.draw(damaged(_good(folder, source))))
    out_file = tmp_path / ("out.der" if suffix != ".key" else "out.key")
    rc, out, err = _cli(capsys, ["cert", "convert", str(fuzzed), str(out_file)])
    if rc == 2:
        _one_line(err, "fuzzed")
    else:
        assert rc == 0 and err == "", (rc, err)


@settings(FUZZ, max_examples=max(5, FUZZ.max_examples // 3))  # each loads seven RSA keys
@given(data=st.data(), which=st.sampled_from(["contoso-root-ca.crl", "contoso-issuing-ca.crl"]))
def test_crl_file_in_a_pki_folder(folder, tmp_path, capsys, data, which):
    """``mesh pki revoke`` reads every CA's CRL back before it signs a new one."""
    copy = tmp_path / "pki"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(folder, copy)
    crl = copy / "crl" / which
    good_pem = _crl_pem(crl.read_bytes())
    crl.write_bytes(data.draw(damaged(good_pem)))
    rc, out, err = _cli(capsys, ["pki", "revoke", str(copy), "sensor-1"])
    if rc == 2:
        _one_line(err, which)
    else:
        assert rc == 0 and err == "", (rc, err)


def _crl_pem(data: bytes) -> bytes:
    if data.startswith(b"-----"):
        return data
    from cryptography import x509

    return x509.load_der_x509_crl(data).public_bytes(serialization.Encoding.PEM)


def _scenario_texts() -> list[str]:
    return [p.read_text() for p in sorted(SCENARIOS.glob("*.toml"))]


def _mutate_text(text: str, edits: list[tuple[int, str]]) -> str:
    out = text
    for index, snippet in edits:
        at = index % (len(out) + 1)
        out = out[:at] + snippet + out[at + len(snippet) :]
    return out


_SNIPPETS = st.sampled_from(
    ['"', "=", "[", "]]", "\n", "#", "0", "-1", "true", "{", "}", "'x'", "[[step]]\n",
     "\nrole = 7\n", "\nfault = \"nope\"\n", "at = \"later\"", "\x00", "é", "1e999"]
) | st.text(max_size=12)


@FUZZ
@given(
    text=st.sampled_from(_scenario_texts() or ["[scenario]\n"]),
    edits=st.lists(st.tuples(st.integers(0, 1 << 16), _SNIPPETS), min_size=1, max_size=6),
)
def test_scenario_files(tmp_path, capsys, text, edits):
    path = tmp_path / "fuzzed.toml"
    path.write_bytes(_mutate_text(text, edits).encode("utf-8", "surrogatepass"))
    rc, out, err = _cli(capsys, ["check", str(path)])
    if rc == 2:
        lines = err.splitlines()
        assert lines, "exit 2 with nothing said"
        for line in lines:  # one line per problem, each naming the file
            assert line.startswith(f"mesh: {path}"), err
    else:
        assert rc == 0 and err == "", (rc, err)


@FUZZ
@given(raw=st.binary(max_size=600))
def test_scenario_bytes(tmp_path, capsys, raw):
    path = tmp_path / "fuzzed.toml"
    path.write_bytes(raw)
    rc, out, err = _cli(capsys, ["check", str(path)])
    assert rc in (0, 2)
    if rc == 2:
        assert all(line.startswith(f"mesh: {path}") for line in err.splitlines()), err


# -- what the fuzzing found: fields cryptography parses only when read --


def _der_file(path: Path) -> bytes:
    data = path.read_bytes()
    return _der_of(data) if data.startswith(b"-----") else data


def _retag(der: bytes, marker: bytes, offset: int) -> bytes:
    """Replace the byte ``offset`` after ``marker`` with a tag no parser expects."""
    at = der.index(marker) + len(marker) + offset
    return der[:at] + b"\x00" + der[at + 1 :]


_CDP_OID = bytes.fromhex("0603551d1f")  # id-ce-cRLDistributionPoints
_AKI_OID = bytes.fromhex("0603551d23")  # id-ce-authorityKeyIdentifier


@pytest.mark.parametrize(
    "field, offset",
    [("cdp-extension", 2), ("subject", 11)],  # the tag of the CDP value; of C = "US"
)
def test_lint_of_a_certificate_damaged_where_parsing_is_lazy(folder, tmp_path, capsys, field, offset):
    der = _der_file(folder / "appliances/sensor-1.crt")
    if field == "subject":
        start = der.index(b"0\x1e\x17\r")  # the validity period; the subject follows it
        marker = der[start : start + 32]
    else:
        marker = _CDP_OID
    bad = tmp_path / "damaged.crt"
    bad.write_bytes(_retag(der, marker, offset))
    rc, out, err = _cli(capsys, ["cert", "lint", str(bad)])
    assert rc == 2
    _one_line(err, "damaged.crt")
    assert "damaged certificate" in err


def test_pki_folder_with_a_crl_damaged_where_parsing_is_lazy(folder, tmp_path, capsys):
    copy = tmp_path / "pki"
    shutil.copytree(folder, copy)
    crl = copy / "crl" / "contoso-root-ca.crl"
    crl.write_bytes(_retag(_der_file(crl), _AKI_OID, 2))
    rc, out, err = _cli(capsys, ["pki", "revoke", str(copy), "sensor-1"])
    assert rc == 2
    _one_line(err, "contoso-root-ca.crl")
    assert "damaged CRL" in err


def test_der_key_of_an_unknown_algorithm_is_one_line(folder, tmp_path, capsys):
    """A PKCS#8 DER key whose algorithm OID is damaged (found by the fuzz tests)."""
    from mesh.pki.files import load_key

    key = load_key(folder / "appliances/sensor-1.key")
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    rsa_oid = bytes.fromhex("2a864886f70d010101")
    bad = tmp_path / "damaged.key"
    bad.write_bytes(der.replace(rsa_oid, b"\x00" + rsa_oid[1:], 1))
    argv = ["cert", "check", "--at", EPOCH, "--crt", str(folder / "appliances/sensor-1.crt"),
            "--key", str(bad), "--chain", str(folder / "appliances/sensor-1.pem")]
    rc, out, err = _cli(capsys, argv)
    assert rc == 2
    _one_line(err, "damaged.key")


def test_crl_with_a_damaged_version_is_one_line(folder, tmp_path, capsys):
    """``version INTEGER`` set to 0x07 (no such CRL version): found by the fuzz tests."""
    copy = tmp_path / "pki"
    shutil.copytree(folder, copy)
    crl = copy / "crl" / "contoso-root-ca.crl"
    der = _der_file(crl)
    at = der.index(b"\x02\x01\x01")  # the first INTEGER of tbsCertList: v2
    crl.write_bytes(der[:at] + b"\x02\x01\x07" + der[at + 3 :])
    rc, out, err = _cli(capsys, ["pki", "revoke", str(copy), "sensor-1"])
    assert rc == 2
    _one_line(err, "contoso-root-ca.crl")


@pytest.mark.parametrize("form", ["der", "pem"])
@pytest.mark.parametrize("command", ["lint", "convert"])
def test_certificate_with_a_damaged_version_is_one_line(folder, tmp_path, capsys, form, command):
    """``version [0] INTEGER`` set to 1 (no such X.509 version): found by the fuzz tests."""
    der = _der_file(folder / "appliances/sensor-1.crt")
    der = der.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x01", 1)
    bad = tmp_path / f"damaged.{form}"
    bad.write_bytes(der if form == "der" else _pem("CERTIFICATE", der))
    if command == "lint":
        argv = ["cert", "lint", str(bad)]
    else:
        argv = ["cert", "convert", str(bad), str(tmp_path / "out.crt")]
    rc, out, err = _cli(capsys, argv)
    assert rc == 2
    _one_line(err, bad.name)


# -- mesh node configs: any TOML value in any setting --

_NODE_KEYS = [
    "name", "hostname", "role", "listen", "certificate", "key", "chain", "passphrase", "trust",
    "validation", "revocation", "crl_proxy", "start", "accept_from", "backoff_cap", "api",
    "api_port",
]
_scalars = st.one_of(
    st.text(max_size=20), st.integers(-(2**40), 2**40), st.booleans(),
    st.sampled_from(["sensor", "127.0.0.1:0", "127.0.0.1:1", "hard", "soft",
                     "2027-01-15T09:00:00Z", "http://127.0.0.1:3128", "sensor-1.crt"]),
)
_values = st.one_of(_scalars, st.lists(_scalars, max_size=3))


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a TOML basic string is a JSON string (for these texts)


@FUZZ
@given(
    settings_=st.dictionaries(st.sampled_from(_NODE_KEYS), _values, max_size=8),
    peers=st.dictionaries(
        st.sampled_from(["console", "ha", "siem"]),
        st.one_of(_scalars, st.dictionaries(st.sampled_from(["address", "hostname", "role", "x"]),
                                            _scalars, max_size=3)),
        max_size=2,
    ),
    table=st.sampled_from(["connects_to", "forwards_to"]),
)
def test_node_config(tmp_path, settings_, peers, table):
    """``mesh node`` reads its config before anything runs: every problem is one InputError."""
    from mesh.errors import InputError
    from mesh.node import load_config

    settings_.setdefault("name", "sensor-1")
    settings_.setdefault("role", "sensor")
    lines = [f"{key} = {_toml_value(value)}" for key, value in settings_.items()]
    if peers:
        lines.append(f"[{table}]")
        for name, value in peers.items():
            if isinstance(value, dict):
                inner = ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items())
                lines.append(f"{name} = {{ {inner} }}")
            else:
                lines.append(f"{name} = {_toml_value(value)}")
    path = tmp_path / "node.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except InputError as exc:
        # One line per problem, naming the config (or the file one of its
        # settings names); any other newline can only come from a value the
        # person wrote (a file name).
        written = sum(str(v).count("\n") for v in [*settings_.values(), *peers.values()])
        problems = len(getattr(exc, "problems", [exc]))
        assert exc.line().count("\n") <= written + problems - 1 and str(tmp_path) in exc.line()


def test_node_config_accept_from_not_a_list_is_one_line(tmp_path, capsys):
    """``accept_from = 0`` used to escape as a TypeError (found by the fuzz tests)."""
    path = tmp_path / "node.toml"
    path.write_text('name = "sensor-1"\nrole = "sensor"\naccept_from = 0\n')
    rc, out, err = _cli(capsys, ["node", "--config", str(path)])
    assert rc == 2
    _one_line(err, "accept_from")


# -- scenario files with every key present, and any value in it --

_NAMES = ["s1.contoso.test", "cm.contoso.test", "ha.contoso.test", "siem.contoso.test"]


def _scenario_values():
    from mesh.scenario.model import ACTIONS, CERTIFICATE_RECIPES, LINK_STATES, ROLES

    words = st.sampled_from(
        [*ROLES, *ACTIONS, *CERTIFICATE_RECIPES, *LINK_STATES, *_NAMES, "accepted", "refused",
         "hard", "soft", "10m", "1d", "-5m", "0s", "365d", "2027-01-15T09:00:00Z", "revoked",
         "crl_unreachable", "s1.contoso.test -> cm.contoso.test", "cm.contoso.test -> nowhere",
         "->", ""]
    )
    scalars = st.one_of(words, st.integers(-3, 5000), st.booleans(), st.text(max_size=8),
                        st.floats(allow_nan=False, allow_infinity=False, width=32))
    return st.one_of(scalars, st.lists(scalars, max_size=3))


def _table(keys: list[str]):
    return st.dictionaries(st.sampled_from(keys), _scenario_values(), max_size=len(keys))


def _toml_any(value) -> str:
    if isinstance(value, float):
        return repr(value) if "e" not in repr(value) and "." in repr(value) else f"{value:.3f}"
    return _toml_value(value)


@FUZZ
@given(
    scenario=_table(["name", "description", "start", "api"]),
    pki=_table(["root", "intermediate", "key_size", "crl_validity", "crl_proxy_only"]),
    appliances=st.lists(
        _table(["name", "role", "certificate", "validation", "connects_to", "forwards_to",
                "crl_proxy", "revocation", "valid_for", "count", "api"]),
        max_size=4,
    ),
    steps=st.lists(_table(["after", "action", "target", "certificate", "enabled", "note"]), max_size=3),
    expects=st.lists(
        _table(["link", "state", "code", "after_step", "upload_step", "verdict"]), max_size=3
    ),
)
def test_structured_scenarios(tmp_path, capsys, scenario, pki, appliances, steps, expects):
    lines = ["[scenario]", *(f"{k} = {_toml_any(v)}" for k, v in scenario.items())]
    lines += ["[pki]", *(f"{k} = {_toml_any(v)}" for k, v in pki.items())]
    for name, rows in (("appliance", appliances), ("step", steps), ("expect", expects)):
        for row in rows:
            lines += [f"[[{name}]]", *(f"{k} = {_toml_any(v)}" for k, v in row.items())]
    path = tmp_path / "fuzzed.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
    rc, out, err = _cli(capsys, ["check", str(path)])
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        assert err and all(line.startswith(f"mesh: {path}") for line in err.splitlines()), err

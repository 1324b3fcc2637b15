"""The admin password's scrypt hash, and ``mesh hash-password``."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from mesh.errors import InputError
from mesh.password_hash import DEFAULT_N, PasswordHash, hash_password, read_password


def test_a_hash_round_trips_and_checks():
    made = hash_password("s3cret pass", n=2**10)
    text = made.text()
    assert text.startswith("scrypt$1024$8$1$") and "s3cret" not in text
    parsed = PasswordHash.parse(text, where="x")
    assert parsed == made
    assert parsed.matches("s3cret pass") and not parsed.matches("s3cret pass ")
    assert "s3cret" not in repr(parsed) and parsed.salt.hex() not in repr(parsed)


def test_every_hash_has_its_own_salt():
    assert hash_password("same", n=2**10).text() != hash_password("same", n=2**10).text()


@pytest.mark.parametrize("text", [
    "hunter2", "scrypt$1024$8$1$c2FsdA", "bcrypt$1024$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    "scrypt$x$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "scrypt$1024$8$1$!!$aGFzaA",
    "scrypt$1024$8$1$c2E$aGFzaGhhc2hoYXNoaGFzaA",
])
def test_what_is_not_a_hash_is_one_line_that_does_not_repeat_it(text):
    with pytest.raises(InputError) as info:
        PasswordHash.parse(text, where="node.toml: admin_password_hash")
    line = info.value.line()
    assert line.startswith("node.toml: admin_password_hash: ") and "mesh hash-password" in line
    assert text not in line


@pytest.mark.parametrize("params", ["1000$8$1", f"{2**21}$8$1", "1024$64$1", "1024$8$17"])
def test_parameters_out_of_bounds_are_refused(params):
    with pytest.raises(InputError) as info:
        PasswordHash.parse(f"scrypt${params}$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", where="w")
    assert "out of bounds" in info.value.problem


def test_the_password_comes_from_stdin_when_it_is_no_terminal():
    assert read_password(io.StringIO("pass word\nignored\n")) == "pass word"
    assert read_password(io.StringIO("crlf\r\n")) == "crlf"
    with pytest.raises(InputError):
        read_password(io.StringIO("\n"))


def test_the_command_prints_a_hash_and_takes_no_password_argument(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mesh", "hash-password"], input="pw of admin\n",
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith(f"scrypt${DEFAULT_N}$8$1$") and "pw of admin" not in done.stdout
    assert PasswordHash.parse(line, where="x").matches("pw of admin")
    refused = subprocess.run([sys.executable, "-m", "mesh", "hash-password", "pw"],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert refused.returncode == 2 and "unrecognized arguments" in refused.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_password_is_asked_twice_without_echo(monkeypatch):
    answers = iter(["typed twice", "typed twice", "first", "second"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert read_password(_Terminal()) == "typed twice"
    with pytest.raises(InputError) as info:
        read_password(_Terminal())
    assert info.value.line() == "password: the two entries differ; type the same password twice"
    assert "first" not in info.value.line()

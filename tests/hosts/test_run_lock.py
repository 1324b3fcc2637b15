"""The lock a live ``mesh run --hosts`` holds, so ``mesh hosts clean`` leaves it alone."""

from __future__ import annotations

import os
import stat

import pytest

from mesh.errors import InputError
from mesh.hosts import run_lock


@pytest.fixture(autouse=True)
def locks(tmp_path, monkeypatch):
    folder = tmp_path / "run-mesh"
    monkeypatch.setattr(run_lock, "LOCKS", folder)
    return folder


def test_a_held_run_names_its_process_and_leaves_no_file_after(locks):
    assert run_lock.holder("0a0a0a") is None
    with run_lock.held("0a0a0a"):
        path = locks / "hosts-0a0a0a.lock"
        assert run_lock.holder("0a0a0a") == os.getpid()
        assert run_lock.stale("0a0a0a") is None  # held: not stale, not removed
        assert path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(locks.stat().st_mode) == 0o700
        assert run_lock.holder("0b0b0b") is None
    assert run_lock.holder("0a0a0a") is None
    assert not path.exists()


def test_the_lock_of_a_run_that_is_gone_is_stale(locks):
    # What a SIGKILLed run leaves: the file, its PID in it, nobody holding it.
    locks.mkdir()
    path = locks / "hosts-0c0c0c.lock"
    path.write_text("4242\n")
    assert run_lock.holder("0c0c0c") is None
    assert run_lock.stale("0c0c0c") == path
    assert not path.exists()
    assert run_lock.stale("0c0c0c") is None


def test_a_run_id_in_use_is_one_line(locks):
    with run_lock.held("0d0d0d"):
        with pytest.raises(InputError) as caught:
            with run_lock.held("0d0d0d"):
                pass
    assert caught.value.line() == (
        f"mesh run --hosts: run id 0d0d0d is in use by a run still going (pid {os.getpid()}); "
        "run it again: each run picks a new id"
    )


def test_a_lock_that_cannot_be_made_is_one_line(locks):
    locks.write_text("a file where the folder should be")
    with pytest.raises(InputError) as caught:
        with run_lock.held("0e0e0e"):
            pass
    assert caught.value.line() == (
        f"mesh run --hosts: cannot make its lock {locks}/hosts-0e0e0e.lock (File exists); "
        f"make {locks} writable by root"
    )

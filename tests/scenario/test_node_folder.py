"""A node run's private folder: held while its run lives, swept once the run is gone."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile

import pytest

from mesh.scenario import node_folder as nf


@pytest.fixture(autouse=True)
def temp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _killed_run_folder(temp):
    """What a SIGKILLed run leaves: its folder, a key in it, its lock file free."""
    code = (
        "import os, signal\n"
        "from mesh.scenario.node_folder import node_folder\n"
        "with node_folder() as folder:\n"
        "    (folder / 'sensor.key').write_text('key')\n"
        "    print(folder, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, TMPDIR=str(temp)), check=False)
    assert done.returncode == -9, done.stderr
    return temp / os.path.basename(done.stdout.strip())


def test_a_killed_runs_folder_is_swept_by_the_next_run(temp):
    left = _killed_run_folder(temp)
    assert (left / "sensor.key").exists()
    with nf.node_folder() as folder:
        assert not left.exists()
        assert folder.name.startswith(nf.PREFIX)
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert sorted(p.name for p in folder.iterdir()) == [".lock"]
    assert not folder.exists()


def test_a_live_runs_folder_and_strangers_are_left_alone(temp):
    (temp / f"{nf.PREFIX}older").mkdir()  # no lock: nothing says its run is gone
    (temp / f"{nf.PREFIX}file").write_text("not a folder")
    (temp / f"{nf.PREFIX}link").symlink_to(temp / f"{nf.PREFIX}older")
    with nf.node_folder() as live:
        assert nf.sweep() == []
        assert live.exists()
    assert sorted(p.name for p in temp.iterdir()) == [
        f"{nf.PREFIX}file", f"{nf.PREFIX}link", f"{nf.PREFIX}older"
    ]

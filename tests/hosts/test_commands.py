"""``mesh hosts clean``: removes what a killed run left, and nothing else."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from mesh.cli import main
from mesh.hosts import netns, run_lock

from tests.hosts.conftest import needs_root, processes_end_in
from tests.killed_runs import TWO_APPLIANCES, sigkill_once_started


def test_without_root_it_says_so_in_one_line(capsys, monkeypatch):
    monkeypatch.setattr(netns, "missing_privilege",
                        lambda: "needs root (CAP_NET_ADMIN) to make network namespaces")
    assert main(["hosts", "clean"]) == 2
    assert capsys.readouterr().err == (
        "mesh: mesh hosts clean: needs root (CAP_NET_ADMIN) to make network namespaces; "
        "run it as root\n"
    )


def test_a_run_id_that_is_not_one_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(netns, "missing_privilege", lambda: None)
    assert main(["hosts", "clean", "--run", "mesh-0f0f0f"]) == 2
    assert capsys.readouterr().err == (
        "mesh: --run: 'mesh-0f0f0f' is not a run id; give the 6 hex digits after mesh- in its "
        "namespaces' names\n"
    )


@needs_root
def test_clean_of_one_run_leaves_the_others(capsys):
    ours, theirs = "mesh-0e0e0e-1", "mesh-0d0d0d-1"
    for name in (ours, theirs):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert main(["hosts", "clean", "--run", "0e0e0e"]) == 0
        assert capsys.readouterr().out == f"removed network namespace {ours}\n"
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert theirs in listed and ours not in listed
    finally:
        for name in (ours, theirs):
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)


def test_mesh_hosts_alone_prints_its_help_and_exits_2(capsys):
    assert main(["hosts"]) == 2
    assert capsys.readouterr().err.startswith("usage: mesh hosts [-h] SUBCOMMAND ...\n")


@needs_root
def test_clean_removes_a_leftover_with_the_prefix_and_nothing_else(capsys):
    ours, theirs = "mesh-0f0f0f-1", "meshy-0f0f0f-1"  # the second only looks alike
    for name in (ours, theirs):
        subprocess.run(["ip", "netns", "add", name], check=True)
        (netns.ETC_NETNS / name).mkdir(parents=True)
        (netns.ETC_NETNS / name / "hosts").write_text("127.0.0.1\tlocalhost\n")
    try:
        assert main(["hosts", "clean"]) == 0
        assert capsys.readouterr().out == (
            f"removed network namespace {ours}\nremoved folder /etc/netns/{ours}\n"
        )
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert theirs in listed and ours not in listed
        assert (netns.ETC_NETNS / theirs / "hosts").exists()
        assert main(["hosts", "clean"]) == 0
        assert capsys.readouterr().out.startswith("nothing to clean")
    finally:
        subprocess.run(["ip", "netns", "del", theirs])
        subprocess.run(["ip", "netns", "del", ours], stderr=subprocess.DEVNULL)
        for name in (ours, theirs):
            subprocess.run(["rm", "-rf", str(netns.ETC_NETNS / name)])
        try:
            netns.ETC_NETNS.rmdir()
        except OSError:
            pass


@needs_root
@pytest.mark.slow
def test_after_a_sigkilled_run_its_nodes_end_and_clean_removes_its_namespaces(tmp_path, capsys):
    path = tmp_path / "two.toml"
    path.write_text(TWO_APPLIANCES)
    kept: list[str] = []

    def clean_while_it_runs(pid: int) -> None:
        assert main(["hosts", "clean"]) == 0
        kept.extend(capsys.readouterr().out.splitlines())
        kept.append(f"pid {pid}")

    sigkill_once_started(path, 2, tmp_path, while_alive=clean_while_it_runs)
    # While it ran, clean removed nothing and named it.
    line, pid = kept
    assert re.fullmatch(
        rf"kept run [0-9a-f]{{6}}: its mesh run \({pid}\) is still going; "
        "stop it and it removes its namespaces itself", line
    ), kept
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    namespaces = [line.split()[0] for line in left.splitlines() if line.startswith("mesh-")]
    assert len(namespaces) == 4  # switch, CRL host, two appliances
    # The two nodes and the CRL server end on their own: their run is gone.
    assert processes_end_in(namespaces), namespaces
    assert main(["hosts", "clean"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert not [line for line in out if line.startswith("removed process ")], out
    assert sum(line.startswith("removed network namespace mesh-") for line in out) == 4, out
    assert sum(line.startswith("removed folder /etc/netns/mesh-") for line in out) == 4, out
    assert sum(line.startswith("removed lock file /run/mesh/hosts-") for line in out) == 1, out


@needs_root
def test_clean_leaves_a_run_that_is_still_going_and_names_it(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(run_lock, "LOCKS", tmp_path / "locks")
    live, left = "mesh-0c0c0c-1", "mesh-0b0b0b-1"
    for name in (live, left):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        with run_lock.held("0c0c0c"):
            assert main(["hosts", "clean"]) == 0
            assert capsys.readouterr().out == (
                f"removed network namespace {left}\n"
                f"kept run 0c0c0c: its mesh run (pid {os.getpid()}) is still going; "
                "stop it and it removes its namespaces itself\n"
            )
            assert main(["hosts", "clean", "--run", "0c0c0c"]) == 0
            assert capsys.readouterr().out.startswith("kept run 0c0c0c: ")
            listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
            assert live in listed and left not in listed
        assert main(["hosts", "clean"]) == 0  # its run is gone now
        assert capsys.readouterr().out == f"removed network namespace {live}\n"
    finally:
        for name in (live, left):
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)



@needs_root
def test_clean_ends_what_still_runs_in_a_leftover_namespace(capsys):
    namespace = "mesh-0a0a0a-1"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    stray = subprocess.Popen(["ip", "netns", "exec", namespace, "sleep", "600"])
    try:
        assert main(["hosts", "clean", "--run", "0a0a0a"]) == 0
        assert capsys.readouterr().out == (
            f"removed process {stray.pid} in {namespace}\nremoved network namespace {namespace}\n"
        )
        assert stray.wait(timeout=30) == -9
    finally:
        stray.kill()
        subprocess.run(["ip", "netns", "del", namespace], stderr=subprocess.DEVNULL)

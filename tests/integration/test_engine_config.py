"""A daemon.json change restarts the engines (one host at a time) and the swarm comes back; a second run
with the same options changes nothing."""

import json
import subprocess

from conftest import LAB_NAME, changed, lab_exec, node_list, run_playbook, write_inventory

OPTIONS = {"debug": True}


def restarted(result):
    """Hosts whose engine the run restarted, in order."""
    marker = "TASK [swarmplane.cluster.docker_engine : Restart the engine of "
    return [line.split(marker, 1)[1].split("]", 1)[0] for line in result.stdout.splitlines() if marker in line]


def test_daemon_options_are_applied_by_a_restart_and_the_swarm_survives(lab, tmp_path):
    host_vars = {h: {"docker_engine_daemon_options": OPTIONS} for h in ("manager-1", "worker-1")}
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab, host_vars)
    # The swarm exists before the change (on a fresh lab the first run forms it).
    formed = run_playbook(write_inventory(tmp_path / "plain.yml", ["manager-1"], ["worker-1"], lab))
    assert formed.returncode == 0, formed.stdout[-3000:]
    pids = {h: lab_exec(h, "pidof dockerd").stdout.strip() for h in ("manager-1", "worker-1")}
    first = run_playbook(inventory)
    assert first.returncode == 0, first.stdout[-3000:]
    # One host at a time, the worker first, each back in its swarm before the next.
    assert restarted(first) == ["worker-1", "manager-1"]
    for host in ("manager-1", "worker-1"):
        assert json.loads(lab_exec(host, "cat /etc/docker/daemon.json").stdout) == OPTIONS
        assert lab_exec(host, "docker info --format '{{.Debug}}'").stdout.strip() == "true"
        assert lab_exec(host, "pidof dockerd").stdout.strip() != pids[host]
    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]

    second = run_playbook(inventory)
    assert second.returncode == 0
    assert restarted(second) == []
    assert set(changed(second).values()) == {0}


def test_a_restarted_host_without_init_gets_its_engine_back_and_rejoins(lab, tmp_path):
    # A container host restarts like a machine without an init system: no dockerd, a stale pid file.
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    assert run_playbook(inventory).returncode == 0
    subprocess.run(["docker", "restart", "swarmplane-%s-worker-1" % LAB_NAME], check=True, capture_output=True)
    result = run_playbook(inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    assert lab_exec("worker-1", "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip() == "active"
    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]
    # Its packages are installed (the probe read dpkg's status): started without apt, which would have refreshed
    # lists from a mirror.
    header = "TASK [swarmplane.cluster.docker_engine : Install the packages the probe found missing]"
    assert header in result.stdout, result.stdout[-3000:]  # the engine play ran, for worker-1's stopped engine
    install = result.stdout.split(header, 1)[1].split("TASK [", 1)[0]
    assert "skipping: [worker-1]" in install and install.count("[worker-1]") == 1, install


def test_a_daemon_json_the_engine_rejects_is_put_back_the_engine_returns_and_a_valid_change_applies_later(
    lab, tmp_path
):
    plain = write_inventory(tmp_path / "plain.yml", ["manager-1"], ["worker-1"], lab)
    assert run_playbook(plain).returncode == 0
    before = lab_exec("worker-1", "cat /etc/docker/daemon.json")
    # dockerd refuses to start on a key it does not know.
    rejected = {"swarmplane-no-such-option": True}
    bad = write_inventory(
        tmp_path / "bad.yml", ["manager-1"], ["worker-1"], lab, {"worker-1": {"docker_engine_daemon_options": rejected}}
    )
    failed = run_playbook(bad)
    assert failed.returncode != 0
    assert restarted(failed) == ["worker-1"]
    assert "host worker-1: its engine was restarted to apply a new configuration and is not back" in failed.stdout
    assert "daemon.json was put back as it was before this run" in failed.stdout
    assert "The engine is back on it, in its swarm." in failed.stdout
    assert "swarmplane-no-such-option" in failed.stdout  # the engine's own words, from its log
    # The old file, the engine running on it and the node back in its swarm.
    after = lab_exec("worker-1", "cat /etc/docker/daemon.json")
    assert (after.returncode, after.stdout) == (before.returncode, before.stdout)
    # The backup went back into place: no copy left beside it.
    assert [f for f in lab_exec("worker-1", "ls /etc/docker").stdout.split() if f.startswith("daemon.json.")] == []
    assert lab_exec("worker-1", "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip() == "active"
    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]

    # The next run sees the difference and applies a valid change.
    valid = {"labels": ["swarmplane-test=rejected-then-valid"]}
    good = write_inventory(
        tmp_path / "good.yml", ["manager-1"], ["worker-1"], lab, {"worker-1": {"docker_engine_daemon_options": valid}}
    )
    applied = run_playbook(good)
    assert applied.returncode == 0, applied.stdout[-3000:]
    assert restarted(applied) == ["worker-1"]
    assert json.loads(lab_exec("worker-1", "cat /etc/docker/daemon.json").stdout) == valid
    assert [f for f in lab_exec("worker-1", "ls /etc/docker").stdout.split() if f.startswith("daemon.json.")] == []
    labels = lab_exec("worker-1", "docker info --format '{{json .Labels}}'").stdout
    assert "swarmplane-test=rejected-then-valid" in labels
    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]

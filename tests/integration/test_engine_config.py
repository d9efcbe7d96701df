"""A daemon.json change restarts the engines (one host at a time) and the swarm comes back; a second run
with the same options changes nothing."""

import json
import subprocess

from conftest import LAB_NAME, changed, lab_exec, node_list, run_playbook, write_inventory

OPTIONS = {"debug": True}


def test_daemon_options_are_applied_by_a_restart_and_the_swarm_survives(lab, tmp_path):
    host_vars = {h: {"docker_engine_daemon_options": OPTIONS} for h in ("manager-1", "worker-1")}
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab, host_vars)
    first = run_playbook(inventory)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "RUNNING HANDLER [swarmplane.cluster.docker_engine : Restart the Docker engine]" in first.stdout
    for host in ("manager-1", "worker-1"):
        assert json.loads(lab_exec(host, "cat /etc/docker/daemon.json").stdout) == OPTIONS
        assert lab_exec(host, "docker info --format '{{.Debug}}'").stdout.strip() == "true"
    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]

    second = run_playbook(inventory)
    assert second.returncode == 0
    assert "RUNNING HANDLER" not in second.stdout
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

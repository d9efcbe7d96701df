"""What an operator checks by hand after cluster.yml: `docker node ls` on the manager, `docker info` on
every node, and that no join token was left in a file or in the Ansible output."""

import json
import os
from pathlib import Path

import testinfra.utils.ansible_runner

INVENTORY = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"])
MANAGERS = INVENTORY.get_hosts("managers")
WORKERS = INVENTORY.get_hosts("workers")
testinfra_hosts = MANAGERS + WORKERS


def _manager():
    return testinfra.get_host("ansible://" + MANAGERS[0], ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def _nodes():
    out = _manager().check_output("docker node ls --format '{{json .}}'")
    return [json.loads(line) for line in out.splitlines()]


def _tokens():
    manager = _manager()
    return [manager.check_output("docker swarm join-token -q %s" % role).strip() for role in ("worker", "manager")]


def test_node_is_an_active_swarm_member(host):
    state = host.check_output("docker info --format '{{.Swarm.LocalNodeState}}'")
    assert state == "active"


def test_every_inventory_host_is_a_ready_node():
    nodes = _nodes()
    assert sorted(n["Hostname"] for n in nodes) == sorted(MANAGERS + WORKERS)
    assert {n["Status"] for n in nodes} == {"Ready"}


def test_exactly_one_leader_and_managers_are_managers():
    nodes = {n["Hostname"]: n for n in _nodes()}
    assert len([n for n in nodes.values() if n["ManagerStatus"] == "Leader"]) == 1
    for manager in MANAGERS:
        assert nodes[manager]["ManagerStatus"] in ("Leader", "Reachable")


def test_workers_are_workers():
    nodes = {n["Hostname"]: n for n in _nodes()}
    for worker in WORKERS:
        assert nodes[worker]["ManagerStatus"] == ""
    for worker in WORKERS:
        role = _manager().check_output("docker node inspect --format '{{.Spec.Role}}' %s" % worker)
        assert role == "worker"


def test_no_join_token_in_files_on_the_host(host):
    for token in _tokens():
        secret = token.split("-")[-1]
        found = host.run("grep -rlsF -- %s /tmp /root /var/log /etc" % secret)
        assert found.stdout.strip() == "", "join token found in %s" % found.stdout


def test_no_join_token_in_the_ansible_output():
    log = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "ansible.log"
    text = log.read_text()
    assert "Join the managers and workers" in text  # the log is the converge's, not an empty file
    for token in _tokens():
        assert token.split("-")[-1] not in text

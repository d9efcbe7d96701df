"""With docker_engine_firewall_manage and an active ufw (default deny incoming), cluster.yml opens exactly the
swarm's ports, the worker joins the manager through them, and a second run adds nothing."""

import pytest
from conftest import changed, lab_exec, node_list, run_playbook, write_inventory

HOSTS = ("manager-1", "worker-1")


@pytest.fixture
def ufw_active(lab):
    for host in HOSTS:
        enabled = lab_exec(host, "ufw allow 22/tcp && ufw --force enable")
        assert enabled.returncode == 0, enabled.stderr
    try:
        yield
    finally:
        for host in HOSTS:
            lab_exec(host, "ufw --force reset")


def ufw_rules(host):
    return lab_exec(host, "LC_ALL=C ufw status").stdout


def test_swarm_ports_opened_in_ufw_and_the_cluster_forms_through_them(lab, tmp_path, ufw_active):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    # Earlier tests formed the swarm: the worker leaves so that it has to join again through the firewall.
    lab_exec("worker-1", "docker swarm leave")
    first = run_playbook(inventory, "-e", "docker_engine_firewall_manage=true")
    assert first.returncode == 0, first.stdout[-3000:]

    manager_rules, worker_rules = ufw_rules("manager-1"), ufw_rules("worker-1")
    for rule in ("7946/tcp", "7946/udp", "4789/udp"):
        assert rule in manager_rules and rule in worker_rules
    assert "2377/tcp" in manager_rules
    assert "2377/tcp" not in worker_rules  # the control plane port is for managers only
    assert "esp" in manager_rules.lower()

    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]

    second = run_playbook(inventory, "-e", "docker_engine_firewall_manage=true")
    assert second.returncode == 0
    assert set(changed(second).values()) == {0}

"""With docker_engine_firewall_manage and an active ufw (default deny incoming), cluster.yml opens exactly the
swarm's ports, to the cluster's members only (docker_engine_firewall_sources, by default the inventory's swarm
hosts): the worker joins the manager through them, a host outside the cluster (the controller) cannot reach them,
the any-source rules of earlier versions are removed, and a second run adds nothing."""

import socket

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


def swarm_rule_sources(host):
    """{(port, source)} of the ALLOW rules for the swarm's ports and ESP, as `ufw status` lists them."""
    rules = set()
    for line in ufw_rules(host).splitlines():
        to, action, source = (line.split("ALLOW", 1)[0].strip(), "ALLOW" in line, line.split("ALLOW", 1)[-1])
        source = source.split("#", 1)[0].strip()
        if action and not to.startswith("22/tcp") and not to.startswith("22 "):
            rules.add((to.replace(" (v6)", ""), source.replace(" (v6)", "")))
    return rules


def reachable(address, port):
    try:
        socket.create_connection((address, port), timeout=3).close()
    except OSError:
        return False
    return True


def test_swarm_ports_opened_in_ufw_and_the_cluster_forms_through_them(lab, tmp_path, ufw_active):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    hosts = lab["all"]["children"]["swarm"]["children"]
    address = {h: hv["ansible_host"] for group in hosts.values() for h, hv in (group.get("hosts") or {}).items()}
    members = sorted(address[h] for h in HOSTS)
    # Earlier tests formed the swarm: the worker leaves so that it has to join again through the firewall.
    lab_exec("worker-1", "docker swarm leave")
    # What earlier versions of the role added: the gossip port open to any source.
    assert lab_exec("manager-1", "ufw allow 7946/tcp").returncode == 0
    first = run_playbook(inventory, "-e", "docker_engine_firewall_manage=true")
    assert first.returncode == 0, first.stdout[-3000:]

    for host in HOSTS:
        ports = ["7946/tcp", "7946/udp", "4789/udp"] + (["2377/tcp"] if host == "manager-1" else [])
        wanted = {(port, source) for port in ports for source in members}
        wanted |= {("Anywhere", "%s/esp" % source) for source in members}
        # Each port and ESP open to each member, and to nothing else (the any-source rule is gone).
        assert swarm_rule_sources(host) == wanted, ufw_rules(host)

    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]
    # The controller is no member: the manager's control plane and gossip ports do not answer it.
    assert not reachable(address["manager-1"], 2377)
    assert not reachable(address["manager-1"], 7946)
    assert lab_exec("worker-1", "timeout 3 bash -c '</dev/tcp/%s/2377'" % address["manager-1"]).returncode == 0

    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]

    second = run_playbook(inventory, "-e", "docker_engine_firewall_manage=true")
    assert second.returncode == 0
    assert set(changed(second).values()) == {0}


def test_a_member_whose_address_is_unknown_keeps_every_rule_and_is_named(lab, tmp_path, ufw_active):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    first = run_playbook(inventory, "-e", "docker_engine_firewall_manage=true")
    assert first.returncode == 0, first.stdout[-3000:]
    opened = swarm_rule_sources("manager-1")
    # A swarmplane rule for a source the inventory's members no longer have: stale when every member is known.
    stale = "10.99.99.99"
    added = lab_exec("manager-1", "ufw allow from %s to any port 7946 proto tcp comment swarmplane" % stale)
    assert added.returncode == 0, added.stderr
    # worker-9 is down in this run and named by a DNS name: its address is not known, so nothing is deleted.
    gone = write_inventory(
        tmp_path / "gone.yml",
        ["manager-1"],
        ["worker-1", "worker-9"],
        lab,
        {"worker-9": {"ansible_host": "worker-9.swarmplane.invalid"}},
    )
    kept = run_playbook(gone, "-e", "docker_engine_firewall_manage=true")
    assert kept.returncode == 0, kept.stdout[-3000:]
    text = " ".join(kept.stdout.split())
    said = text[text.find("The address of these swarm hosts") :][:700]
    assert said.startswith("The address of these swarm hosts is not known in this run: worker-9: "), text[-3000:]
    assert "its ansible_host (worker-9.swarmplane.invalid) is a name, not an address" in said, said
    assert "docker_engine_firewall_sources" in said, said
    assert swarm_rule_sources("manager-1") == opened | {("7946/tcp", stale)}, ufw_rules("manager-1")
    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]

    # Every member known again: the stale rule goes, the members' rules stay.
    known = run_playbook(inventory, "-e", "docker_engine_firewall_manage=true")
    assert known.returncode == 0, known.stdout[-3000:]
    assert "The address of these swarm hosts" not in known.stdout
    assert swarm_rule_sources("manager-1") == opened, ufw_rules("manager-1")

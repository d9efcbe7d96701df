"""Bad inventories fail before anything changes, with a message naming the host, the variable and the fix;
after the fix the same run converges. Runs before test_runner.py forms the swarm on the same hosts."""

import pytest
from conftest import lab_exec, run_playbook, write_inventory


def assert_untouched(*hosts):
    for host in hosts:
        assert lab_exec(host, "pgrep -x dockerd").returncode == 1, "%s: dockerd was started by a failed run" % host


def test_empty_managers_group_fails_before_contacting_hosts(lab, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", [], ["worker-1"], lab)
    result = run_playbook(inventory)
    assert result.returncode != 0
    assert "inventory group 'managers' is empty" in result.stdout
    assert "Fix: put a host under managers" in result.stdout
    assert "Gather network facts" not in result.stdout
    assert_untouched("worker-1")


def test_host_in_both_groups_is_named(lab, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["manager-1", "worker-1"], lab)
    result = run_playbook(inventory)
    assert result.returncode != 0
    assert "host manager-1 is in both 'managers' and 'workers'" in result.stdout
    assert_untouched("manager-1", "worker-1")


def test_advertise_address_not_on_host_names_host_variable_and_addresses(lab, tmp_path):
    inventory = write_inventory(
        tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab, {"worker-1": {"swarm_advertise_addr": "192.0.2.99"}}
    )
    result = run_playbook(inventory)
    assert result.returncode != 0
    worker_addr = lab["all"]["children"]["swarm"]["children"]["workers"]["hosts"]["worker-1"]["ansible_host"]
    assert "host worker-1: swarm_advertise_addr=192.0.2.99 is not an address of this host" in result.stdout
    assert worker_addr in result.stdout.split("swarm_advertise_addr=192.0.2.99", 1)[1]
    assert "Fix: set swarm_advertise_addr to one of them" in result.stdout
    assert_untouched("manager-1", "worker-1")


def test_unknown_advertise_interface_is_named(lab, tmp_path):
    inventory = write_inventory(
        tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab, {"manager-1": {"swarm_advertise_interface": "eth9"}}
    )
    result = run_playbook(inventory)
    assert result.returncode != 0
    assert "host manager-1: swarm_advertise_interface=eth9 does not exist (interfaces:" in result.stdout
    assert_untouched("manager-1", "worker-1")


def test_unreachable_manager_without_a_swarm_stops_the_run(lab, tmp_path):
    # Port 1 of the lab host refuses at once: the connection stays on the project's own test host.
    inventory = write_inventory(
        tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab, {"manager-1": {"ansible_port": 1}}
    )
    result = run_playbook(inventory)
    assert result.returncode != 0
    assert "host manager-1 (" in result.stdout and ":1) is unreachable" in result.stdout
    assert "Fix: correct ansible_host/ansible_port or SSH access for it" in result.stdout
    assert_untouched("worker-1")


@pytest.mark.parametrize("options", [{"live-restore": True}])
def test_live_restore_is_refused(lab, tmp_path, options):
    inventory = write_inventory(
        tmp_path / "hosts.yml",
        ["manager-1"],
        ["worker-1"],
        lab,
        {"worker-1": {"docker_engine_daemon_options": options}},
    )
    result = run_playbook(inventory)
    assert result.returncode != 0
    assert "host worker-1: docker_engine_daemon_options sets live-restore: true" in result.stdout
    assert_untouched("manager-1", "worker-1")


INGRESS_WEB = [dict(name="web", image="web:v1", publish=[dict(target=8000, published=8080)])]


def test_a_fabric_subnet_too_small_for_the_inventory_is_refused(lab, tmp_path):
    inventory = write_inventory(
        tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab, all_vars={"fabric_subnet": "10.77.0.0/31"}
    )
    result = run_playbook(inventory)
    assert result.returncode != 0
    assert "fabric_subnet=10.77.0.0/31 has 0 host addresses for 2 fabric hosts" in result.stdout
    assert "Fix: use a larger subnet" in result.stdout
    assert_untouched("manager-1", "worker-1")


def test_load_balancer_declarations_are_checked_before_anything_changes(lab, tmp_path):
    # worker-1 is a swarm node and a balancer whose VIP port is the routing mesh's 8080; manager-1 shares its VIP.
    inventory = write_inventory(
        tmp_path / "hosts.yml",
        ["manager-1"],
        ["worker-1"],
        lab,
        {"worker-1": {"edge_lb_vip": "192.0.2.100"}, "manager-1": {"edge_lb_vip": "192.0.2.100"}},
        loadbalancers=["manager-1", "worker-1"],
        all_vars={"swarm_services": INGRESS_WEB},
    )
    result = run_playbook(inventory)
    text = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "host worker-1: edge_lb_vip=192.0.2.100 is also the VIP of manager-1" in text
    assert "host manager-1 is a load balancer and a swarm node: its VIP port 8080/tcp (service web)" in text
    assert "Fix: map it to a free port with edge_lb_ports" in text
    assert_untouched("manager-1", "worker-1")


def test_an_init_the_engine_refuses_stops_every_host_with_the_engines_words(lab, tmp_path):
    # The engines start (nothing in the inventory is wrong), then the engine refuses the listen address: the init's
    # result is hidden (it would carry the join tokens), so its message is reported by the task after it.
    inventory = write_inventory(
        tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab, all_vars={"swarm_listen_addr": "192.0.2.1:2377"}
    )
    result = run_playbook(inventory)
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert "host manager-1: docker swarm init failed:" in text
    assert "192.0.2.1:2377: bind: cannot assign requested address" in text
    assert "No host joined. Fix: correct what the engine refused" in text
    assert "Join the managers and workers" not in text  # every host stopped there, none tried to join without a token
    for host in ("manager-1", "worker-1"):
        state = lab_exec(host, "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip()
        assert state == "inactive"


def test_rerun_after_the_fix_converges(lab, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    result = run_playbook(inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    for host in ("manager-1", "worker-1"):
        state = lab_exec(host, "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip()
        assert state == "active"


def test_unreachable_worker_does_not_block_a_run_once_the_swarm_exists(lab, tmp_path):
    # Runs after the swarm was formed above; worker-1 is unreachable (port 1 refuses at once).
    inventory = write_inventory(
        tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab, {"worker-1": {"ansible_port": 1}}
    )
    result = run_playbook(inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    text = " ".join(result.stdout.split())  # the warning is wrapped over lines
    assert "host worker-1 (" in text
    assert "it is skipped in this run (the rest of the cluster is handled)" in text
    assert "Show the cluster (docker node ls)" in text

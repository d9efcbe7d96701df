"""Decisions of plugins/filter/swarm.py: preflight, bootstrap host, join and reconcile plans, the node table.

hostvars are plain dicts here: {host: {"ansible_facts": {...}, "swarm_probe": {...}, ...}}, as the plays see them.
"""

from __future__ import annotations

import pytest

from ansible_collections.swarmplane.cluster.plugins.filter.swarm import (
    FilterModule,
    swarm_advertise_address,
    swarm_bootstrap_host,
    swarm_hosts_to_join,
    swarm_inventory_errors,
    swarm_join_availability,
    swarm_live_managers,
    swarm_node_ids,
    swarm_node_table,
    swarm_preflight,
    swarm_probe_hosts,
    swarm_reconcile_plan,
)

ADDRESSES = {"m1": "10.0.0.1", "m2": "10.0.0.2", "m3": "10.0.0.3", "w1": "10.0.0.21", "w2": "10.0.0.22"}
GROUPS = {"managers": ["m1", "m2", "m3"], "workers": ["w1", "w2"]}
ALL_HOSTS = ["m1", "m2", "m3", "w1", "w2"]


def facts(addr, ipv6=()):
    return {
        "default_ipv4": {"address": addr},
        "all_ipv4_addresses": [addr, "172.17.0.1"],
        "all_ipv6_addresses": list(ipv6),
        "interfaces": ["lo", "eth0", "docker0"],
        "eth0": {"ipv4": {"address": addr}},
        "lo": {"ipv4": {"address": "127.0.0.1"}},
        "docker0": {"ipv4": {"address": "172.17.0.1"}},
    }


def inactive_probe():
    return dict(swarm_state="inactive", in_swarm=False, is_manager=False, node_id="", cluster_id="", remote_managers=[])


def manager_probe(host, cluster="cluster-1", leader="m1", nodes=None):
    """A live manager's swarm_info: engine hostnames equal inventory names here."""
    return dict(
        swarm_state="active",
        in_swarm=True,
        is_manager=True,
        node_id="id-" + host,
        cluster_id=cluster,
        hostname=host,
        leader=leader,
        remote_managers=[dict(node_id="id-m1", addr="10.0.0.1:2377")],
        nodes=[dict(id="id-" + h) for h in (nodes if nodes is not None else ALL_HOSTS)],
    )


def worker_probe(host, managers=("10.0.0.1:2377",)):
    return dict(
        swarm_state="active",
        in_swarm=True,
        is_manager=False,
        node_id="id-" + host,
        cluster_id="",
        remote_managers=[dict(node_id="id-" + a, addr=a) for a in managers],
    )


def unreachable_probe(msg="Failed to connect to the host via ssh: Connection refused\n"):
    return dict(unreachable=True, msg=msg)


def hostvars_of(probes=None, **extra):
    """hostvars of the five hosts; probes maps host -> swarm_probe, extra maps host -> more host variables."""
    probes = probes or {}
    result = {}
    for host, addr in ADDRESSES.items():
        result[host] = {"ansible_facts": facts(addr), "swarm_probe": probes.get(host, inactive_probe())}
        result[host].update(extra.get(host, {}))
    return result


def live_cluster_probes():
    """m1 (leader), m2, m3 managers and w1, w2 workers of one swarm."""
    probes = {h: manager_probe(h) for h in ("m1", "m2", "m3")}
    probes.update({h: worker_probe(h) for h in ("w1", "w2")})
    return probes


# --------------------------------------------------------------------------- swarm_node_ids


def test_node_ids_come_from_this_runs_init_or_join_before_the_probe():
    hostvars = {
        "m1": dict(swarm_bootstrap_result=dict(changed=True, node_id="new-m1"), swarm_probe=dict(node_id="")),
        "m2": dict(swarm_bootstrap_result=dict(skipped=True), swarm_join_result=dict(node_id="new-m2")),
        "m3": dict(swarm_join_result=dict(failed=True, msg="refused"), swarm_probe=dict(in_swarm=False)),
        "w1": dict(swarm_join_result=dict(node_id="new-w1"), swarm_probe=dict(node_id="old-w1")),
        "w2": dict(swarm_join_result=dict(skipped=True), swarm_probe=dict(node_id="old-w2")),
        "w3": dict(swarm_probe=dict(in_swarm=False)),
    }
    assert swarm_node_ids(["m1", "m2", "m3", "w1", "w2", "w3"], hostvars) == {
        "m1": "new-m1",
        "m2": "new-m2",
        "m3": "",
        "w1": "new-w1",
        "w2": "old-w2",
        "w3": "",
    }


# --------------------------------------------------------------------------- swarm_probe_hosts


def test_preflight_probes_the_load_balancers_only_when_the_inventory_has_them():
    assert swarm_probe_hosts(GROUPS) == "swarm"
    assert swarm_probe_hosts(dict(GROUPS, loadbalancers=["lb1"])) == "swarm:loadbalancers"


# --------------------------------------------------------------------------- swarm_inventory_errors


def test_valid_groups_have_no_inventory_errors():
    assert swarm_inventory_errors(GROUPS) == []


@pytest.mark.parametrize("groups", [{"workers": ["w1"]}, {"managers": [], "workers": ["w1"]}, {"managers": None}])
def test_empty_managers_group_is_an_error(groups):
    errors = swarm_inventory_errors(groups)
    assert len(errors) == 1
    assert errors[0].startswith("inventory group 'managers' is empty: a swarm needs at least one manager.")


def test_every_host_in_both_groups_is_an_error_in_name_order():
    errors = swarm_inventory_errors({"managers": ["m2", "m1", "x"], "workers": ["w1", "m2", "m1"]})
    assert [e.split(" is in both")[0] for e in errors] == ["host m1", "host m2"]
    assert "is in both 'managers' and 'workers': a node has one role" in errors[0]


# --------------------------------------------------------------------------- swarm_advertise_address


def test_explicit_advertise_address_wins_over_interface_and_default_route():
    host_vars = {
        "ansible_facts": facts("10.0.0.1"),
        "swarm_advertise_addr": "10.5.5.5",
        "swarm_advertise_interface": "eth0",
    }
    assert swarm_advertise_address(host_vars) == "10.5.5.5"


def test_advertise_interface_gives_its_ipv4_address():
    host_vars = {"ansible_facts": facts("10.0.0.1"), "swarm_advertise_interface": "docker0"}
    assert swarm_advertise_address(host_vars) == "172.17.0.1"


def test_dashed_interface_name_is_read_from_the_underscored_fact():
    host_facts = dict(
        facts("10.0.0.1"), interfaces=["lo", "eth0", "br-lan"], br_lan={"ipv4": {"address": "192.168.7.2"}}
    )
    assert (
        swarm_advertise_address({"ansible_facts": host_facts, "swarm_advertise_interface": "br-lan"}) == "192.168.7.2"
    )


def test_default_ipv4_is_advertised_when_nothing_is_set():
    assert swarm_advertise_address({"ansible_facts": facts("10.0.0.1"), "swarm_advertise_addr": ""}) == "10.0.0.1"


def test_no_advertise_address_without_default_route_or_interface_ipv4():
    assert swarm_advertise_address({"ansible_facts": {}}) is None
    host_facts = dict(facts("10.0.0.1"), eth1={"ipv6": [{"address": "fd00::1"}]})
    assert swarm_advertise_address({"ansible_facts": host_facts, "swarm_advertise_interface": "eth1"}) is None


# --------------------------------------------------------------------------- swarm_preflight: inventory and hosts


def test_healthy_inventory_of_new_hosts_passes_preflight():
    assert swarm_preflight(GROUPS, hostvars_of(), ALL_HOSTS) == dict(errors=[], warnings=[])


def test_healthy_live_cluster_passes_preflight():
    assert swarm_preflight(GROUPS, hostvars_of(live_cluster_probes()), ALL_HOSTS) == dict(errors=[], warnings=[])


def test_preflight_reports_an_empty_managers_group():
    result = swarm_preflight({"workers": ["w1"]}, hostvars_of(), ["w1"])
    assert len(result["errors"]) == 1
    assert result["errors"][0].startswith("inventory group 'managers' is empty")


def test_preflight_reports_a_host_in_both_groups():
    groups = {"managers": ["m1"], "workers": ["m1", "w1"]}
    errors = swarm_preflight(groups, hostvars_of(), ["m1", "w1"])["errors"]
    assert errors == [
        "host m1 is in both 'managers' and 'workers': a node has one role. Fix: remove it from one of the two groups."
    ]


def test_advertise_address_not_on_host_is_an_error_listing_the_hosts_addresses():
    hostvars = hostvars_of(w1={"swarm_advertise_addr": "10.9.9.9:2377"})
    hostvars["w1"]["ansible_facts"]["all_ipv6_addresses"] = ["fd00::21"]
    errors = swarm_preflight(GROUPS, hostvars, ALL_HOSTS)["errors"]
    assert errors == [
        "host w1: swarm_advertise_addr=10.9.9.9:2377 is not an address of this host "
        "(it has: 10.0.0.21, 172.17.0.1, fd00::21). "
        "Fix: set swarm_advertise_addr to one of them, or unset it to use the default IPv4."
    ]


def test_advertise_address_of_a_host_without_addresses_says_none():
    hostvars = hostvars_of(w1={"swarm_advertise_addr": "10.9.9.9", "ansible_facts": {}})
    (error,) = swarm_preflight(GROUPS, hostvars, ALL_HOSTS)["errors"]
    assert "(it has: none)" in error


@pytest.mark.parametrize("addr", ["10.0.0.21", "10.0.0.21:2377", "[fd00::21]:2377", "fd00::21"])
def test_advertise_address_of_the_host_is_accepted_with_or_without_port(addr):
    hostvars = hostvars_of(w1={"swarm_advertise_addr": addr})
    hostvars["w1"]["ansible_facts"]["all_ipv6_addresses"] = ["fd00::21"]
    assert swarm_preflight(GROUPS, hostvars, ALL_HOSTS)["errors"] == []


def test_unknown_advertise_interface_is_an_error_listing_the_interfaces():
    errors = swarm_preflight(GROUPS, hostvars_of(w2={"swarm_advertise_interface": "ens5"}), ALL_HOSTS)["errors"]
    assert errors == [
        "host w2: swarm_advertise_interface=ens5 does not exist (interfaces: docker0, eth0, lo). "
        "Fix: name one of them, or unset it to use the default IPv4."
    ]


def test_advertise_interface_without_ipv4_is_an_error():
    hostvars = hostvars_of(w2={"swarm_advertise_interface": "eth0"})
    hostvars["w2"]["ansible_facts"]["eth0"] = {"ipv6": [{"address": "fd00::22"}]}
    errors = swarm_preflight(GROUPS, hostvars, ALL_HOSTS)["errors"]
    assert errors == ["host w2: swarm_advertise_interface=eth0 has no IPv4 address. Fix: set swarm_advertise_addr."]


def test_host_without_default_route_and_no_advertise_setting_is_an_error():
    hostvars = hostvars_of()
    hostvars["m3"]["ansible_facts"]["default_ipv4"] = {}
    errors = swarm_preflight(GROUPS, hostvars, ALL_HOSTS)["errors"]
    assert errors == [
        "host m3 has no default IPv4 route, so no address to advertise. "
        "Fix: set swarm_advertise_addr or swarm_advertise_interface for it."
    ]


def test_live_restore_in_docker_engine_daemon_options_is_an_error():
    hostvars = hostvars_of(
        m2={"docker_engine_daemon_options": {"live-restore": True, "log-driver": "local"}},
        w1={"docker_engine_daemon_options": {"live-restore": False}},
    )
    errors = swarm_preflight(GROUPS, hostvars, ALL_HOSTS)["errors"]
    assert errors == [
        "host m2: docker_engine_daemon_options sets live-restore: true, which swarm mode rejects. "
        "Fix: remove live-restore (or set it to false)."
    ]


@pytest.mark.parametrize("state", ["pending", "error"])
def test_pending_or_error_swarm_state_is_an_error_with_the_fix(state):
    probe = dict(inactive_probe(), swarm_state=state, swarm_error="timeout joining 10.9.0.1:2377")
    errors = swarm_preflight(GROUPS, hostvars_of({"w1": probe}), ALL_HOSTS)["errors"]
    assert errors == [
        "host w1: its engine is in swarm state '%s' (timeout joining 10.9.0.1:2377). Fix: make it leave "
        "(ansible -m swarmplane.cluster.swarm -a 'state=absent force=true' w1), then re-run." % state
    ]


def test_locked_swarm_without_the_key_is_an_error_that_says_how_to_give_it():
    probe = dict(inactive_probe(), swarm_state="locked")
    errors = swarm_preflight(GROUPS, hostvars_of({"m2": probe}), ALL_HOSTS)["errors"]
    assert errors == [
        "host m2: its swarm is locked (autolock): its engine restarted and waits for the unlock key, and "
        "swarm_unlock_key is not set. Fix: give the key as swarm_unlock_key (for example from the vault file "
        "swarm_unlock_key_vault_file wrote: -e @<file> --vault-id <id>), or run `docker swarm unlock` on it, "
        "then re-run."
    ]


def test_locked_swarm_with_the_key_is_left_to_the_engine_role_to_unlock():
    probe = dict(inactive_probe(), swarm_state="locked")
    hostvars = hostvars_of({"m2": probe}, m2={"swarm_unlock_key": "SWMKEY-1-x"})
    assert swarm_preflight(GROUPS, hostvars, ALL_HOSTS)["errors"] == []


def test_hosts_outside_the_play_are_not_checked():
    hostvars = hostvars_of(
        w2={"swarm_advertise_addr": "10.9.9.9", "docker_engine_daemon_options": {"live-restore": True}}
    )
    assert swarm_preflight(GROUPS, hostvars, ["m1", "m2", "m3", "w1"]) == dict(errors=[], warnings=[])


# --------------------------------------------------------------------------- swarm_preflight: reachability


def test_unreachable_manager_when_no_swarm_exists_is_an_error():
    hostvars = hostvars_of({"m2": unreachable_probe()}, m2={"ansible_host": "192.0.2.2", "ansible_port": 2222})
    result = swarm_preflight(GROUPS, hostvars, ALL_HOSTS)
    assert result["warnings"] == []
    assert result["errors"] == [
        "host m2 (192.0.2.2:2222) is unreachable: Failed to connect to the host via ssh: Connection refused. "
        "No swarm exists yet, so swarmplane will not form one without this manager. "
        "Fix: correct ansible_host/ansible_port or SSH access for it, or remove it from 'managers'."
    ]


def test_unreachable_manager_is_only_a_warning_when_a_live_manager_exists():
    probes = live_cluster_probes()
    probes["m3"] = unreachable_probe()
    result = swarm_preflight(GROUPS, hostvars_of(probes), ALL_HOSTS)
    assert result["errors"] == []
    assert result["warnings"] == [
        "host m3 (m3) is unreachable: Failed to connect to the host via ssh: Connection refused; "
        "it is skipped in this run (the rest of the cluster is handled)."
    ]


def test_unreachable_worker_is_a_warning_even_when_no_swarm_exists():
    result = swarm_preflight(GROUPS, hostvars_of({"w1": unreachable_probe("timed out")}), ALL_HOSTS)
    assert result["errors"] == []
    assert result["warnings"] == [
        "host w1 (w1) is unreachable: timed out; it is skipped in this run (the rest of the cluster is handled)."
    ]


def test_unreachable_message_drops_ansibles_task_failed_prefix():
    hostvars = hostvars_of(w2={"swarm_probe": {"unreachable": True, "msg": "Task failed: no route to host "}})
    hostvars["w2"]["ansible_facts"] = {}
    result = swarm_preflight(GROUPS, hostvars, ALL_HOSTS)
    assert result["errors"] == []
    assert result["warnings"] == [
        "host w2 (w2) is unreachable: no route to host; it is skipped in this run (the rest of the cluster is handled)."
    ]


# --------------------------------------------------------------------------- swarm_preflight: swarm membership


def test_managers_in_different_swarms_are_an_error():
    probes = {
        "m1": manager_probe("m1", cluster="cluster-b"),
        "m2": manager_probe("m2", cluster="cluster-a"),
        "m3": manager_probe("m3", cluster="cluster-b"),
    }
    errors = swarm_preflight(GROUPS, hostvars_of(probes), ALL_HOSTS)["errors"]
    assert errors == [
        "managers are in different swarms: m2 in cluster-a; m1, m3 in cluster-b. swarmplane will not merge swarms. "
        "Fix: make the hosts of one swarm leave it (swarm state=absent force=true), or split the inventory."
    ]


def test_host_in_a_different_swarm_is_an_error():
    probes = live_cluster_probes()
    probes["w2"] = dict(worker_probe("w2", managers=("10.9.0.1:2377", "10.9.0.2:2377")), node_id="foreign-node")
    errors = swarm_preflight(GROUPS, hostvars_of(probes), ALL_HOSTS)["errors"]
    assert errors == [
        "host w2 is in a swarm that no reachable manager of this inventory manages "
        "(its managers: 10.9.0.1:2377, 10.9.0.2:2377). "
        "Fix: make it leave that swarm (swarm state=absent force=true), or add that swarm's managers "
        "to 'managers', then re-run."
    ]


def test_host_in_a_different_swarm_with_no_known_managers_says_unknown():
    probes = live_cluster_probes()
    probes["w1"] = dict(worker_probe("w1", managers=()), node_id="foreign-node")
    (error,) = swarm_preflight(GROUPS, hostvars_of(probes), ALL_HOSTS)["errors"]
    assert "(its managers: unknown)" in error


def test_manager_group_host_that_is_a_worker_of_the_same_swarm_is_not_an_error():
    probes = live_cluster_probes()
    probes["m3"] = worker_probe("m3")
    assert swarm_preflight(GROUPS, hostvars_of(probes), ALL_HOSTS) == dict(errors=[], warnings=[])


def test_host_not_yet_in_a_swarm_next_to_a_live_swarm_is_not_an_error():
    probes = live_cluster_probes()
    probes["w2"] = inactive_probe()
    assert swarm_preflight(GROUPS, hostvars_of(probes), ALL_HOSTS)["errors"] == []


def test_host_in_a_swarm_is_an_error_when_no_inventory_manager_is_live():
    probes = {"w1": dict(worker_probe("w1", managers=("10.9.0.1:2377",)), node_id="foreign-node")}
    errors = swarm_preflight(GROUPS, hostvars_of(probes), ALL_HOSTS)["errors"]
    assert len(errors) == 1
    assert errors[0].startswith("host w1 is in a swarm that no reachable manager of this inventory manages")


# --------------------------------------------------------------------------- swarm_preflight: manager count


@pytest.mark.parametrize(("count", "tolerates", "one_less_tolerates"), [(2, 0, 1), (4, 1, 3)])
def test_even_manager_count_is_a_warning(count, tolerates, one_less_tolerates):
    managers = ["m%d" % i for i in range(1, count + 1)]
    hostvars = {h: {"ansible_facts": facts("10.0.0.%d" % i)} for i, h in enumerate(managers, 1)}
    result = swarm_preflight({"managers": managers}, hostvars, managers)
    assert result["errors"] == []
    assert result["warnings"] == [
        "%d managers tolerate %d failed manager(s), as %d would: use an odd number of managers."
        % (count, tolerates, one_less_tolerates)
    ]


@pytest.mark.parametrize("count", [1, 3, 5])
def test_odd_manager_count_is_not_a_warning(count):
    managers = ["m%d" % i for i in range(1, count + 1)]
    hostvars = {h: {"ansible_facts": facts("10.0.0.%d" % i)} for i, h in enumerate(managers, 1)}
    assert swarm_preflight({"managers": managers}, hostvars, managers)["warnings"] == []


# --------------------------------------------------------------------------- live managers and bootstrap host


def test_live_managers_are_reachable_active_managers_in_inventory_order():
    probes = live_cluster_probes()
    probes["m1"] = worker_probe("m1")
    probes["m3"] = dict(manager_probe("m3"), unreachable=True)
    hostvars = hostvars_of(probes)
    assert swarm_live_managers(["m3", "m2", "m1"], hostvars, ALL_HOSTS) == ["m2"]
    assert swarm_live_managers(["m2"], hostvars, ["m1"]) == []


def test_bootstrap_prefers_the_leader():
    probes = {h: manager_probe(h, leader="m2") for h in ("m1", "m2", "m3")}
    assert swarm_bootstrap_host(GROUPS["managers"], hostvars_of(probes), ALL_HOSTS) == "m2"


def test_bootstrap_prefers_a_live_manager_over_the_first_in_list():
    probes = {"m3": manager_probe("m3", leader="gone-host")}
    assert swarm_bootstrap_host(GROUPS["managers"], hostvars_of(probes), ALL_HOSTS) == "m3"


def test_bootstrap_takes_the_first_live_manager_when_the_leader_is_not_reachable():
    probes = {h: manager_probe(h, leader="m1") for h in ("m2", "m3")}
    probes["m1"] = unreachable_probe()
    assert swarm_bootstrap_host(GROUPS["managers"], hostvars_of(probes), ALL_HOSTS) == "m2"


def test_empty_leader_name_does_not_match_an_empty_hostname():
    probes = {"m1": dict(manager_probe("m1", leader=""), hostname=""), "m2": manager_probe("m2", leader="m2")}
    assert swarm_bootstrap_host(["m1", "m2"], hostvars_of(probes), ALL_HOSTS) == "m2"


def test_bootstrap_takes_the_first_reachable_manager_when_no_swarm_exists():
    probes = {"m1": unreachable_probe()}
    assert swarm_bootstrap_host(GROUPS["managers"], hostvars_of(probes), ALL_HOSTS) == "m2"


def test_bootstrap_skips_managers_outside_the_play():
    assert swarm_bootstrap_host(GROUPS["managers"], hostvars_of(), ["m3", "w1"]) == "m3"


def test_bootstrap_host_is_none_when_no_manager_is_reachable():
    probes = {h: unreachable_probe() for h in ("m1", "m2", "m3")}
    assert swarm_bootstrap_host(GROUPS["managers"], hostvars_of(probes), ALL_HOSTS) is None
    assert swarm_bootstrap_host(GROUPS["managers"], hostvars_of(), ["w1", "w2"]) is None


# --------------------------------------------------------------------------- hosts to join and join availability


def test_hosts_to_join_are_those_not_active_in_a_swarm_in_given_order():
    probes = live_cluster_probes()
    probes["w2"] = inactive_probe()
    probes["m2"] = dict(inactive_probe(), swarm_state="pending")
    assert swarm_hosts_to_join(["w2", "m1", "m2", "w1"], hostvars_of(probes)) == ["w2", "m2"]


def test_node_availability_overrides_the_group_default():
    host_vars = {"swarm_node_availability": "pause", "swarm_manager_availability": "drain"}
    assert swarm_join_availability("m1", host_vars, GROUPS["managers"]) == "pause"


def test_managers_and_workers_join_with_their_group_availability():
    host_vars = {
        "swarm_node_availability": "",
        "swarm_manager_availability": "drain",
        "swarm_worker_availability": "active",
    }
    assert swarm_join_availability("m1", host_vars, GROUPS["managers"]) == "drain"
    assert swarm_join_availability("w1", host_vars, GROUPS["managers"]) == "active"


def test_join_availability_is_none_when_nothing_is_declared():
    assert swarm_join_availability("w1", {}, GROUPS["managers"]) is None


# --------------------------------------------------------------------------- swarm_reconcile_plan


def node(host, role, availability="Active", labels=None):
    return dict(id="id-" + host, hostname=host, role=role, availability=availability, labels=labels or {})


NODE_IDS = {h: "id-" + h for h in ALL_HOSTS}


def live_nodes():
    return [
        node("m1", "manager"),
        node("m2", "manager"),
        node("m3", "manager"),
        node("w1", "worker"),
        node("w2", "worker"),
    ]


def test_nodes_matching_the_inventory_need_no_change():
    assert swarm_reconcile_plan(live_nodes(), ALL_HOSTS, hostvars_of(), GROUPS["managers"], NODE_IDS) == []


def test_worker_in_managers_group_is_promoted():
    nodes = live_nodes()
    nodes[2] = node("m3", "worker")
    plan = swarm_reconcile_plan(nodes, ALL_HOSTS, hostvars_of(), GROUPS["managers"], NODE_IDS)
    assert plan == [dict(role="manager", node="id-m3", host="m3")]


def test_manager_in_workers_group_is_demoted():
    nodes = live_nodes()
    nodes[3] = node("w1", "manager")
    plan = swarm_reconcile_plan(nodes, ALL_HOSTS, hostvars_of(), GROUPS["managers"], NODE_IDS)
    assert plan == [dict(role="worker", node="id-w1", host="w1")]


def test_promote_sorted_before_demote():
    nodes = live_nodes()
    nodes[3] = node("w1", "manager")
    nodes[2] = node("m3", "worker")
    hostvars = hostvars_of(w2={"swarm_node_availability": "drain"})
    plan = swarm_reconcile_plan(nodes, ["w1", "w2", "m3"], hostvars, GROUPS["managers"], NODE_IDS)
    assert [(c["host"], c.get("role")) for c in plan] == [("m3", "manager"), ("w1", "worker"), ("w2", None)]


def test_availability_is_only_enforced_when_declared():
    nodes = live_nodes()
    nodes[4] = node("w2", "worker", availability="Drain")
    assert swarm_reconcile_plan(nodes, ALL_HOSTS, hostvars_of(), GROUPS["managers"], NODE_IDS) == []
    hostvars = hostvars_of(w2={"swarm_worker_availability": "active"})
    plan = swarm_reconcile_plan(nodes, ALL_HOSTS, hostvars, GROUPS["managers"], NODE_IDS)
    assert plan == [dict(availability="active", node="id-w2", host="w2")]


def test_declared_availability_is_compared_with_the_capitalised_live_value():
    hostvars = hostvars_of(**{h: {"swarm_manager_availability": "active"} for h in ALL_HOSTS})
    assert swarm_reconcile_plan(live_nodes(), ALL_HOSTS, hostvars, GROUPS["managers"], NODE_IDS) == []


def test_labels_only_when_missing_or_different():
    nodes = live_nodes()
    nodes[0] = node("m1", "manager", labels={"zone": "a", "added-by-hand": "yes"})
    hostvars = hostvars_of(m1={"swarm_node_labels": {"zone": "a"}})
    assert swarm_reconcile_plan(nodes, ALL_HOSTS, hostvars, GROUPS["managers"], NODE_IDS) == []

    hostvars = hostvars_of(m1={"swarm_node_labels": {"zone": "b", "rack": 3}})
    plan = swarm_reconcile_plan(nodes, ALL_HOSTS, hostvars, GROUPS["managers"], NODE_IDS)
    assert plan == [dict(labels={"zone": "b", "rack": "3"}, node="id-m1", host="m1")]


def test_label_values_are_compared_as_strings():
    nodes = live_nodes()
    nodes[3] = node("w1", "worker", labels={"rack": "3"})
    hostvars = hostvars_of(w1={"swarm_node_labels": {"rack": 3}})
    assert swarm_reconcile_plan(nodes, ALL_HOSTS, hostvars, GROUPS["managers"], NODE_IDS) == []


def test_one_entry_carries_every_change_of_a_node():
    nodes = live_nodes()
    nodes[1] = node("m2", "worker", availability="Active")
    hostvars = hostvars_of(m2={"swarm_node_availability": "drain", "swarm_node_labels": {"role": "db"}})
    plan = swarm_reconcile_plan(nodes, ALL_HOSTS, hostvars, GROUPS["managers"], NODE_IDS)
    assert plan == [dict(role="manager", availability="drain", labels={"role": "db"}, node="id-m2", host="m2")]


def test_hosts_without_a_live_node_are_skipped():
    nodes = [n for n in live_nodes() if n["id"] != "id-w2"]
    node_ids = dict(NODE_IDS, w1="")
    hostvars = hostvars_of(w1={"swarm_node_labels": {"a": "b"}}, w2={"swarm_node_labels": {"a": "b"}})
    assert swarm_reconcile_plan(nodes, ALL_HOSTS, hostvars, GROUPS["managers"], node_ids) == []


# --------------------------------------------------------------------------- swarm_node_table

TABLE_NODES = [
    dict(
        id="abc123",
        hostname="manager-1",
        status="Ready",
        availability="Active",
        manager_status="Leader",
        engine_version="27.3.1",
        address="10.0.0.1",
    ),
    dict(
        id="def4567890",
        hostname="w1",
        status="Down",
        availability="Drain",
        manager_status="",
        engine_version="24.0.7",
        address="10.0.0.21",
    ),
]
HEADERS = ("ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION", "ADDRESS")


def test_node_table_is_aligned_in_columns_three_spaces_apart():
    assert swarm_node_table(TABLE_NODES).split("\n") == [
        "ID           HOSTNAME    STATUS   AVAILABILITY   MANAGER STATUS   ENGINE VERSION   ADDRESS",
        "abc123       manager-1   Ready    Active         Leader           27.3.1           10.0.0.1",
        "def4567890   w1          Down     Drain                           24.0.7           10.0.0.21",
    ]


def test_every_cell_starts_under_its_header():
    header, *rows = swarm_node_table(TABLE_NODES).split("\n")
    starts = [header.index(h) for h in HEADERS]
    for line, node_values in zip(rows, TABLE_NODES):
        values = [node_values[k] for k in ("id", "hostname", "status", "availability")]
        assert [line.index(v, start) for v, start in zip(values, starts)] == starts[:4]
        assert line[starts[-1] :] == node_values["address"]


def test_leader_marker_is_in_the_manager_status_column():
    header, leader_line, worker_line = swarm_node_table(TABLE_NODES).split("\n")
    column = header.index("MANAGER STATUS")
    assert leader_line[column : column + len("Leader")] == "Leader"
    assert worker_line[column : column + len("MANAGER STATUS")].strip() == ""


def test_current_node_is_marked_with_a_star_and_widens_the_id_column():
    lines = swarm_node_table(TABLE_NODES, self_id="def4567890").split("\n")
    assert lines[2].startswith("def4567890 *   w1 ")
    assert lines[0].index("HOSTNAME") == len("def4567890 *   ")
    assert "*" not in lines[1]


def test_lines_carry_no_trailing_spaces():
    nodes = [dict(TABLE_NODES[1], address=""), TABLE_NODES[0]]
    assert all(line == line.rstrip() for line in swarm_node_table(nodes).split("\n"))
    assert swarm_node_table(nodes).split("\n")[1].endswith("24.0.7")


def test_empty_node_list_prints_the_headers_only():
    assert swarm_node_table([]) == "ID   HOSTNAME   STATUS   AVAILABILITY   MANAGER STATUS   ENGINE VERSION   ADDRESS"
    assert swarm_node_table(None) == swarm_node_table([])


def test_filter_plugin_exposes_the_filters_the_plays_call():
    filters = FilterModule().filters()
    assert sorted(filters) == [
        "swarm_advertise_address",
        "swarm_bootstrap_host",
        "swarm_firewalld_commands",
        "swarm_hosts_to_join",
        "swarm_inventory_errors",
        "swarm_join_availability",
        "swarm_live_managers",
        "swarm_member_addresses",
        "swarm_node_ids",
        "swarm_node_table",
        "swarm_preflight",
        "swarm_probe_hosts",
        "swarm_reconcile_plan",
        "swarm_restart_errors",
        "swarm_restart_order",
        "swarm_restart_warnings",
        "swarm_stale_nodes",
        "swarm_ufw_commands",
        "swarm_unresolved_members",
    ]
    assert filters["swarm_preflight"] is swarm_preflight


# --------------------------------------------------------------------------- swarm_stale_nodes


def test_old_entry_of_a_rejoined_host_is_stale_even_before_it_is_marked_down():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_stale_nodes

    nodes = [
        {"id": "old", "hostname": "worker-1", "address": "10.0.0.3", "status": "Ready", "role": "worker"},
        {"id": "new", "hostname": "worker-1", "address": "10.0.0.3", "status": "Ready", "role": "worker"},
        {"id": "twin", "hostname": "worker-1", "address": "10.0.0.99", "status": "Down", "role": "worker"},
        {"id": "oldmgr", "hostname": "manager-1", "address": "10.0.0.2", "status": "Down", "role": "manager"},
        {"id": "mgr", "hostname": "manager-1", "address": "10.0.0.2", "status": "Ready", "role": "manager"},
    ]
    stale = swarm_stale_nodes(nodes, ["w1", "m1", "w9"], {"w1": "new", "m1": "mgr", "w9": ""})
    # Not the machine with another address; the old manager entry with its role (it is demoted before removal).
    assert stale == [
        {"node": "old", "host": "w1", "role": "worker"},
        {"node": "oldmgr", "host": "m1", "role": "manager"},
    ]


def test_an_old_manager_entry_the_raft_lists_as_reachable_is_stale_only_once_its_node_is_down():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_stale_nodes

    nodes = [
        {"id": "a", "hostname": "manager-1", "address": "10.0.0.2", "role": "manager", "manager_status": "Reachable"},
        {"id": "b", "hostname": "manager-1", "address": "10.0.0.2", "role": "manager", "manager_status": "Leader"},
        {"id": "c", "hostname": "manager-1", "address": "10.0.0.2", "role": "manager", "manager_status": "Unreachable"},
        # The machine's new manager answers at the old entry's address, so the raft may still call it reachable.
        {
            "id": "d",
            "hostname": "manager-1",
            "address": "10.0.0.2",
            "role": "manager",
            "manager_status": "Reachable",
            "status": "Down",
        },
    ]
    assert swarm_stale_nodes(nodes, ["m1"], {"m1": "b"}) == [
        {"node": "c", "host": "m1", "role": "manager"},
        {"node": "d", "host": "m1", "role": "manager"},
    ]


def test_the_entry_of_a_manager_join_that_failed_after_registration_is_stale_and_not_demoted():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_stale_nodes

    nodes = [
        # What node_row makes of it: the CA registered the node, its engine never reported a description.
        {
            "id": "orphan",
            "hostname": None,
            "address": None,
            "status": "Unknown",
            "role": "manager",
            "manager_status": "",
        },
        {"id": "m", "hostname": "manager-1", "address": "10.0.0.2", "status": "Ready", "role": "manager"},
        # Joining right now, already reporting: not taken.
        {"id": "j", "hostname": "worker-2", "address": "10.0.0.4", "status": "Unknown", "role": "worker"},
        # A raft member without a description yet is left alone.
        {
            "id": "r",
            "hostname": "",
            "address": "",
            "status": "Unknown",
            "role": "manager",
            "manager_status": "Reachable",
        },
    ]
    assert swarm_stale_nodes(nodes, ["m1"], {"m1": "m"}) == [
        {"node": "orphan", "host": "(a join that did not finish)", "role": "worker"},
    ]


# --------------------------------------------------------------------------- membership: hosts outside both groups


def test_host_in_swarm_but_in_neither_group_is_an_error_naming_its_groups():
    groups = dict(GROUPS, swarm=ALL_HOSTS + ["m4", "m5"], manager=["m4", "m5"], all=ALL_HOSTS + ["m4", "m5"])
    errors = swarm_inventory_errors(groups)
    assert errors == [
        "host %s is in 'swarm' but in neither 'managers' nor 'workers' (its groups: manager), so its role is unknown. "
        "Fix: put it under managers or workers; a misspelt group name (such as 'manager:') makes a group of its own."
        % host
        for host in ("m4", "m5")
    ]


def test_host_only_in_swarm_says_so():
    errors = swarm_inventory_errors(dict(GROUPS, swarm=ALL_HOSTS + ["x"]))
    assert len(errors) == 1 and "(its groups: swarm only)" in errors[0]


def test_hosts_of_both_groups_are_not_reported_as_outside_them():
    assert swarm_inventory_errors(dict(GROUPS, swarm=ALL_HOSTS)) == []


# --------------------------------------------------------------------------- membership: demotions and quorum


def node_of(host, role="manager", manager_status="Reachable", status="Ready"):
    return dict(
        id="id-" + host,
        hostname=host,
        role=role,
        manager_status=manager_status if role == "manager" else "",
        status=status,
        address=ADDRESSES[host],
    )


def swarm_of(manager_statuses, workers=("w1", "w2")):
    """The node list of a swarm whose managers have these statuses ({host: status}), as the leader lists it."""
    return [
        node_of(h, manager_status=s, status="Ready" if s != "Unreachable" else "Down")
        for h, s in manager_statuses.items()
    ] + [node_of(w, role="worker") for w in workers]


def live_hostvars(nodes, extra=None, probes=None):
    """Every host an active member (managers per the node list), m1 the leader and the driving manager."""
    managers = {n["hostname"] for n in nodes if n["role"] == "manager"}
    all_probes = {}
    for host in ALL_HOSTS:
        if host in managers:
            all_probes[host] = dict(manager_probe(host), nodes=nodes, autolock=False)
        else:
            all_probes[host] = worker_probe(host)
    all_probes.update(probes or {})
    return hostvars_of(all_probes, **(extra or {}))


THREE_MANAGERS = {"m1": "Leader", "m2": "Reachable", "m3": "Reachable"}


def test_demoting_one_manager_of_three_is_allowed():
    nodes = swarm_of(THREE_MANAGERS)
    groups = {"managers": ["m1", "m3"], "workers": ["m2", "w1", "w2"]}
    assert swarm_preflight(groups, live_hostvars(nodes), ALL_HOSTS)["errors"] == []


def test_demoting_two_managers_at_once_is_refused_with_the_arithmetic_and_the_variable():
    nodes = swarm_of(THREE_MANAGERS)
    groups = {"managers": ["m1"], "workers": ["m2", "m3", "w1", "w2"]}
    errors = swarm_preflight(groups, live_hostvars(nodes), ALL_HOSTS)["errors"]
    assert errors == [
        "this run would demote 2 managers at once: m2, m3 (under 'workers' in the inventory, managers in the swarm). "
        "The swarm has 3 managers and tolerates 1 unavailable; after this run it would have 1, tolerating 0. "
        "A misplaced group line demotes managers by accident, so swarmplane demotes one manager per run unless "
        "told otherwise. Nothing was changed. Fix: if this is not meant, put them back under 'managers'; to demote "
        "them, move one per run, or set swarm_allow_bulk_demotion: true to demote them one after another in this run."
    ]


def test_bulk_demotion_is_allowed_when_the_variable_says_so():
    nodes = swarm_of(THREE_MANAGERS)
    groups = {"managers": ["m1"], "workers": ["m2", "m3", "w1", "w2"]}
    hostvars = live_hostvars(nodes, extra={"m1": {"swarm_allow_bulk_demotion": True}})
    assert swarm_preflight(groups, hostvars, ALL_HOSTS)["errors"] == []


def test_demotion_that_costs_the_quorum_is_refused_even_when_bulk_demotion_is_allowed():
    # m3 is down and unreachable over SSH (not in the play): demoting m2 leaves 2 managers, 1 reachable.
    nodes = swarm_of({"m1": "Leader", "m2": "Reachable", "m3": "Unreachable"})
    groups = {"managers": ["m1", "m3"], "workers": ["m2", "w1", "w2"]}
    hostvars = live_hostvars(
        nodes, extra={"m1": {"swarm_allow_bulk_demotion": True}}, probes={"m3": unreachable_probe()}
    )
    errors = swarm_preflight(groups, hostvars, ["m1", "m2", "w1", "w2"])["errors"]
    assert errors == [
        "this run would cost the swarm its quorum: it has 3 managers, 2 reachable (unreachable: m3); demoting m2 "
        "would leave 2 managers of which 1 reachable, and 2 managers need 2 reachable (a majority). Nothing was "
        "changed. Fix: bring m3 back first (start its engine, unlock it), or keep m2 under 'managers', then re-run."
    ]


def test_a_manager_whose_engine_this_run_starts_counts_as_reachable():
    # m3's engine is stopped (reachable over SSH): the engine role starts it before the swarm role demotes m2.
    nodes = swarm_of({"m1": "Leader", "m2": "Reachable", "m3": "Unreachable"})
    groups = {"managers": ["m1", "m3"], "workers": ["m2", "w1", "w2"]}
    stopped = dict(inactive_probe(), docker_available=False)
    hostvars = live_hostvars(nodes, probes={"m3": stopped})
    assert swarm_preflight(groups, hostvars, ALL_HOSTS)["errors"] == []


def test_a_locked_manager_this_run_unlocks_counts_as_reachable():
    nodes = swarm_of({"m1": "Leader", "m2": "Reachable", "m3": "Unreachable"})
    groups = {"managers": ["m1", "m3"], "workers": ["m2", "w1", "w2"]}
    locked = dict(inactive_probe(), swarm_state="locked", docker_available=True)
    hostvars = live_hostvars(nodes, extra={"m3": {"swarm_unlock_key": "SWMKEY-1-x"}}, probes={"m3": locked})
    assert swarm_preflight(groups, hostvars, ALL_HOSTS)["errors"] == []


def test_a_promotion_in_the_same_run_counts_towards_the_quorum_after_it():
    # 3 managers, m3 down for good: demoting m2 alone would leave m1 + m3 (1 of 2); promoting w1 makes it 2 of 3.
    nodes = swarm_of({"m1": "Leader", "m2": "Reachable", "m3": "Unreachable"})
    groups = {"managers": ["m1", "m3", "w1"], "workers": ["m2", "w2"]}
    hostvars = live_hostvars(nodes, probes={"m3": unreachable_probe()})
    assert swarm_preflight(groups, hostvars, ["m1", "m2", "w1", "w2"])["errors"] == []


def test_no_demotion_no_membership_check_even_with_managers_down():
    nodes = swarm_of({"m1": "Leader", "m2": "Unreachable", "m3": "Unreachable"})
    hostvars = live_hostvars(nodes, probes={"m2": unreachable_probe(), "m3": unreachable_probe()})
    errors = swarm_preflight(GROUPS, hostvars, ["m1", "w1", "w2"])["errors"]
    assert not [e for e in errors if "demot" in e or "quorum" in e]


# --------------------------------------------------------------------------- engine restarts


def test_restarts_are_ordered_workers_first_and_the_leader_last():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_restart_order

    nodes = swarm_of(THREE_MANAGERS)
    hostvars = live_hostvars(nodes)
    assert swarm_restart_order(["m1", "m2", "w1", "m3", "w2"], hostvars) == ["w1", "w2", "m2", "m3", "m1"]


def test_only_hosts_with_a_pending_restart_are_ordered():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_restart_order

    hostvars = live_hostvars(swarm_of(THREE_MANAGERS), extra={"m1": {"pending": True}, "w2": {"pending": True}})
    assert swarm_restart_order(ALL_HOSTS, hostvars, "pending") == ["w2", "m1"]


def test_restarting_managers_with_autolock_and_no_key_is_refused_naming_them():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_restart_errors

    nodes = swarm_of(THREE_MANAGERS)
    hostvars = live_hostvars(nodes)
    for host in ("m1", "m2", "m3"):
        hostvars[host]["swarm_probe"]["autolock"] = True
    errors = swarm_restart_errors(["w1", "m2", "m3", "m1"], hostvars, False)
    assert len(errors) == 1
    assert errors[0].startswith("the engines of the managers m2, m3, m1 would restart")
    assert "swarm_unlock_key is not set. Nothing was changed." in errors[0]
    assert swarm_restart_errors(["w1", "m2", "m3", "m1"], hostvars, True) == []


def test_restarting_workers_only_needs_no_key():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_restart_errors

    hostvars = live_hostvars(swarm_of(THREE_MANAGERS))
    hostvars["m1"]["swarm_probe"]["autolock"] = True
    assert swarm_restart_errors(["w1", "w2"], hostvars, False) == []


def test_restarting_a_manager_while_another_is_down_is_refused_with_the_arithmetic():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_restart_errors

    nodes = swarm_of({"m1": "Leader", "m2": "Reachable", "m3": "Unreachable"})
    hostvars = live_hostvars(nodes)
    errors = swarm_restart_errors(["m2"], hostvars, True)
    assert errors == [
        "restarting the engine of a manager (m2) takes it out of the raft until it is back: the swarm has 3 "
        "managers and tolerates 1 unavailable, and m3 is unreachable already, so one more would cost the quorum. "
        "Nothing was restarted. Fix: bring m3 back first (start its engine, unlock it), then re-run."
    ]
    assert swarm_restart_errors(["m2"], live_hostvars(swarm_of(THREE_MANAGERS)), True) == []


def test_a_single_manager_swarm_may_restart_its_manager():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_restart_errors

    hostvars = live_hostvars(swarm_of({"m1": "Leader"}, workers=("w1",)))
    assert swarm_restart_errors(["m1"], hostvars, False) == []


def test_restarting_a_manager_of_two_is_allowed_with_a_warning_that_the_quorum_is_gone_meanwhile():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import (
        swarm_restart_errors,
        swarm_restart_warnings,
    )

    hostvars = live_hostvars(swarm_of({"m1": "Leader", "m2": "Reachable"}))
    assert swarm_restart_errors(["w1", "m2", "m1"], hostvars, True) == []
    assert swarm_restart_warnings(["w1", "m2", "m1"], hostvars) == [
        "restarting the engine of the managers m2, m1, one at a time: the swarm has 2 managers and tolerates none "
        "unavailable, so while each restarts the swarm has no quorum (no scheduling, no service or node changes) "
        "until it is back. Fix, to restart without that: run an odd number of managers (3 tolerate 1)."
    ]
    assert swarm_restart_warnings(["w1"], hostvars) == []
    assert swarm_restart_warnings(["m2"], live_hostvars(swarm_of(THREE_MANAGERS))) == []
    assert swarm_restart_warnings(["m1"], live_hostvars(swarm_of({"m1": "Leader"}))) == []


# --------------------------------------------------------------------------- firewall


def test_member_addresses_are_the_advertise_and_data_path_addresses_of_the_swarm_hosts():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_member_addresses

    hostvars = hostvars_of(m2={"swarm_data_path_addr": "192.168.9.2"}, w2={"swarm_advertise_addr": "10.5.5.5:2377"})
    hostvars["lb"] = {"ansible_host": "10.0.9.9"}
    groups = dict(GROUPS, loadbalancers=["lb"])
    assert swarm_member_addresses(groups, hostvars) == [
        "10.0.0.1",
        "10.0.0.2",
        "192.168.9.2",
        "10.0.0.3",
        "10.0.0.21",
        "10.5.5.5",
    ]


def test_member_address_falls_back_to_ansible_host_and_a_name_is_reported_not_skipped_silently():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import (
        swarm_member_addresses,
        swarm_unresolved_members,
    )

    hostvars = {
        "m1": {"ansible_host": "10.1.1.1"},
        "w1": {"ansible_host": "worker-1.example", "swarm_probe": unreachable_probe()},
    }
    groups = {"managers": ["m1"], "workers": ["w1"]}
    assert swarm_member_addresses(groups, hostvars) == ["10.1.1.1"]
    assert swarm_unresolved_members(groups, hostvars) == [
        "w1: unreachable in this run (no facts, no probe), and its ansible_host (worker-1.example) is a name, "
        "not an address"
    ]


def test_member_address_is_the_advertise_address_before_ansible_host():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_member_addresses

    hostvars = {
        # explicit advertise address wins over everything
        "m1": {"ansible_host": "10.9.0.1", "swarm_advertise_addr": "10.1.0.1:2377", "ansible_facts": facts("10.2.0.1")},
        # the probe's node address (what the swarm uses) before the default IPv4 and ansible_host
        "m2": {
            "ansible_host": "10.9.0.2",
            "ansible_facts": facts("10.2.0.2"),
            "swarm_probe": {"node_addr": "10.1.0.2"},
        },
        # the default IPv4 from facts before ansible_host
        "w1": {"ansible_host": "10.9.0.21", "ansible_facts": facts("10.2.0.21")},
    }
    groups = {"managers": ["m1", "m2"], "workers": ["w1"]}
    assert swarm_member_addresses(groups, hostvars) == ["10.1.0.1", "10.1.0.2", "10.2.0.21"]


def test_an_unreachable_member_named_by_dns_gets_the_address_the_swarm_lists_for_its_node():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import (
        swarm_member_addresses,
        swarm_unresolved_members,
    )

    probe = manager_probe("m1", nodes=())
    probe["nodes"] = [
        dict(id="id-m1", hostname="m1", address="10.0.0.1"),
        dict(id="id-m2", hostname="m2", address="10.0.0.2"),
    ]
    hostvars = {
        "m1": {"ansible_facts": facts("10.0.0.1"), "swarm_probe": probe},
        "m2": {"ansible_host": "m2.example", "swarm_probe": unreachable_probe()},
    }
    groups = {"managers": ["m1", "m2"]}
    assert swarm_member_addresses(groups, hostvars) == ["10.0.0.1", "10.0.0.2"]
    assert swarm_unresolved_members(groups, hostvars) == []


PORTS = ["2377/tcp", "7946/tcp"]
LEGACY = ["2377/tcp", "7946/tcp"]


def test_ufw_rules_are_added_per_source_and_port_with_esp():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_ufw_commands

    added = "Added user rules (see 'ufw status' for running firewall):\nufw allow 22/tcp\n"
    commands = swarm_ufw_commands(added, PORTS, ["10.0.0.1"], LEGACY)
    assert commands == [
        ["allow", "from", "10.0.0.1", "to", "any", "port", "2377", "proto", "tcp", "comment", "swarmplane"],
        ["allow", "from", "10.0.0.1", "to", "any", "port", "7946", "proto", "tcp", "comment", "swarmplane"],
        ["allow", "from", "10.0.0.1", "proto", "esp", "comment", "swarmplane"],
    ]


def test_ufw_rules_in_place_give_nothing_to_do_and_stale_or_any_source_rules_are_deleted_after_the_new_ones():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_ufw_commands

    added = "\n".join(
        [
            "Added user rules (see 'ufw status' for running firewall):",
            "ufw allow 22/tcp",
            "ufw allow 2377/tcp",
            "ufw allow to any proto esp",
            "ufw allow from 10.0.0.1 to any port 2377 proto tcp comment 'swarmplane'",
            "ufw allow from 10.0.0.1 to any port 7946 proto tcp comment 'swarmplane'",
            "ufw allow from 10.0.0.1 proto esp comment 'swarmplane'",
            "ufw allow from 10.0.0.9 proto esp comment 'swarmplane'",
        ]
    )
    commands = swarm_ufw_commands(added, PORTS, ["10.0.0.1", "10.0.0.2"], LEGACY)
    assert commands[:3] == [
        ["allow", "from", "10.0.0.2", "to", "any", "port", "2377", "proto", "tcp", "comment", "swarmplane"],
        ["allow", "from", "10.0.0.2", "to", "any", "port", "7946", "proto", "tcp", "comment", "swarmplane"],
        ["allow", "from", "10.0.0.2", "proto", "esp", "comment", "swarmplane"],
    ]
    assert commands[3:] == [
        ["delete", "allow", "2377/tcp"],
        ["delete", "allow", "to", "any", "proto", "esp"],
        ["delete", "allow", "from", "10.0.0.9", "proto", "esp", "comment", "swarmplane"],
    ]
    everything = added + "\n" + "\n".join("ufw " + " ".join(c) for c in commands[:3])
    everything = "\n".join(
        line for line in everything.splitlines() if line not in ("ufw allow 2377/tcp", "ufw allow to any proto esp")
    )
    everything = everything.replace("ufw allow from 10.0.0.9 proto esp comment 'swarmplane'\n", "")
    assert (
        swarm_ufw_commands(
            everything.replace("comment swarmplane", "comment 'swarmplane'"), PORTS, ["10.0.0.1", "10.0.0.2"], LEGACY
        )
        == []
    )


def rich(source, port):
    if port == "esp":
        return 'rule family="ipv4" source address="%s" protocol value="esp" accept' % source
    number, proto = port.split("/")
    return 'rule family="ipv4" source address="%s" port port="%s" protocol="%s" accept' % (source, number, proto)


def test_firewalld_gets_a_rich_rule_per_source_and_port_and_the_any_source_ports_are_closed():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_firewalld_commands

    state = "default-port 2377/tcp\ndefault-port 22/tcp\ndefault-protocol esp\n"
    assert swarm_firewalld_commands(state, PORTS, ["10.0.0.1", "fd00::2"], LEGACY) == [
        ["--permanent", "--add-rich-rule=" + rich("10.0.0.1", "2377/tcp")],
        ["--permanent", "--add-rich-rule=" + rich("10.0.0.1", "7946/tcp")],
        ["--permanent", "--add-rich-rule=" + rich("10.0.0.1", "esp")],
        ["--permanent", "--add-rich-rule=" + rich("fd00::2", "2377/tcp").replace("ipv4", "ipv6")],
        ["--permanent", "--add-rich-rule=" + rich("fd00::2", "7946/tcp").replace("ipv4", "ipv6")],
        ["--permanent", "--add-rich-rule=" + rich("fd00::2", "esp").replace("ipv4", "ipv6")],
        ["--permanent", "--remove-port=2377/tcp"],
        ["--permanent", "--remove-protocol=esp"],
    ]


def test_firewalld_rules_in_place_give_nothing_to_do_and_rules_of_other_sources_go_other_rules_stay():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_firewalld_commands

    in_place = [rich("10.0.0.1", p) for p in PORTS + ["esp"]]
    others = [
        'rule family="ipv4" source address="10.0.0.9" service name="ssh" accept',
        'rule family="ipv4" source address="10.0.0.9" port port="8080" protocol="tcp" accept',
        'rule family="ipv4" source NOT address="10.0.0.9" port port="7946" protocol="tcp" accept',
    ]
    state = "\n".join("rich " + r for r in in_place + others) + "\ndefault-port 22/tcp\n"
    assert swarm_firewalld_commands(state, PORTS, ["10.0.0.1"], LEGACY) == []
    stale = "rich " + rich("10.0.0.7", "7946/tcp") + "\nrich " + rich("10.0.0.7", "esp")
    assert swarm_firewalld_commands(state + stale, PORTS, ["10.0.0.1"], LEGACY) == [
        ["--permanent", "--remove-rich-rule=" + rich("10.0.0.7", "7946/tcp")],
        ["--permanent", "--remove-rich-rule=" + rich("10.0.0.7", "esp")],
    ]


def test_a_host_no_longer_a_manager_loses_its_control_plane_rules():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_firewalld_commands

    state = "\n".join("rich " + rich("10.0.0.1", p) for p in PORTS + ["esp"])
    assert swarm_firewalld_commands(state, ["7946/tcp"], ["10.0.0.1"], LEGACY) == [
        ["--permanent", "--remove-rich-rule=" + rich("10.0.0.1", "2377/tcp")]
    ]


# --------------------------------------------------------------------------- firewall: a member not resolved


def test_ufw_keeps_every_rule_when_a_members_address_is_not_known_and_still_adds_the_missing_ones():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_ufw_commands

    added = "\n".join(
        [
            "ufw allow 2377/tcp",
            "ufw allow from 10.0.0.9 to any port 2377 proto tcp comment 'swarmplane'",
            "ufw allow from 10.0.0.9 proto esp comment 'swarmplane'",
        ]
    )
    kept = swarm_ufw_commands(added, ["2377/tcp"], ["10.0.0.1"], LEGACY, keep=True)
    assert kept == [
        ["allow", "from", "10.0.0.1", "to", "any", "port", "2377", "proto", "tcp", "comment", "swarmplane"],
        ["allow", "from", "10.0.0.1", "proto", "esp", "comment", "swarmplane"],
    ]
    # the same state with every member known deletes 10.0.0.9's rules and the any-source one
    deleted = [c for c in swarm_ufw_commands(added, ["2377/tcp"], ["10.0.0.1"], LEGACY) if c[0] == "delete"]
    assert len(deleted) == 3


def test_firewalld_keeps_every_rule_when_a_members_address_is_not_known_and_still_adds_the_missing_ones():
    from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_firewalld_commands

    state = "\n".join(
        [
            'rich rule family="ipv4" source address="10.0.0.9" port port="2377" protocol="tcp" accept',
            "default-port 2377/tcp",
            "default-protocol esp",
        ]
    )
    kept = swarm_firewalld_commands(state, ["2377/tcp"], ["10.0.0.1"], LEGACY, keep=True)
    assert [c[1].split("=", 1)[0] for c in kept] == ["--add-rich-rule", "--add-rich-rule"]
    removed = [c for c in swarm_firewalld_commands(state, ["2377/tcp"], ["10.0.0.1"], LEGACY) if "remove" in c[1]]
    assert len(removed) == 3

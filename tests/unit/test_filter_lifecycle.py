"""The node lifecycle filters: names, removal plans with their quorum arithmetic, reset order, rotation kinds."""

import pytest

from ansible_collections.swarmplane.cluster.plugins.filter.lifecycle import (
    swarm_node_names,
    swarm_removal_plan,
    swarm_reset_plan,
    swarm_rotate_errors,
    swarm_rotate_kinds,
    swarm_scale_report,
    swarm_unreachable_hosts,
)

GROUPS = {"managers": ["m1", "m2", "m3"], "workers": ["w1", "w2"]}


def row(node_id, hostname, role="worker", status="Ready", manager_status=""):
    return dict(id=node_id, hostname=hostname, role=role, status=status, manager_status=manager_status, address="")


NODES = [
    row("n-m1", "m1", "manager", manager_status="Leader"),
    row("n-m2", "m2", "manager", manager_status="Reachable"),
    row("n-m3", "m3", "manager", manager_status="Reachable"),
    row("n-w1", "w1"),
    row("n-w2", "w2"),
]


def probe(host, manager=False, leader="m1", nodes=NODES, **extra):
    result = dict(in_swarm=True, is_manager=manager, node_id="n-" + host, hostname=host, docker_available=True)
    if manager:
        result.update(leader=leader, nodes=nodes)
    result.update(extra)
    return {"swarm_probe": result}


def hostvars(**overrides):
    hv = {h: probe(h, manager=h.startswith("m")) for h in GROUPS["managers"] + GROUPS["workers"]}
    hv.update(overrides)
    return hv


ALL = GROUPS["managers"] + GROUPS["workers"]


@pytest.mark.parametrize(
    ("given", "names"),
    [("w1", ["w1"]), (" w1, w2 ,w1,", ["w1", "w2"]), (["m2", "w1"], ["m2", "w1"]), ("", []), (None, [])],
)
def test_node_names_are_read_from_a_comma_list_or_a_yaml_list(given, names):
    assert swarm_node_names(given) == names


def test_a_worker_removal_is_driven_from_the_leader_and_leaves_without_demotion():
    plan = swarm_removal_plan(["w1"], GROUPS, hostvars(), ALL)
    assert plan["errors"] == [] and plan["manager"] == "m1"
    assert plan["steps"] == [
        dict(host="w1", node="n-w1", hostname="w1", role="worker", reachable=True, demote=False, leave=True)
    ]


def test_removing_the_leader_is_driven_from_another_manager_and_demotes_it():
    plan = swarm_removal_plan(["m1"], GROUPS, hostvars(), ALL)
    assert plan["errors"] == [] and plan["manager"] == "m2"
    assert plan["steps"][0]["demote"] is True


def test_no_names_and_unknown_names_are_refused_naming_the_hosts():
    assert "-e node=" in swarm_removal_plan([], GROUPS, hostvars(), ALL)["errors"][0]
    error = swarm_removal_plan(["w1", "web9"], GROUPS, hostvars(), ALL)["errors"][0]
    assert error.startswith("node=w1,web9: web9 is not a host") and "m1, m2, m3, w1, w2" in error


def test_removing_managers_below_quorum_is_refused_with_the_arithmetic():
    nodes = [dict(n) for n in NODES]
    nodes[2]["manager_status"] = "Unreachable"
    hv = hostvars(m1=probe("m1", manager=True, nodes=nodes))
    plan = swarm_removal_plan(["m2"], GROUPS, hv, ALL)
    assert plan["errors"] == [
        "removing m2 would cost the swarm its quorum: it has 3 managers, 2 reachable (unreachable: m3); removing it "
        "would leave 2 managers of which 1 reachable, and 2 managers need 2 reachable (a majority). Nothing was "
        "changed. Fix: bring the unreachable managers back first, or remove fewer managers in one run."
    ]
    two = swarm_removal_plan(["m1", "m2"], GROUPS, dict(hv, m3=probe("m3", manager=True, nodes=nodes)), ALL)
    assert (
        "removing m1, m2 would cost the swarm its quorum: it has 3 managers, 2 reachable (unreachable: m3); "
        in (two["errors"][0])
        and "removing them would leave 1 managers of which 0 reachable" in two["errors"][0]
    )


def test_removing_every_manager_is_refused():
    errors = swarm_removal_plan(["m1", "m2", "m3"], GROUPS, hostvars(), ALL)["errors"]
    assert errors[0].startswith("no live manager is left to drive the removal: the only live managers (m1, m2, m3)")


def test_an_unreachable_host_is_refused_unless_allowed_and_then_is_not_asked_to_leave():
    gone = {"swarm_probe": dict(unreachable=True, msg="Task failed: ssh: connect to host w2 port 22: No route")}
    hv = hostvars(w2=gone)
    refused = swarm_removal_plan(["w2"], GROUPS, hv, ALL)
    assert "host w2 is unreachable (ssh: connect to host w2 port 22: No route)" in refused["errors"][0]
    allowed = swarm_removal_plan(["w2"], GROUPS, hv, ALL, allow_unreachable=True)
    assert allowed["errors"] == [] and allowed["steps"][0]["node"] == "n-w2"
    assert (allowed["steps"][0]["reachable"], allowed["steps"][0]["leave"]) == (False, False)


def test_a_host_already_out_of_the_swarm_is_a_no_op():
    hv = hostvars(w1={"swarm_probe": dict(in_swarm=False, docker_available=True)})
    plan = swarm_removal_plan(["w1"], GROUPS, hv, ALL)
    assert (plan["errors"], plan["steps"], plan["absent"]) == ([], [], ["w1"])


def test_a_down_host_is_found_by_hostname_preferring_the_entry_that_is_not_down():
    nodes = NODES + [row("n-w2-old", "w2", status="Down")]
    hv = hostvars(m1=probe("m1", manager=True, nodes=nodes), w2={"swarm_probe": dict(unreachable=True)})
    plan = swarm_removal_plan(["w2"], GROUPS, hv, ALL, allow_unreachable=True)
    assert plan["steps"][0]["node"] == "n-w2"


def test_reset_sends_workers_first_and_the_leader_last():
    plan = swarm_reset_plan(ALL, hostvars(), GROUPS["managers"])
    assert plan == dict(workers=["w1", "w2"], managers=["m2", "m3"], last="m1", unreachable=[])


def test_reset_skips_hosts_already_out_and_names_the_unreachable():
    hv = hostvars(w1={"swarm_probe": dict(in_swarm=False)}, w2={"swarm_probe": dict(unreachable=True)})
    plan = swarm_reset_plan(ALL, hv, GROUPS["managers"])
    assert (plan["workers"], plan["unreachable"]) == ([], ["w2"])


@pytest.mark.parametrize(
    ("value", "kinds"),
    [("", []), (None, []), ("worker", ["worker"]), ("Manager", ["manager"]), ("both", ["worker", "manager"])],
)
def test_rotation_kinds(value, kinds):
    assert swarm_rotate_kinds(value) == kinds and swarm_rotate_errors(value) == []


def test_an_unknown_rotation_kind_names_the_variable_and_the_choices():
    assert swarm_rotate_errors("workers") == [
        "swarm_rotate_tokens=workers is not a kind of join token. Nothing was changed. Fix: -e "
        "swarm_rotate_tokens=worker, manager or both (or leave it unset)."
    ]


def test_unreachable_hosts_are_listed_with_why_and_hosts_not_probed_are_not():
    hv = {"a": {"swarm_probe": dict(unreachable=True, msg="timed out")}, "b": {}, "c": {"swarm_probe": {}}}
    assert swarm_unreachable_hosts(["a", "b", "c", "d"], hv) == ["a (timed out)"]


def test_scale_report_says_joined_or_already_a_node():
    hv = {"w3": {"swarm_probe": dict(in_swarm=False)}, "w1": {"swarm_probe": dict(in_swarm=True)}}
    assert swarm_scale_report(["w3", "w1"], hv, ["w3"]) == [
        "w3 joined the swarm.",
        "w1 was already a node of the swarm (worker): nothing to join.",
    ]

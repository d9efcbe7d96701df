"""find_node of plugins/modules/swarm_node.py: which live node a `node:` value names."""

from __future__ import annotations

import pytest

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import SwarmDecisionError
from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import find_node


def api_node(node_id, hostname, state="ready"):
    return dict(ID=node_id, Description=dict(Hostname=hostname), Status=dict(State=state))


NODES = [
    api_node("k3x9a1b2c3d4e5f6g7h8i9j0k", "manager-1"),
    api_node("p0q1r2s3t4u5v6w7x8y9z0a1b", "worker-1"),
    api_node("p0q9zzzzzzzzzzzzzzzzzzzzz", "worker-2"),
]


def test_full_id_finds_the_node():
    assert find_node(NODES, "p0q1r2s3t4u5v6w7x8y9z0a1b") is NODES[1]


def test_unique_id_prefix_finds_the_node():
    assert find_node(NODES, "k3x9") is NODES[0]


def test_exact_id_wins_over_being_the_prefix_of_another_id():
    nodes = [api_node("abc", "one"), api_node("abcdef", "two")]
    assert find_node(nodes, "abc") is nodes[0]


def test_hostname_finds_the_node():
    assert find_node(NODES, "worker-2") is NODES[2]


def test_unknown_name_finds_nothing():
    assert find_node(NODES, "worker-9") is None
    assert find_node([], "worker-1") is None


def test_duplicate_hostname_resolves_to_the_node_that_is_not_down():
    nodes = [api_node("old111", "worker-1", state="down"), api_node("new222", "worker-1")]
    assert find_node(nodes, "worker-1") is nodes[1]


def test_duplicate_hostname_all_down_is_ambiguous():
    nodes = [api_node("old111", "worker-1", state="down"), api_node("old222", "worker-1", state="down")]
    with pytest.raises(SwarmDecisionError) as raised:
        find_node(nodes, "worker-1")
    assert str(raised.value) == "2 nodes are named worker-1 (old111, old222): give the node ID instead"


def test_duplicate_hostname_with_several_live_nodes_lists_only_the_live_ones():
    nodes = [api_node("a1", "db"), api_node("b2", "db", state="down"), api_node("c3", "db", state="unknown")]
    with pytest.raises(SwarmDecisionError, match=r"^2 nodes are named db \(a1, c3\)"):
        find_node(nodes, "db")


def test_ambiguous_id_prefix_is_an_error():
    with pytest.raises(SwarmDecisionError):
        find_node(NODES, "p0q")


def test_exact_hostname_wins_over_the_id_prefix_of_another_node():
    nodes = [api_node("db7k2m9q0w1e2r3t4y5u6i7o8", "web-1"), api_node("x1y2z3a4b5c6d7e8f9g0h1i2j", "db")]
    assert find_node(nodes, "db") is nodes[1]


# --------------------------------------------------------------------------- demotions and the quorum


def manager(node_id, reachability="reachable", leader=False):
    node = api_node(node_id, node_id)
    node["ManagerStatus"] = dict(Reachability=reachability, Leader=leader)
    return node


def test_demoting_a_manager_of_three_all_reachable_keeps_the_quorum():
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import demotion_quorum_error

    nodes = [manager("m1", leader=True), manager("m2"), manager("m3"), api_node("w1", "w1")]
    assert demotion_quorum_error(nodes, nodes[1]) is None


def test_demoting_a_manager_while_another_is_unreachable_is_refused_with_the_arithmetic():
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import demotion_quorum_error

    nodes = [manager("m1", leader=True), manager("m2"), manager("m3", "unreachable")]
    assert demotion_quorum_error(nodes, nodes[1]) == (
        "demoting it would leave 2 managers of which 1 reachable (unreachable: m3), and 2 managers need 2 "
        "reachable for a quorum. Fix: bring m3 back first, or demote and remove them before this one"
    )


def test_demoting_the_unreachable_manager_itself_is_allowed():
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import demotion_quorum_error

    nodes = [manager("m1", leader=True), manager("m2"), manager("m3", "unreachable")]
    assert demotion_quorum_error(nodes, nodes[2]) is None


def test_a_worker_is_no_raft_member_to_count():
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import demotion_quorum_error

    nodes = [manager("m1", leader=True), api_node("w1", "w1")]
    assert demotion_quorum_error(nodes, nodes[1]) is None


@pytest.mark.parametrize(
    "status, role, settled",
    [
        (None, "worker", True),
        (dict(Reachability="reachable"), "worker", False),
        (dict(Reachability="reachable"), "manager", True),
        (dict(Reachability="unknown"), "manager", False),
        (None, "manager", False),
    ],
)
def test_a_role_change_is_settled_once_the_raft_has_taken_it_in(status, role, settled):
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import role_settled

    node = api_node("n1", "n1")
    if status:
        node["ManagerStatus"] = status
    assert role_settled(node, role) is settled

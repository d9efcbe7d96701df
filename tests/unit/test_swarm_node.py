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

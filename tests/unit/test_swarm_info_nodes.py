"""Node listing of plugins/modules/swarm_info.py: engine errors in the engine's words, and the bounded wait for
nodes to be Ready (a fake client and clock; no engine)."""

from __future__ import annotations

import pytest

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import APIError, EngineError, NotFound
from ansible_collections.swarmplane.cluster.plugins.modules.swarm_info import list_nodes, not_ready, wait_until_ready


def api_node(node_id, state="ready", role="worker", leader=False):
    node = dict(
        ID=node_id,
        Spec=dict(Role=role, Availability="active"),
        Status=dict(State=state, Addr="10.0.0.1"),
        Description=dict(Hostname=node_id),
    )
    if role == "manager":
        node["ManagerStatus"] = dict(Leader=leader, Reachability="reachable")
    return node


class Failed(Exception):
    pass


class Client:
    """EngineClient's surface that swarm_info uses, over a scripted list of node listings (or errors)."""

    def __init__(self, listings):
        self.listings = list(listings)
        self.now = 0.0
        self.timeouts = []
        self.api = self

    # the SDK's APIClient.nodes
    def nodes(self):
        answer = self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def attempt(self, doing, func, *args):
        try:
            return func(*args)
        except APIError as exc:
            raise EngineError("%s failed: %s" % (doing, exc.explanation), True) from None
        except OSError as exc:
            raise EngineError("%s failed: %s" % (doing, exc)) from None

    def bounded_by(self, deadline):
        self.timeouts.append(deadline.remaining())

    def unbounded(self):
        pass

    def fail(self, msg):
        raise Failed(msg)


def test_not_ready_names_each_node_with_its_status_and_those_not_listed():
    rows = [dict(id="a", hostname="m1", status="Ready"), dict(id="b", hostname="w1", status="Down")]
    assert not_ready(rows, ["a", "b", "c"]) == ["w1 (Down)", "c (not in the swarm)"]


def test_a_swarm_without_a_leader_is_reported_in_the_engines_words():
    no_leader = APIError("503", explanation="rpc error: code = Unknown desc = The swarm does not have a leader.")
    listed = list_nodes(Client([no_leader]))
    assert listed == dict(
        nodes=[],
        leader="",
        nodes_error="listing the swarm nodes (docker node ls) failed: rpc error: code = Unknown desc = The swarm "
        "does not have a leader.",
    )


def test_an_engine_that_does_not_answer_fails_instead_of_passing_for_lost_quorum():
    with pytest.raises(Failed) as failed:
        list_nodes(Client([TimeoutError("Read timed out")]))
    assert str(failed.value) == "listing the swarm nodes (docker node ls) failed: Read timed out"


def test_nodes_are_listed_managers_first_with_the_leader():
    listed = list_nodes(Client([[api_node("w1"), api_node("m1", role="manager", leader=True)]]))
    assert [r["hostname"] for r in listed["nodes"]] == ["m1", "w1"] and listed["leader"] == "m1"


def test_the_wait_returns_once_every_wanted_node_is_ready():
    client = Client(
        [
            [api_node("m1", role="manager", leader=True), api_node("w1", state="down")],
            NotFound("gone for a moment"),
            [api_node("m1", role="manager", leader=True), api_node("w1")],
        ]
    )
    listed = wait_until_ready(client, ["m1", "w1"], 30)
    assert [r["status"] for r in listed["nodes"]] == ["Ready", "Ready"]
    assert client.now == 2


def test_the_wait_gives_up_at_its_timeout_naming_the_nodes_and_bounding_every_call():
    client = Client([[api_node("m1", role="manager", leader=True), api_node("w1", state="down")]])
    with pytest.raises(Failed) as failed:
        wait_until_ready(client, ["m1", "w1", "w9"], 5)
    assert str(failed.value) == "nodes did not become Ready within 5 s: not Ready: w1 (Down), w9 (not in the swarm)"
    assert client.now == 5
    assert client.timeouts[0] == 5 and client.timeouts[-1] == 0

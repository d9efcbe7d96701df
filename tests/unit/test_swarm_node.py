"""find_node of plugins/modules/swarm_node.py: which live node a `node:` value names."""

from __future__ import annotations

import pytest
from fake_swarm import FakeModule

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


# --------------------------------------------------------------------------- NodeManager on the fake engine: drains


class Failed(Exception):
    """fail_json of the module: the result it carries."""

    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


class NodeModule(FakeModule):
    """FakeModule whose fail_json raises Failed, so tests can read the failure's result."""

    def fail_json(self, **kwargs):
        raise Failed(kwargs)


def node_params(**given):
    """swarm_node params as AnsibleModule hands them over."""
    params = dict(
        node=None,
        state="present",
        labels=None,
        labels_state="merge",
        labels_to_remove=None,
        availability=None,
        role=None,
        force=False,
        drain_wait=False,
        drain_timeout=300,
        wait_services=[],
        docker_host="unix:///var/run/docker.sock",
        timeout=60,
    )
    params.update(given)
    return params


def run_node(swarm, check_mode=False, **params):
    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import EngineClient
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import NodeManager

    module = NodeModule(node_params(**params), check_mode=check_mode)
    client = EngineClient.__new__(EngineClient)
    client.module, client.api, client.call_timeout = module, swarm, 60
    client.clock, client.sleep = swarm.clock.monotonic, swarm.clock.sleep
    return NodeManager(module, client=client, clock=swarm.clock.monotonic, sleep=swarm.clock.sleep).run()


def fake_swarm(*nodes):
    from fake_swarm import FakeSwarm, node

    return FakeSwarm(nodes=list(nodes) or [node("manager-1", "manager"), node("worker-1"), node("worker-2")])


def tasks_on(swarm, node_id):
    """Tasks on a node that the engine wants running, or whose container still runs."""
    return [
        t
        for t in swarm.tasks_
        if t["NodeID"] == node_id and (t["DesiredState"] == "running" or t["Status"]["State"] == "running")
    ]


def availability(swarm, node_id):
    return next(n for n in swarm.nodes_ if n["ID"] == node_id)["Spec"]["Availability"]


def test_drain_wait_returns_once_the_tasks_run_elsewhere():
    swarm = fake_swarm()
    swarm.deploy("web", Mode=dict(Replicated=dict(Replicas=3)))
    assert len(tasks_on(swarm, "worker-1")) == 1
    result = run_node(swarm, node="worker-1", availability="drain", drain_wait=True)
    assert result["changed"] is True
    assert result["changes"] == dict(availability=dict(before="active", after="drain"))
    assert result["moved_tasks"] == {"web": 1}
    assert result["stopped_tasks"] == {}
    assert "stuck_tasks" not in result
    assert tasks_on(swarm, "worker-1") == []
    assert len(swarm.running("web")) == 3
    assert result["node"]["availability"] == "Drain"


def test_drain_wait_waits_for_the_containers_to_stop():
    swarm = fake_swarm()
    swarm.deploy("web", Mode=dict(Replicated=dict(Replicas=3)))
    swarm.slow_stop = True
    run_node(swarm, node="worker-1", availability="drain", drain_wait=True)
    assert [t["Status"]["State"] for t in swarm.tasks_ if t["NodeID"] == "worker-1"] == ["shutdown"]
    assert len(swarm.running("web")) == 3


def test_a_global_service_task_stops_and_is_not_waited_for_elsewhere():
    swarm = fake_swarm()
    swarm.deploy("agent", Mode=dict(Global={}))
    swarm.deploy("web", Mode=dict(Replicated=dict(Replicas=2)))
    result = run_node(swarm, node="worker-1", availability="drain", drain_wait=True)
    assert result["stopped_tasks"] == {"agent": 1}
    assert result["moved_tasks"] == {"web": 1}
    assert tasks_on(swarm, "worker-1") == []
    assert len(swarm.running("agent")) == 2  # one per node left, none new


def test_an_already_drained_node_with_nothing_on_it_is_unchanged_at_once():
    swarm = fake_swarm()
    swarm.deploy("web", Mode=dict(Replicated=dict(Replicas=3)))
    run_node(swarm, node="worker-1", availability="drain", drain_wait=True)
    sleeps, writes = swarm.clock.sleeps, list(swarm.writes)
    again = run_node(swarm, node="worker-1", availability="drain", drain_wait=True)
    assert again["changed"] is False
    assert again["moved_tasks"] == {} and again["stopped_tasks"] == {}
    assert swarm.clock.sleeps == sleeps and swarm.writes == writes


def deploy_db_pinned_to_worker_1(swarm):
    swarm.deploy(
        "db",
        Mode=dict(Replicated=dict(Replicas=1)),
        TaskTemplate=dict(
            ContainerSpec=dict(Image="registry.example/web:v1"),
            Placement=dict(Constraints=["node.hostname==worker-1"]),
        ),
    )


def test_a_task_pinned_to_the_node_fails_the_drain_at_once_naming_it_and_the_node_stays_drained():
    swarm = fake_swarm()
    deploy_db_pinned_to_worker_1(swarm)
    swarm.deploy("web", Mode=dict(Replicated=dict(Replicas=3)))
    with pytest.raises(Failed) as failed:
        run_node(swarm, node="worker-1", availability="drain", drain_wait=True)
    result = failed.value.result
    assert swarm.clock.sleeps < 5  # the scheduler's error ends the wait, not the 300 s
    assert result["changed"] is True
    assert [(t["service"], t["task"], t["state"]) for t in result["stuck_tasks"]] == [("db", "db.1", "pending")]
    assert result["stuck_tasks"][0]["reason"].startswith("no suitable node")
    assert result["msg"].startswith(
        "node worker-1 is drained, but 1 task cannot move, the scheduler has no node for it: db.1 (task "
    )
    assert "pending: no suitable node (scheduling constraints not satisfied on 3 nodes)" in result["msg"]
    assert "The node stays drained" in result["msg"]
    assert "set availability: active on worker-1" in result["msg"]
    assert availability(swarm, "worker-1") == "drain"


def test_a_drain_that_does_not_finish_in_time_fails_naming_what_is_short():
    swarm = fake_swarm()
    swarm.deploy("web", Mode=dict(Replicated=dict(Replicas=3)))
    swarm.images.clear()  # the replacement cannot start anywhere
    started = swarm.clock.monotonic()
    with pytest.raises(Failed) as failed:
        run_node(swarm, node="worker-1", availability="drain", drain_wait=True, drain_timeout=20)
    result = failed.value.result
    assert swarm.clock.monotonic() - started == 20  # the wait ends at the deadline
    assert "service web runs 2 of its 3 tasks elsewhere after 20 s (web.2 (task " in result["msg"]
    assert ") rejected: No such image: registry.example/web:v1)" in result["msg"]
    assert [(t["task"], t["reason"]) for t in result["stuck_tasks"]] == [
        ("web.2", "No such image: registry.example/web:v1")
    ]
    assert "The node stays drained" in result["msg"]
    assert availability(swarm, "worker-1") == "drain"


def test_check_mode_drains_nothing_waits_for_nothing_and_says_what_would_move_or_stick():
    swarm = fake_swarm()
    swarm.deploy("agent", Mode=dict(Global={}))
    deploy_db_pinned_to_worker_1(swarm)
    swarm.deploy("web", Mode=dict(Replicated=dict(Replicas=3)))
    writes = list(swarm.writes)
    result = run_node(swarm, check_mode=True, node="worker-1", availability="drain", drain_wait=True)
    assert result["changed"] is True
    assert result["moved_tasks"] == {"db": 1, "web": 1}
    assert result["stopped_tasks"] == {"agent": 1}
    assert [(t["task"], t["reason"]) for t in result["stuck_tasks"]] == [
        ("db.1", "no other Ready, active node matches its placement constraints (node.hostname==worker-1)")
    ]
    assert swarm.writes == writes and swarm.clock.sleeps == 0
    assert availability(swarm, "worker-1") == "active"


def test_check_mode_counts_max_replicas_per_node():
    from fake_swarm import node

    swarm = fake_swarm(node("manager-1", "manager"), node("worker-1"), node("worker-2"))
    swarm.deploy(
        "web",
        Mode=dict(Replicated=dict(Replicas=3)),
        TaskTemplate=dict(ContainerSpec=dict(Image="registry.example/web:v1"), Placement=dict(MaxReplicas=1)),
    )
    result = run_node(swarm, check_mode=True, node="worker-1", availability="drain", drain_wait=True)
    assert [t["task"] for t in result["stuck_tasks"]] == ["web.2"]
    assert "max_replicas_per_node 1 on the 2 other nodes" in result["stuck_tasks"][0]["reason"]


def test_drain_wait_needs_availability_drain():
    swarm = fake_swarm()
    with pytest.raises(Failed, match="drain_wait applies to availability: drain, not active"):
        run_node(swarm, node="worker-1", availability="active", drain_wait=True)


def test_wait_services_waits_for_the_global_task_to_run_on_the_node_again():
    swarm = fake_swarm()
    swarm.deploy("agent", Mode=dict(Global={}))
    swarm.deploy("web", Mode=dict(Replicated=dict(Replicas=2)))
    drained = run_node(swarm, node="worker-1", availability="drain", drain_wait=True)
    back = run_node(
        swarm,
        node="worker-1",
        availability="active",
        wait_services=sorted(drained["moved_tasks"]) + sorted(drained["stopped_tasks"]),
    )
    assert back["changed"] is True
    assert [t["Status"]["State"] for t in tasks_on(swarm, "worker-1") if t["DesiredState"] == "running"] == ["running"]
    assert len(swarm.running("agent")) == 3 and len(swarm.running("web")) == 2


def test_wait_services_fails_at_once_on_a_task_the_scheduler_cannot_place():
    swarm = fake_swarm()
    swarm.deploy(
        "db",
        Mode=dict(Replicated=dict(Replicas=1)),
        TaskTemplate=dict(
            ContainerSpec=dict(Image="registry.example/web:v1"),
            Placement=dict(Constraints=["node.labels.disk==ssd"]),
        ),
    )
    with pytest.raises(Failed) as failed:
        run_node(swarm, node="worker-1", availability="active", wait_services=["db", "gone"])
    assert "the scheduler has no node for db.1" in failed.value.result["msg"]
    assert failed.value.result["stuck_tasks"][0]["reason"].startswith("no suitable node")


# --------------------------------------------------------------------------- NodeManager: the remove-node flow


def three_managers(down="manager-3"):
    from fake_swarm import node

    nodes = [node("manager-1", "manager"), node("manager-2", "manager"), node("manager-3", "manager"), node("worker-1")]
    for n in nodes[:3]:
        n["ManagerStatus"] = dict(Reachability="reachable", Leader=n["ID"] == "manager-1")
    if down:
        gone = next(n for n in nodes if n["ID"] == down)
        gone["Status"]["State"] = "down"
        gone["ManagerStatus"]["Reachability"] = "unreachable"
    return fake_swarm(*nodes)


def test_an_unreachable_manager_is_demoted_then_removed():
    swarm = three_managers(down="manager-3")
    demoted = run_node(swarm, node="manager-3", role="worker")
    assert demoted["changes"]["role"] == dict(before="manager", after="worker")
    assert demoted["node"]["role"] == "worker" and demoted["node"]["manager_status"] == ""
    removed = run_node(swarm, node="manager-3", state="absent")
    assert removed["changed"] is True
    assert "manager-3" not in [n["ID"] for n in swarm.nodes_]
    assert run_node(swarm, node="manager-3", state="absent")["changed"] is False


def test_a_reachable_manager_is_refused_while_another_is_unreachable_with_the_arithmetic():
    swarm = three_managers(down="manager-3")
    with pytest.raises(
        Failed, match=r"demoting it would leave 2 managers of which 1 reachable \(unreachable: manager-3\)"
    ):
        run_node(swarm, node="manager-2", role="worker")


def test_a_reachable_manager_is_demoted_and_removed_with_force_once_a_worker():
    swarm = three_managers(down=None)
    run_node(swarm, node="manager-2", role="worker")
    with pytest.raises(Failed, match="it is Ready, not Down: make it leave first"):
        run_node(swarm, node="manager-2", state="absent")
    assert run_node(swarm, node="manager-2", state="absent", force=True)["changed"] is True
    assert [n["ID"] for n in swarm.nodes_] == ["manager-1", "manager-3", "worker-1"]


def test_removing_a_manager_is_refused_until_it_is_demoted():
    swarm = three_managers(down="manager-3")
    with pytest.raises(Failed, match="it is a manager: demote it first"):
        run_node(swarm, node="manager-3", state="absent", force=True)


def test_an_old_manager_out_of_the_raft_after_a_forced_cluster_is_removed_like_a_worker():
    swarm = three_managers(down="manager-3")
    old = next(n for n in swarm.nodes_ if n["ID"] == "manager-3")
    old.pop("ManagerStatus", None)  # --force-new-cluster drops it from the raft; its role still reads manager
    assert run_node(swarm, node="manager-3", state="absent", force=True)["changed"] is True
    assert "manager-3" not in [n["ID"] for n in swarm.nodes_]


def test_the_manager_the_module_runs_on_can_demote_itself():
    swarm = three_managers(down=None)
    result = run_node(swarm, node="manager-1", role="worker")
    assert result["node"]["role"] == "worker"
    assert swarm.clock.sleeps == 0


# --------------------------------------------------------------------------- drain decisions, pure


def task(task_id, service, node_id, desired="running", state="running", slot=1, err=None):
    status = dict(State=state)
    if err:
        status["Err"] = err
    return dict(ID=task_id, ServiceID=service, NodeID=node_id, DesiredState=desired, Slot=slot, Status=status)


@pytest.mark.parametrize(
    "desired, state, observed, sits",
    [
        ("running", "running", True, True),
        ("ready", "preparing", True, True),
        ("shutdown", "running", True, True),  # asked to stop, container not gone yet
        ("shutdown", "running", False, False),  # a down node never reports it gone
        ("shutdown", "shutdown", True, False),
        ("shutdown", "assigned", True, False),
    ],
)
def test_what_still_sits_on_a_node(desired, state, observed, sits):
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import sits_on

    assert sits_on(task("t1", "s1", "n1", desired, state), "n1", observed) is sits
    assert sits_on(task("t1", "s1", "n2", desired, state), "n1", observed) is False


def test_a_pending_task_waiting_for_a_paused_node_is_not_unschedulable():
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import unschedulable

    err = "no suitable node (1 node not available for new tasks)"
    assert unschedulable(task("t1", "s1", None, state="pending", err=err), {"n1"}) is True
    assert unschedulable(task("t1", "s1", "paused", state="pending", err=err), {"n1"}) is False
    assert unschedulable(task("t1", "s1", "n1", state="pending", err=err), {"n1"}) is True
    assert unschedulable(task("t1", "s1", None, state="pending"), {"n1"}) is False  # not scheduled yet
    assert unschedulable(task("t1", "s1", None, desired="shutdown", state="pending", err=err), {"n1"}) is False


def test_the_baseline_target_is_what_the_service_ran_at_most_its_replicas():
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import drain_baseline

    services = [
        dict(ID="s1", Spec=dict(Name="web", Mode=dict(Replicated=dict(Replicas=4)))),
        dict(ID="s2", Spec=dict(Name="agent", Mode=dict(Global={}))),
        dict(ID="s3", Spec=dict(Name="other", Mode=dict(Replicated=dict(Replicas=1)))),
    ]
    tasks = [
        task("a", "s1", "n1", slot=1),
        task("b", "s1", "n2", slot=2),
        task("c", "s1", None, state="pending", slot=3, err="no suitable node"),  # short before the drain
        task("d", "s2", "n1", slot=None),
        task("e", "s3", "n2"),
    ]
    baseline = drain_baseline("n1", services, tasks)
    assert baseline == {
        "s1": dict(name="web", mode="replicated", on_node=1, slots={1}, target=2),
        "s2": dict(name="agent", mode="global", on_node=1, slots=set()),
    }


def test_services_status_names_what_is_not_converged():
    from fake_swarm import node

    from ansible_collections.swarmplane.cluster.plugins.modules.swarm_node import services_status

    nodes = [node("n1"), node("n2"), node("n3", availability="pause")]
    services = [
        dict(ID="s1", Spec=dict(Name="web", Mode=dict(Replicated=dict(Replicas=2)))),
        dict(ID="s2", Spec=dict(Name="agent", Mode=dict(Global={}))),
    ]
    tasks = [
        task("a", "s1", "n2", slot=1),
        task("b", "s1", None, state="pending", slot=2),
        task("c", "s2", "n2", slot=None),
        task("d", "s2", "n3", state="pending", slot=None, err="no suitable node"),  # waits for the paused node
    ]
    status = services_status(services, tasks, {"web", "agent"}, nodes, node_id="n1")
    assert status == dict(
        pending=["agent: no task running on n1 yet", "web: 1 of 2 replicas run; web.2 is not running yet"],
        stuck=[],
    )

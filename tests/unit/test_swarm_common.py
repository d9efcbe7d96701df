"""Pure logic of plugins/module_utils/swarm_common.py: local state, join/init decisions, spec diffs, node rows."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    NANOSECONDS,
    EngineError,
    SwarmDecisionError,
    _host_part,
    _version_tuple,
    belongs_to_cluster,
    count_managers,
    decide_init,
    decide_join,
    init_only_drift,
    local_node_state,
    node_row,
    node_spec_changes,
    swarm_init_body,
    swarm_spec_changes,
    with_swarm_port,
)

OUR_MANAGERS = [dict(NodeID="mgr-a", Addr="10.0.0.1:2377"), dict(NodeID="mgr-b", Addr="10.0.0.2:2377")]
OTHER_MANAGERS = [dict(NodeID="other-x", Addr="10.9.0.9:2377"), dict(NodeID="other-y", Addr="10.9.0.7:2377")]


def docker_info(state="active", manager=False, cluster_id=None, remote_managers=(), error=""):
    """A `docker info` answer as the engine API returns it."""
    swarm = dict(
        LocalNodeState=state,
        NodeID="self-1" if state != "inactive" else "",
        NodeAddr="10.0.0.5" if state != "inactive" else "",
        ControlAvailable=manager,
        RemoteManagers=list(remote_managers) or None,
        Error=error,
    )
    if cluster_id:
        swarm["Cluster"] = dict(ID=cluster_id)
    return dict(Name="node-5", ServerVersion="27.3.1", Swarm=swarm)


def local(**kwargs):
    return local_node_state(docker_info(**kwargs))


# --------------------------------------------------------------------------- local_node_state


def test_missing_docker_info_reads_as_an_inactive_node_with_nothing_known():
    assert local_node_state(None) == dict(
        state="inactive",
        node_id=None,
        node_addr=None,
        is_manager=False,
        cluster_id=None,
        autolock=False,
        remote_managers=[],
        error=None,
        hostname=None,
        engine_version=None,
    )


def test_manager_state_carries_cluster_id_and_remote_managers():
    state = local(manager=True, cluster_id="cluster-1", remote_managers=OUR_MANAGERS)
    assert state == dict(
        state="active",
        node_id="self-1",
        node_addr="10.0.0.5",
        is_manager=True,
        cluster_id="cluster-1",
        autolock=False,
        remote_managers=[dict(node_id="mgr-a", addr="10.0.0.1:2377"), dict(node_id="mgr-b", addr="10.0.0.2:2377")],
        error=None,
        hostname="node-5",
        engine_version="27.3.1",
    )


def test_worker_state_has_no_cluster_id_and_empty_strings_become_none():
    state = local(state="error", error="rpc error: timeout")
    assert (state["state"], state["is_manager"], state["cluster_id"], state["error"]) == (
        "error",
        False,
        None,
        "rpc error: timeout",
    )
    assert local()["error"] is None


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("addr", "host"),
    [
        ("10.0.0.1:2377", "10.0.0.1"),
        ("10.0.0.1", "10.0.0.1"),
        ("[fd00::1]:2377", "fd00::1"),
        ("fd00::1", "fd00::1"),
        ("  manager-1:2377 ", "manager-1"),
    ],
)
def test_host_part_drops_the_port_of_ipv4_ipv6_and_names(addr, host):
    assert _host_part(addr) == host


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("10.0.0.1", "10.0.0.1:2377"),
        ("manager-1", "manager-1:2377"),
        ("fd00::1", "[fd00::1]:2377"),
        ("10.0.0.1:4000", "10.0.0.1:4000"),
        ("[fd00::1]:4000", "[fd00::1]:4000"),
        (" 10.0.0.1 ", "10.0.0.1:2377"),
    ],
)
def test_swarm_port_is_added_only_where_no_port_is_given(addr, expected):
    assert with_swarm_port(addr) == expected


def test_bracketed_ipv6_without_port_gets_the_swarm_port():
    assert with_swarm_port("[fd00::1]") == "[fd00::1]:2377"


# --------------------------------------------------------------------------- belongs_to_cluster


def test_manager_in_same_swarm_matched_by_cluster_id():
    assert belongs_to_cluster(local(manager=True, cluster_id="cluster-1"), cluster_id="cluster-1") is True


def test_manager_in_other_swarm_is_told_apart_by_cluster_id_even_if_addresses_match():
    manager = local(manager=True, cluster_id="cluster-2", remote_managers=OUR_MANAGERS)
    assert belongs_to_cluster(manager, cluster_id="cluster-1", remote_addrs=["10.0.0.1"]) is False


def test_cluster_id_alone_cannot_place_a_worker():
    worker = local(remote_managers=OUR_MANAGERS)
    assert belongs_to_cluster(worker, cluster_id="cluster-1") is None


def test_cluster_id_is_trusted_only_from_a_manager():
    worker = local(cluster_id="cluster-2", remote_managers=OUR_MANAGERS)
    assert belongs_to_cluster(worker, cluster_id="cluster-1", manager_node_ids=["mgr-a"]) is True


def test_worker_in_same_swarm_matched_by_manager_ids():
    worker = local(remote_managers=OUR_MANAGERS)
    assert belongs_to_cluster(worker, cluster_id="cluster-1", manager_node_ids=["mgr-b", "mgr-new"]) is True


def test_worker_in_other_swarm_is_told_apart_by_manager_ids():
    worker = local(remote_managers=OTHER_MANAGERS)
    assert belongs_to_cluster(worker, manager_node_ids=["mgr-a", "mgr-b"]) is False


def test_manager_ids_are_compared_before_addresses():
    worker = local(remote_managers=OUR_MANAGERS)
    assert belongs_to_cluster(worker, manager_node_ids=["other-x"], remote_addrs=["10.0.0.1"]) is False


def test_worker_in_same_swarm_matched_by_manager_address_whatever_the_port():
    worker = local(remote_managers=OUR_MANAGERS)
    assert belongs_to_cluster(worker, remote_addrs=["10.0.0.2"]) is True
    assert belongs_to_cluster(worker, remote_addrs=["10.0.0.2:4000"]) is True


def test_ipv6_manager_address_is_matched_without_brackets_and_port():
    worker = local(remote_managers=[dict(NodeID="mgr-6", Addr="[fd00::1]:2377")])
    assert belongs_to_cluster(worker, remote_addrs=["fd00::1"]) is True


def test_worker_whose_managers_have_other_addresses_is_in_another_swarm():
    worker = local(remote_managers=OTHER_MANAGERS)
    assert belongs_to_cluster(worker, remote_addrs=["10.0.0.1:2377"]) is False


def test_nothing_to_compare_with_gives_none():
    assert belongs_to_cluster(local(remote_managers=OUR_MANAGERS)) is None


# --------------------------------------------------------------------------- decide_join


@pytest.mark.parametrize("force", [False, True])
def test_inactive_node_joins(force):
    assert decide_join(local(state="inactive"), remote_addrs=["10.0.0.1"], force=force) == "join"


def test_node_already_in_the_swarm_is_left_alone():
    worker = local(remote_managers=OUR_MANAGERS)
    assert decide_join(worker, remote_addrs=["10.0.0.1"]) == "noop"
    assert decide_join(worker, remote_addrs=["10.0.0.1"], force=True) == "noop"


def test_manager_already_in_the_swarm_is_left_alone():
    manager = local(manager=True, cluster_id="cluster-1", remote_managers=OUR_MANAGERS)
    assert decide_join(manager, cluster_id="cluster-1", remote_addrs=["10.0.0.9"]) == "noop"


def test_active_node_with_nothing_to_compare_is_left_alone():
    assert decide_join(local(remote_managers=OTHER_MANAGERS)) == "noop"


def test_join_into_other_swarm_is_refused():
    worker = local(remote_managers=OTHER_MANAGERS)
    with pytest.raises(SwarmDecisionError) as raised:
        decide_join(worker, remote_addrs=["10.0.0.1"])
    message = str(raised.value)
    assert "already in a different swarm (managers: 10.9.0.7:2377, 10.9.0.9:2377)" in message
    assert "set force: true" in message


def test_other_swarm_without_known_manager_addresses_says_unknown_managers():
    manager = local(manager=True, cluster_id="cluster-2")
    with pytest.raises(SwarmDecisionError, match=r"\(managers: unknown managers\)"):
        decide_join(manager, cluster_id="cluster-1")


def test_forced_join_into_other_swarm_leaves_and_joins_again():
    worker = local(remote_managers=OTHER_MANAGERS)
    assert decide_join(worker, remote_addrs=["10.0.0.1"], force=True) == "rejoin"


@pytest.mark.parametrize("state", ["pending", "error"])
def test_pending_or_error_node_is_refused_with_the_engine_error(state):
    stuck = local(state=state, error="context deadline exceeded")
    with pytest.raises(SwarmDecisionError) as raised:
        decide_join(stuck, remote_addrs=["10.0.0.1"])
    assert str(raised.value) == (
        "the node is in swarm state '%s' (context deadline exceeded): it cannot join until it leaves. "
        "Set force: true to leave and join again" % state
    )


def test_pending_node_without_engine_error_gives_no_empty_parentheses():
    with pytest.raises(SwarmDecisionError, match=r"^the node is in swarm state 'pending': it cannot join"):
        decide_join(local(state="pending"), remote_addrs=["10.0.0.1"])


@pytest.mark.parametrize("state", ["pending", "error"])
def test_forced_join_of_pending_or_error_node_rejoins(state):
    assert decide_join(local(state=state), remote_addrs=["10.0.0.1"], force=True) == "rejoin"


@pytest.mark.parametrize("force", [False, True])
def test_locked_node_is_refused_even_with_force(force):
    with pytest.raises(SwarmDecisionError, match="locked .*docker swarm unlock"):
        decide_join(local(state="locked"), remote_addrs=["10.0.0.1"], force=force)


# --------------------------------------------------------------------------- decide_init


def test_inactive_node_initialises_a_swarm():
    assert decide_init(local(state="inactive")) == "init"


def test_active_manager_updates_the_swarm():
    assert decide_init(local(manager=True, cluster_id="cluster-1")) == "update"


def test_worker_cannot_init_or_update():
    with pytest.raises(SwarmDecisionError, match="worker of an existing swarm.*must run on a manager"):
        decide_init(local(remote_managers=OUR_MANAGERS))


def test_locked_node_cannot_init():
    with pytest.raises(SwarmDecisionError, match="locked .*docker swarm unlock"):
        decide_init(local(state="locked", manager=True))


@pytest.mark.parametrize("state", ["pending", "error"])
def test_pending_or_error_node_must_leave_before_init(state):
    with pytest.raises(SwarmDecisionError) as raised:
        decide_init(local(state=state, error="join timed out"))
    assert str(raised.value) == (
        "the node is in swarm state '%s' (join timed out): leave it first (state: absent, force: true)" % state
    )


# --------------------------------------------------------------------------- swarm_spec_changes

LIVE_SPEC = dict(
    Name="default",
    Labels={"team": "ops", "env": "prod"},
    Orchestration=dict(TaskHistoryRetentionLimit=5),
    Raft=dict(
        SnapshotInterval=10000, KeepOldSnapshots=0, LogEntriesForSlowFollowers=500, HeartbeatTick=1, ElectionTick=10
    ),
    Dispatcher=dict(HeartbeatPeriod=5 * NANOSECONDS),
    CAConfig=dict(NodeCertExpiry=7776000 * NANOSECONDS),
    EncryptionConfig=dict(AutoLockManagers=False),
)


def test_unset_options_are_not_diffed():
    wanted = dict.fromkeys(
        ["autolock", "task_history_retention_limit", "snapshot_interval", "dispatcher_heartbeat_period", "labels"]
    )
    changes, new_spec = swarm_spec_changes(LIVE_SPEC, wanted)
    assert changes == {}
    assert new_spec == LIVE_SPEC


def test_options_equal_to_the_live_spec_are_not_changes():
    wanted = dict(
        task_history_retention_limit=5, snapshot_interval=10000, autolock=False, labels=dict(LIVE_SPEC["Labels"])
    )
    assert swarm_spec_changes(LIVE_SPEC, wanted)[0] == {}


def test_changed_option_is_reported_and_written_at_its_api_path():
    changes, new_spec = swarm_spec_changes(LIVE_SPEC, dict(task_history_retention_limit=10, snapshot_interval=None))
    assert changes == {"task_history_retention_limit": dict(before=5, after=10)}
    assert new_spec["Orchestration"] == dict(TaskHistoryRetentionLimit=10)
    assert new_spec["Raft"] == LIVE_SPEC["Raft"]


def test_seconds_are_converted_to_nanoseconds_for_the_api_and_back_for_the_report():
    changes, new_spec = swarm_spec_changes(LIVE_SPEC, dict(dispatcher_heartbeat_period=10, node_cert_expiry=86400))
    assert changes == {
        "dispatcher_heartbeat_period": dict(before=5, after=10),
        "node_cert_expiry": dict(before=7776000, after=86400),
    }
    assert new_spec["Dispatcher"]["HeartbeatPeriod"] == 10_000_000_000
    assert new_spec["CAConfig"]["NodeCertExpiry"] == 86_400_000_000_000


def test_seconds_equal_to_the_live_nanoseconds_are_not_a_change():
    assert swarm_spec_changes(LIVE_SPEC, dict(dispatcher_heartbeat_period=5, node_cert_expiry=7776000)) == (
        {},
        LIVE_SPEC,
    )


def test_sub_second_live_value_is_reported_as_it_is():
    live = dict(Dispatcher=dict(HeartbeatPeriod=5_500_000_000))
    changes, new_spec = swarm_spec_changes(live, dict(dispatcher_heartbeat_period=5))
    assert new_spec["Dispatcher"]["HeartbeatPeriod"] == 5 * NANOSECONDS
    assert changes["dispatcher_heartbeat_period"] == dict(before=5.5, after=5)


def test_option_absent_from_the_live_spec_is_added_with_before_none():
    live = dict(Raft=dict(ElectionTick=10))
    changes, new_spec = swarm_spec_changes(live, dict(keep_old_snapshots=2, dispatcher_heartbeat_period=3))
    assert changes == {
        "keep_old_snapshots": dict(before=None, after=2),
        "dispatcher_heartbeat_period": dict(before=None, after=3),
    }
    assert new_spec == dict(
        Raft=dict(ElectionTick=10, KeepOldSnapshots=2), Dispatcher=dict(HeartbeatPeriod=3_000_000_000)
    )


def test_autolock_missing_from_the_live_spec_counts_as_off():
    assert swarm_spec_changes({}, dict(autolock=False)) == ({}, {})
    changes, new_spec = swarm_spec_changes({}, dict(autolock=True))
    assert changes == {"autolock": dict(before=False, after=True)}
    assert new_spec == dict(EncryptionConfig=dict(AutoLockManagers=True))


def test_raft_ticks_are_never_diffed_because_the_engine_fixes_them_at_init():
    changes, new_spec = swarm_spec_changes(LIVE_SPEC, dict(heartbeat_tick=3, election_tick=30))
    assert changes == {}
    assert new_spec["Raft"]["HeartbeatTick"] == 1
    assert new_spec["Raft"]["ElectionTick"] == 10


def test_labels_replace_the_live_labels_as_a_whole():
    changes, new_spec = swarm_spec_changes(LIVE_SPEC, dict(labels={"team": "ops", "tier": "core"}))
    assert changes == {
        "labels": dict(before={"team": "ops", "env": "prod"}, after={"team": "ops", "tier": "core"}),
    }
    assert new_spec["Labels"] == {"team": "ops", "tier": "core"}


def test_empty_labels_clear_the_live_labels():
    changes, new_spec = swarm_spec_changes(LIVE_SPEC, dict(labels={}))
    assert changes == {"labels": dict(before={"team": "ops", "env": "prod"}, after={})}
    assert new_spec["Labels"] == {}


def test_spec_diff_does_not_modify_the_live_spec():
    live = copy.deepcopy(LIVE_SPEC)
    swarm_spec_changes(live, dict(task_history_retention_limit=1, labels={"a": "b"}, autolock=True))
    assert live == LIVE_SPEC


def test_missing_live_spec_is_diffed_as_empty():
    changes, new_spec = swarm_spec_changes(None, dict(snapshot_interval=5000, labels={"a": "b"}))
    assert changes == {
        "snapshot_interval": dict(before=None, after=5000),
        "labels": dict(before={}, after={"a": "b"}),
    }
    assert new_spec == dict(Raft=dict(SnapshotInterval=5000), Labels={"a": "b"})


# --------------------------------------------------------------------------- swarm_init_body


def test_init_body_without_options_listens_on_the_swarm_port_with_an_empty_spec():
    assert swarm_init_body({}) == dict(ListenAddr="0.0.0.0:2377", AdvertiseAddr="", ForceNewCluster=False, Spec={})


def test_init_body_carries_addresses_and_force_new_cluster():
    body = swarm_init_body(
        dict(listen_addr="10.0.0.1:2377", advertise_addr="10.0.0.1", data_path_addr="10.1.0.1", force_new_cluster=True)
    )
    assert body == dict(
        ListenAddr="10.0.0.1:2377",
        AdvertiseAddr="10.0.0.1",
        ForceNewCluster=True,
        Spec={},
        DataPathAddr="10.1.0.1",
    )


def test_init_body_spec_has_every_set_option_at_its_api_path_in_api_units():
    params = dict(
        autolock=False,
        task_history_retention_limit=3,
        snapshot_interval=20000,
        keep_old_snapshots=1,
        log_entries_for_slow_followers=200,
        heartbeat_tick=2,
        election_tick=20,
        dispatcher_heartbeat_period=7,
        node_cert_expiry=3600,
        labels={"env": "lab"},
    )
    assert swarm_init_body(params)["Spec"] == dict(
        EncryptionConfig=dict(AutoLockManagers=False),
        Orchestration=dict(TaskHistoryRetentionLimit=3),
        Raft=dict(
            SnapshotInterval=20000, KeepOldSnapshots=1, LogEntriesForSlowFollowers=200, HeartbeatTick=2, ElectionTick=20
        ),
        Dispatcher=dict(HeartbeatPeriod=7_000_000_000),
        CAConfig=dict(NodeCertExpiry=3_600_000_000_000),
        Labels={"env": "lab"},
    )


def test_init_body_sends_data_path_port_only_when_set():
    assert "DataPathPort" not in swarm_init_body(dict(data_path_port=None))
    assert swarm_init_body(dict(data_path_port=7789))["DataPathPort"] == 7789


def test_address_pool_brings_a_subnet_size_defaulting_to_24():
    body = swarm_init_body(dict(default_addr_pool=["10.20.0.0/16"]))
    assert (body["DefaultAddrPool"], body["SubnetSize"]) == (["10.20.0.0/16"], 24)
    body = swarm_init_body(dict(default_addr_pool=("10.20.0.0/16", "10.30.0.0/16"), subnet_size=26))
    assert (body["DefaultAddrPool"], body["SubnetSize"]) == (["10.20.0.0/16", "10.30.0.0/16"], 26)


def test_subnet_size_without_address_pool_is_left_out():
    body = swarm_init_body(dict(subnet_size=26))
    assert "SubnetSize" not in body
    assert "DefaultAddrPool" not in body


def test_empty_labels_are_left_out_of_the_init_spec():
    assert swarm_init_body(dict(labels={}))["Spec"] == {}


# --------------------------------------------------------------------------- init_only_drift

LIVE_SWARM = dict(
    DataPathPort=4789,
    DefaultAddrPool=["10.0.0.0/8", "172.16.0.0/12"],
    SubnetSize=24,
    Spec=dict(Raft=dict(HeartbeatTick=1, ElectionTick=10)),
)


def test_no_drift_when_no_init_only_setting_is_asked():
    assert init_only_drift(LIVE_SWARM, dict(data_path_port=None, default_addr_pool=None, heartbeat_tick=None)) == []


def test_init_only_settings_equal_to_the_live_swarm_are_not_drift():
    params = dict(
        data_path_port=4789,
        default_addr_pool=["172.16.0.0/12", "10.0.0.0/8"],
        subnet_size=24,
        heartbeat_tick=1,
        election_tick=10,
    )
    assert init_only_drift(LIVE_SWARM, params) == []


def test_every_drifted_init_only_setting_is_reported_with_live_and_wanted_values():
    params = dict(
        data_path_port=7789,
        default_addr_pool=["10.200.0.0/16"],
        subnet_size=26,
        heartbeat_tick=2,
        election_tick=20,
    )
    assert init_only_drift(LIVE_SWARM, params) == [
        "data_path_port is 4789 in the live swarm, not 7789",
        "default_addr_pool is ['10.0.0.0/8', '172.16.0.0/12'] in the live swarm, not ['10.200.0.0/16']",
        "subnet_size is 24 in the live swarm, not 26",
        "heartbeat_tick is 1 in the live swarm, not 2",
        "election_tick is 10 in the live swarm, not 20",
    ]


def test_subnet_size_is_only_compared_along_with_an_address_pool():
    assert init_only_drift(LIVE_SWARM, dict(subnet_size=26)) == []


def test_settings_the_live_swarm_does_not_report_are_not_drift():
    params = dict(data_path_port=7789, default_addr_pool=["10.200.0.0/16"], subnet_size=26, heartbeat_tick=2)
    assert init_only_drift({}, params) == []


# --------------------------------------------------------------------------- node_row

LEADER_NODE = dict(
    ID="node-leader",
    Spec=dict(Role="manager", Availability="active", Labels={"zone": "a"}),
    Status=dict(State="ready", Addr="10.0.0.1"),
    Description=dict(Hostname="manager-1", Engine=dict(EngineVersion="27.3.1")),
    ManagerStatus=dict(Leader=True, Reachability="reachable", Addr="10.0.0.1:2377"),
)


def test_leader_row_is_shown_as_docker_node_ls_does():
    assert node_row(LEADER_NODE) == dict(
        id="node-leader",
        hostname="manager-1",
        status="Ready",
        availability="Active",
        manager_status="Leader",
        engine_version="27.3.1",
        role="manager",
        address="10.0.0.1",
        labels={"zone": "a"},
    )


@pytest.mark.parametrize(
    ("reachability", "shown"), [("reachable", "Reachable"), ("unreachable", "Unreachable"), ("unknown", "Unknown")]
)
def test_manager_status_of_a_follower_is_its_reachability(reachability, shown):
    node = dict(LEADER_NODE, ManagerStatus=dict(Reachability=reachability))
    assert node_row(node)["manager_status"] == shown


def test_worker_row_has_an_empty_manager_status():
    node = dict(LEADER_NODE, ManagerStatus=None, Spec=dict(Role="worker", Availability="drain"))
    row = node_row(node)
    assert (row["manager_status"], row["role"], row["availability"], row["labels"]) == ("", "worker", "Drain", {})


def test_row_of_a_node_without_details_says_unknown():
    assert node_row({}) == dict(
        id=None,
        hostname=None,
        status="Unknown",
        availability="",
        manager_status="",
        engine_version=None,
        role=None,
        address=None,
        labels={},
    )


# --------------------------------------------------------------------------- node_spec_changes

NODE_SPEC = dict(Role="worker", Availability="active", Labels={"zone": "a", "disk": "ssd"})


def test_node_with_nothing_wanted_has_no_changes():
    changes, new_spec = node_spec_changes(NODE_SPEC)
    assert changes == {}
    assert new_spec == NODE_SPEC
    assert new_spec is not NODE_SPEC


def test_node_labels_merge_into_the_live_ones():
    changes, new_spec = node_spec_changes(NODE_SPEC, labels={"zone": "b", "gpu": "yes"})
    assert changes == {
        "labels": dict(before={"zone": "a", "disk": "ssd"}, after={"zone": "b", "disk": "ssd", "gpu": "yes"}),
    }
    assert new_spec["Labels"] == {"zone": "b", "disk": "ssd", "gpu": "yes"}


def test_node_labels_replace_mode_drops_labels_not_given():
    changes, new_spec = node_spec_changes(NODE_SPEC, labels={"zone": "a"}, labels_mode="replace")
    assert changes["labels"]["after"] == {"zone": "a"}
    assert new_spec["Labels"] == {"zone": "a"}


def test_node_labels_to_remove_are_dropped_and_unknown_keys_ignored():
    changes, new_spec = node_spec_changes(NODE_SPEC, labels_to_remove=["disk", "absent"])
    assert changes == {"labels": dict(before={"zone": "a", "disk": "ssd"}, after={"zone": "a"})}
    assert new_spec["Labels"] == {"zone": "a"}


def test_merging_labels_already_present_is_not_a_change():
    assert node_spec_changes(NODE_SPEC, labels={"zone": "a"})[0] == {}


def test_node_availability_and_role_changes_are_reported_in_lower_case_keys():
    changes, new_spec = node_spec_changes(NODE_SPEC, availability="drain", role="manager")
    assert changes == {
        "availability": dict(before="active", after="drain"),
        "role": dict(before="worker", after="manager"),
    }
    assert (new_spec["Availability"], new_spec["Role"]) == ("drain", "manager")
    assert node_spec_changes(NODE_SPEC, availability="active", role="worker")[0] == {}


# --------------------------------------------------------------------------- count_managers

NODES = [
    dict(ID="m1", Spec=dict(Role="manager")),
    dict(ID="m2", Spec=dict(Role="manager")),
    dict(ID="w1", Spec=dict(Role="worker")),
    dict(ID="x1"),
]


def test_managers_are_counted_by_spec_role():
    assert count_managers(NODES) == 2


def test_demoting_last_manager_is_detected_by_excluding_it():
    assert count_managers(NODES, exclude_id="m1") == 1
    assert count_managers(NODES[1:], exclude_id="m2") == 0
    assert count_managers(NODES, exclude_id="w1") == 2


# --------------------------------------------------------------------------- _version_tuple


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7.1.0", (7, 1, 0)),
        ("5.0", (5, 0, 0)),
        ("4", (4, 0, 0)),
        ("4.0.0-dev", (4, 0, 0)),
        ("6.1.3.4", (6, 1, 3)),
        ("", (0, 0, 0)),
    ],
)
def test_version_text_becomes_a_three_part_tuple(text, expected):
    assert _version_tuple(text) == expected


def test_too_old_sdk_version_compares_below_the_minimum():
    assert _version_tuple("3.7.3") < (4, 0, 0) <= _version_tuple("4.0.2")


def test_pre_release_suffix_does_not_change_the_patch_number():
    assert _version_tuple("1.2.3rc45") == (1, 2, 3)


def test_autolock_is_read_from_the_swarm_spec():
    info = docker_info(manager=True, cluster_id="cluster-1")
    info["Swarm"]["Cluster"]["Spec"] = dict(EncryptionConfig=dict(AutoLockManagers=True))
    assert local_node_state(info)["autolock"] is True


# --------------------------------------------------------------------------- bounded waits


class Clock:
    """A monotonic clock that only moves when slept on, or when a try takes time."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_returns_the_first_answer_that_holds():
    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import Deadline, NotYet, wait_for

    clock = Clock()
    answers = iter([NotYet("starting"), NotYet("starting"), "back"])

    def attempt():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_for(attempt, Deadline(10, clock), interval=1, sleep=clock.sleep) == "back"
    assert clock.now == 2


def test_wait_ends_at_its_deadline_with_the_last_reason_and_never_sleeps_past_it():
    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import Deadline, NotYet, wait_for

    clock = Clock()
    tries = []

    def attempt():
        tries.append(clock.now)
        clock.now += 0.7  # each try takes time too (an engine call bounded by the time left)
        raise NotYet("locked at %.1f" % clock.now)

    with pytest.raises(NotYet) as raised:
        wait_for(attempt, Deadline(5, clock), interval=1, sleep=clock.sleep)
    # Tries at 0, 1.7, 3.4; the pause before the last one is cut to the 0.9 s left, so it starts at the
    # deadline (its engine calls then get the shortest bound) and nothing runs after it.
    assert tries == pytest.approx([0, 1.7, 3.4, 5.0])
    assert str(raised.value) == "locked at 5.7"
    assert clock.sleeps == pytest.approx([1, 1, 0.9])


def test_a_deadline_never_has_negative_time_left():
    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import Deadline

    clock = Clock()
    deadline = Deadline(3, clock)
    clock.now = 10
    assert deadline.remaining() == 0.0


# --------------------------------------------------------------------------- engine sockets and errors


@pytest.mark.parametrize(
    "url, target",
    [
        ("unix:///var/run/docker.sock", ("unix", "/var/run/docker.sock")),
        ("tcp://10.0.0.1:2376", ("tcp", ("10.0.0.1", 2376))),
        ("tcp://engine.example", ("tcp", ("engine.example", 2375))),
        ("https://[fd00::1]:2376", ("tcp", ("fd00::1", 2376))),
        ("https://[fd00::1]", ("tcp", ("fd00::1", 2376))),
        ("ssh://root@host", None),
    ],
)
def test_engine_socket_of_a_docker_host_url(url, target):
    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import engine_socket

    assert engine_socket(url) == target


def test_no_socket_file_means_no_engine(tmp_path):
    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import engine_absence

    assert engine_absence("unix://%s/docker.sock" % tmp_path, 1) == "no socket at %s/docker.sock" % tmp_path


def test_a_socket_nobody_listens_on_means_no_engine(tmp_path):
    import socket

    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import engine_absence

    path = tmp_path / "docker.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays, nothing listens: what a crashed dockerd leaves
    assert engine_absence("unix://%s" % path, 1).startswith("nothing listens at unix://%s (" % path)


def test_a_socket_that_accepts_is_an_engine_even_when_it_never_answers(tmp_path):
    import socket

    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import engine_absence

    path = tmp_path / "docker.sock"
    stuck = socket.socket(socket.AF_UNIX)
    stuck.bind(str(path))
    stuck.listen(1)
    try:
        assert engine_absence("unix://%s" % path, 1) is None
    finally:
        stuck.close()


def test_engine_errors_keep_the_engines_words_and_timeouts_say_how_long():
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ReadTimeout

    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
        APIError,
        describe_engine_error,
    )

    refused = APIError(
        "503 Server Error", explanation="rpc error: code = Unknown desc = The swarm does not have a leader"
    )
    assert describe_engine_error(refused, 60) == "rpc error: code = Unknown desc = The swarm does not have a leader"
    timed_out = ReadTimeout("UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. (read timeout=3)")
    assert describe_engine_error(timed_out, 3) == "no answer within 3 s (%s)" % timed_out
    try:
        try:
            raise timed_out
        except ReadTimeout as cause:
            raise RuntimeError("wrapped") from cause
    except RuntimeError as wrapped:
        assert describe_engine_error(wrapped, 2.5).startswith("no answer within 2.5 s")
    assert describe_engine_error(RequestsConnectionError("Connection aborted"), 60) == "Connection aborted"


def engine_client(params, tmp_path, clock):
    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import EngineClient

    class Module:
        def __init__(self):
            self.params = dict(dict(docker_host="unix://%s/docker.sock" % tmp_path, timeout=60), **params)

        def fail_json(self, **kwargs):
            raise SystemExit(kwargs["msg"])

    return lambda **kw: EngineClient(Module(), clock=clock, sleep=clock.sleep, **kw)


def test_no_engine_is_unavailable_for_a_soft_client_and_a_failure_otherwise(tmp_path):
    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import EngineUnavailable

    make = engine_client({}, tmp_path, Clock())
    with pytest.raises(EngineUnavailable):
        make(soft=True)
    with pytest.raises(SystemExit) as failed:
        make()
    assert str(failed.value).startswith("no Docker engine answers at unix://%s/docker.sock: no socket at" % tmp_path)


def test_the_wait_for_an_engine_gives_up_at_its_timeout_saying_so(tmp_path):
    clock = Clock()
    make = engine_client({}, tmp_path, clock)
    with pytest.raises(SystemExit) as failed:
        make(wait=5)
    assert str(failed.value) == (
        "the Docker engine at unix://%s/docker.sock did not answer within 5 s: no socket at %s/docker.sock"
        % (tmp_path, tmp_path)
    )
    assert clock.now == 5


# --------------------------------------------------------------------------- swarm state=unlocked: back in the swarm


def unlocked_view(state="active", manager=True, listed_as_manager=True):
    info = docker_info(
        state=state,
        manager=manager,
        cluster_id="cluster-1" if manager else None,
        remote_managers=[dict(NodeID="self-1", Addr="10.0.0.5:2377")] if listed_as_manager else OUR_MANAGERS,
    )
    return local_node_state(info)


def test_a_locked_or_pending_node_is_not_back():
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm import not_back_yet

    assert not_back_yet(unlocked_view(state="locked", manager=False), None) == "its swarm state is locked"
    local = dict(unlocked_view(state="pending", manager=False), error="rpc error: timeout")
    assert not_back_yet(local, None) == "its swarm state is pending: rpc error: timeout"


def test_a_worker_is_back_once_active():
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm import not_back_yet

    assert not_back_yet(unlocked_view(manager=False, listed_as_manager=False), None) is None


def test_a_manager_whose_control_plane_has_not_started_is_not_back():
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm import is_raft_member, not_back_yet

    local = unlocked_view(manager=False, listed_as_manager=True)
    assert is_raft_member(local)
    assert not_back_yet(local, None) == "its manager has not started yet"


@pytest.mark.parametrize(
    "status, missing",
    [
        (dict(Reachability="reachable"), None),
        (dict(Leader=True, Reachability="reachable"), None),
        (dict(Reachability="unreachable"), "the leader sees its manager as unreachable"),
        ({}, "the leader sees its manager as unknown"),
    ],
)
def test_a_manager_is_back_once_the_leader_sees_it_reachable(status, missing):
    from ansible_collections.swarmplane.cluster.plugins.modules.swarm import not_back_yet

    assert not_back_yet(unlocked_view(), dict(ID="self-1", ManagerStatus=status)) == missing


# --------------------------------------------------------------------------- the unlock key's vault file


def vault_writer(tmp_path):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "roles" / "swarm" / "files" / "vault_unlock_key.py"
    spec = importlib.util.spec_from_file_location("vault_unlock_key", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    password = tmp_path / "password"
    password.write_text("a vault password\n")

    def run(target, key, *extra):
        import contextlib
        import io

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            module.main(["--vault-id", "swarm@%s" % password, *extra, str(target)], stdin=io.StringIO(key + "\n"))
        return out.getvalue().strip()

    return module, run


def test_the_key_is_written_encrypted_mode_0600_and_read_back(tmp_path):
    module, run = vault_writer(tmp_path)
    target = tmp_path / "unlock.yml"
    key = "SWMKEY-1-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

    assert run(target, key, "--check") == "would write"
    assert not target.exists()
    assert run(target, key) == "written"
    text = target.read_text()
    assert text.startswith("$ANSIBLE_VAULT;1.2;AES256;swarm\n") and "abcdefghijklmnop" not in text
    assert target.stat().st_mode & 0o777 == 0o600
    vault, _label = module.open_vault("swarm@%s" % (tmp_path / "password"))
    assert module.stored_key(vault, str(target)) == key
    assert run(target, key) == "unchanged"
    assert run(target, "SWMKEY-1-rotated") == "written"
    assert module.stored_key(vault, str(target)) == "SWMKEY-1-rotated"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["password", "unlock.yml"]  # no temporary file left


def test_a_file_holding_anything_else_is_refused_without_quoting_the_key(tmp_path, capsys):
    _module, run = vault_writer(tmp_path)
    target = tmp_path / "vars.yml"
    target.write_text("db_password: hunter2\n")
    with pytest.raises(SystemExit) as refused:
        run(target, "SWMKEY-1-secretsecret")
    assert "cannot write the vault file %s: it exists and this vault ID cannot read it" % target in str(refused.value)
    assert "secretsecret" not in str(refused.value)
    assert target.read_text() == "db_password: hunter2\n"


def test_no_key_on_stdin_is_an_error(tmp_path):
    _module, run = vault_writer(tmp_path)
    with pytest.raises(SystemExit) as refused:
        run(tmp_path / "unlock.yml", "")
    assert "no unlock key on stdin" in str(refused.value)


class FakeEngine:
    """The EngineClient surface `swarm state=unlocked` uses, over a node that is locked, then (once unlocked with
    KEY) comes back after `back_after` seconds: active, its manager reachable as the leader sees it."""

    KEY = "SWMKEY-1-right"

    def __init__(self, module, wait=0, clock=None, sleep=None):
        self.module = module
        self.clock, self.sleep = clock, sleep
        self.api = self
        self.unlocked_at = None
        self.timeout = 60  # each call's bound: the module's timeout until bounded_by() says otherwise
        self.info_timeouts = []
        self.posts = []

    # the SDK calls the module makes through attempt()
    def info(self):
        self.info_timeouts.append(self.timeout)
        now = self.clock()
        if self.unlocked_at is None:
            state, manager = "locked", False
        elif now - self.unlocked_at < self.module.back_after:
            state, manager = "active", False
        else:
            state, manager = "active", True
        info = docker_info(state=state, manager=manager, cluster_id="c1" if manager else None)
        info["Swarm"]["NodeID"] = "self-1"
        info["Swarm"]["RemoteManagers"] = [dict(NodeID="self-1", Addr="10.0.0.5:2377")]
        return info

    def node_or_none(self, node_id):
        return dict(ID=node_id, ManagerStatus=dict(Reachability="reachable"))

    def _post_json(self, path, body, params=None):
        self.posts.append((path, body))
        if body["UnlockKey"] != self.KEY:
            raise EngineError("docker swarm unlock failed: swarm could not be unlocked: invalid key specified", True)
        self.unlocked_at = self.clock()

    def attempt(self, doing, func, *args):
        return func(*args)

    def bounded_by(self, deadline):
        self.timeout = round(deadline.remaining(), 1)

    def unbounded(self):
        self.timeout = 60

    def fail(self, msg, **kwargs):
        raise SystemExit(msg)


def unlocked_run(monkeypatch, unlock_key, back_after=3, timeout=20):
    from ansible_collections.swarmplane.cluster.plugins.modules import swarm

    class Module:
        check_mode = False

        def __init__(self):
            self.params = dict(state="unlocked", unlock_key=unlock_key, timeout=timeout, return_join_tokens=False)
            self.back_after = back_after

    monkeypatch.setattr(swarm, "EngineClient", FakeEngine)
    clock = Clock()
    manager = swarm.SwarmManager(Module(), clock=clock, sleep=clock.sleep)
    return manager, clock


def test_a_locked_manager_is_unlocked_with_the_key_and_waited_for_until_back_in_the_raft(monkeypatch):
    manager, clock = unlocked_run(monkeypatch, FakeEngine.KEY, back_after=3)
    result = manager.run()
    assert (result["changed"], result["action"], result["swarm_state"]) == (True, "unlock", "active")
    assert manager.client.posts == [("/swarm/unlock", dict(UnlockKey=FakeEngine.KEY))]
    assert result["waited"] == clock.now and 3 <= clock.now < 4
    # Every `docker info` of the wait is bounded by the time it has left, the first one included.
    assert manager.client.info_timeouts[:2] == [20, 20] and max(manager.client.info_timeouts[2:-1]) < 20


def test_a_locked_manager_without_a_key_fails_saying_how_to_get_it(monkeypatch):
    manager, _clock = unlocked_run(monkeypatch, None)
    with pytest.raises(SystemExit) as failed:
        manager.run()
    assert str(failed.value).startswith("the node is locked (autolock): its engine restarted and waits for the swarm's")
    assert manager.client.posts == []


def test_a_wrong_key_fails_in_the_engines_words_and_the_node_stays_locked(monkeypatch):
    manager, _clock = unlocked_run(monkeypatch, "SWMKEY-1-wrong")
    with pytest.raises(SystemExit) as failed:
        manager.run()
    assert str(failed.value).startswith(
        "docker swarm unlock failed: swarm could not be unlocked: invalid key specified; the node stays locked."
    )
    assert "SWMKEY-1-wrong" not in str(failed.value)


def test_a_manager_not_back_within_the_timeout_fails_at_the_timeout_saying_what_it_lacks(monkeypatch):
    manager, clock = unlocked_run(monkeypatch, FakeEngine.KEY, back_after=60, timeout=10)
    with pytest.raises(SystemExit) as failed:
        manager.run()
    assert (
        str(failed.value) == "the node is not back in its swarm within 10 s (timeout): its manager has not started yet"
    )
    assert clock.now == 10

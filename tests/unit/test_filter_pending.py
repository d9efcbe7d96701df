"""engine_pending_work and swarm_pending_work: a run skips the engine and swarm plays only when these say nothing."""

import hashlib

import pytest

from ansible_collections.swarmplane.cluster.plugins.filter.pending import engine_pending_work, swarm_pending_work

DAEMON_JSON = '{\n    "debug": true\n}\n'
PATH = "/etc/docker/daemon.json"
SHA1 = hashlib.sha1(DAEMON_JSON.encode()).hexdigest()
GOOD_FILE = dict(exists=True, checksum=SHA1, owner="root", group="root", mode="0644")


def probe(**extra):
    return dict(dict(docker_available=True, swarm_state="active", kernel_drift=[]), **extra)


def engine(**wanted):
    return dict(dict(daemon_json_sha1="", daemon_json_path=PATH), **wanted)


def test_an_engine_with_nothing_drifted_has_no_work():
    assert engine_pending_work(probe(), engine()) == []
    assert engine_pending_work(probe(files={PATH: GOOD_FILE}), engine(daemon_json_sha1=SHA1)) == []


@pytest.mark.parametrize(
    ("found", "wanted", "reason"),
    [
        (dict(docker_available=False, docker_error="no socket"), {}, "the engine does not answer (no socket)"),
        (dict(swarm_state="locked"), {}, "its manager is locked (autolock)"),
        (dict(kernel_drift=["net.ipv4.ip_forward = 0"]), {}, "kernel settings differ: net.ipv4.ip_forward = 0"),
        ({}, dict(prepare_always=True), "docker_engine_prepare_always is true"),
        ({}, dict(upgrade=True), "docker_engine_upgrade is true"),
        ({}, dict(firewall=True), "docker_engine_firewall_manage is true"),
        ({}, dict(live_restore=True), "docker_engine_daemon_options sets live-restore (refused)"),
        ({}, dict(daemon_json_sha1=SHA1), "%s was not probed" % PATH),
        (dict(files={PATH: dict(exists=False)}), dict(daemon_json_sha1=SHA1), "%s does not exist yet" % PATH),
        (
            dict(files={PATH: dict(GOOD_FILE, checksum="0" * 40)}),
            dict(daemon_json_sha1=SHA1),
            "%s differs from docker_engine_daemon_options" % PATH,
        ),
        (
            dict(files={PATH: dict(GOOD_FILE, mode="0600")}),
            dict(daemon_json_sha1=SHA1),
            "%s is not owned by root:root with mode 0644" % PATH,
        ),
    ],
)
def test_each_thing_the_engine_role_would_do_is_a_reason(found, wanted, reason):
    assert engine_pending_work(probe(**found), engine(**wanted)) == [reason]


def test_a_host_whose_settings_were_not_noted_counts_as_work():
    assert engine_pending_work(probe(), None) == ["docker_engine_wanted is not set"]


def test_a_probe_without_the_kernel_drift_counts_as_work():
    found = probe()
    del found["kernel_drift"]
    assert engine_pending_work(found, engine()) == ["its kernel settings were not probed"]


# --------------------------------------------------------------------------- swarm_pending_work

MANAGERS = ["m1"]
HOSTS = ["m1", "w1"]


def node(node_id, hostname, role="worker", **extra):
    return dict(
        dict(id=node_id, hostname=hostname, address="10.0.0.%d" % len(hostname), status="Ready", role=role), **extra
    )


def hostvars(nodes=None, **overrides):
    nodes = nodes if nodes is not None else [node("n1", "m1", "manager", manager_status="Leader"), node("n2", "w1")]
    found = {
        "m1": dict(
            swarm_probe=dict(in_swarm=True, is_manager=True, node_id="n1", hostname="m1", leader="m1", nodes=nodes)
        ),
        "w1": dict(swarm_probe=dict(in_swarm=True, is_manager=False, node_id="n2")),
    }
    for host, extra in overrides.items():
        found[host] = dict(found.get(host, {}), **extra)
    for host_vars in found.values():  # engines up with nothing drifted, unless a test says otherwise
        host_vars.setdefault("docker_engine_wanted", engine())
        for key, value in dict(docker_available=True, swarm_state="active", kernel_drift=[]).items():
            host_vars["swarm_probe"].setdefault(key, value)
    return found


def reasons(hosts, found, managers, wanted):
    """Every reason, engine's then swarm's: what the Plan play prints."""
    work = swarm_pending_work(hosts, found, managers, wanted)
    return work["engine"] + work["swarm"]


def test_a_formed_swarm_as_the_inventory_says_has_no_work():
    assert swarm_pending_work(HOSTS, hostvars(), MANAGERS, {}) == dict(engine=[], swarm=[])


def test_engine_work_on_a_host_is_engine_work_and_the_node_list_is_left_to_the_swarm_play():
    nodes = [node("n1", "m1", "manager", manager_status="Leader"), node("n2", "w1", status="Down")]
    found = hostvars(nodes, w1=dict(docker_engine_wanted=engine(upgrade=True)))
    assert swarm_pending_work(HOSTS, found, MANAGERS, {}) == dict(
        engine=["w1: docker_engine_upgrade is true"], swarm=[]
    )
    found = hostvars(m1=dict(docker_engine_wanted=None))
    assert reasons(HOSTS, found, MANAGERS, {}) == ["m1: docker_engine_wanted is not set"]


def test_joins_alone_leave_the_engine_play_out():
    found = hostvars(w1=dict(swarm_probe=dict(in_swarm=False, node_id="")))
    assert swarm_pending_work(HOSTS, found, MANAGERS, {}) == dict(engine=[], swarm=["w1: not in the swarm"])


def test_a_host_outside_the_swarm_and_declared_settings_are_work():
    found = hostvars(w1=dict(swarm_probe=dict(in_swarm=False)))
    wanted = dict(settings_declared=True, rotate_tokens="worker", unlock_key_vault_file="key.vault")
    assert reasons(HOSTS, found, MANAGERS, wanted) == [
        "w1: not in the swarm",
        "swarm settings are declared",
        "swarm_rotate_tokens=worker",
        "swarm_unlock_key_vault_file is set",
    ]


def test_role_availability_and_label_changes_are_work():
    found = hostvars(w1=dict(swarm_node_labels={"web": "yes"}, swarm_node_availability="drain"))
    assert reasons(HOSTS + ["m2"], dict(found, m2=found["w1"]), MANAGERS + ["m2"], {}) == [
        "m2: role manager, availability drain, labels web=yes",
        "w1: availability drain, labels web=yes",
    ]


def test_nodes_not_ready_unknown_or_missing_are_work():
    nodes = [node("n1", "m1", "manager", manager_status="Leader"), node("n2", "w1", status="Down")]
    assert reasons(HOSTS, hostvars(nodes), MANAGERS, {}) == ["w1: its node is Down"]
    gone = hostvars(nodes[:1])
    assert reasons(HOSTS, gone, MANAGERS, {}) == ["w1: its node n2 is not in the node list"]


def test_a_stale_entry_and_a_node_left_drained_by_a_restart_are_work():
    nodes = [
        node("n1", "m1", "manager", manager_status="Leader"),
        node("n2", "w1"),
        node("old", "w1", status="Down"),
        node("n3", "w9", labels={"swarmplane.restart.availability": "active"}),
    ]
    wanted = dict(restart_label="swarmplane.restart.availability")
    assert swarm_pending_work(HOSTS, hostvars(nodes), MANAGERS, wanted) == dict(
        engine=["w9: left drained by an interrupted restart"], swarm=[]
    )
    assert reasons(HOSTS, hostvars(nodes[:3]), MANAGERS, wanted) == ["w1: a stale entry (node old)"]


def test_without_a_node_list_from_a_live_manager_the_plays_run():
    found = hostvars(m1=dict(swarm_probe=dict(in_swarm=True, is_manager=True, node_id="n1", nodes_error="no leader")))
    assert reasons(HOSTS, found, MANAGERS, {}) == ["no node list from a live manager"]


def test_unreachable_hosts_are_left_out_and_an_outside_manager_gives_the_node_list():
    found = hostvars(w1=dict(swarm_probe=dict(unreachable=True)))
    assert reasons(HOSTS, found, MANAGERS, {}) == []
    limited = reasons(["w1"], hostvars(), MANAGERS, dict(outside_managers=["m1"]))
    assert limited == []

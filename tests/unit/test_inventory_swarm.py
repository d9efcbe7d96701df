"""The inventory plugin swarmplane.cluster.swarm on `docker node inspect` output recorded from a lab.

tests/unit/data/inventory_swarm_nodes.json is the output of `docker node inspect $(docker node ls -q)` on a
manager of a lab of 2 managers and 1 worker, where worker-1 left and joined again (its old node stays, Down),
manager-2 is paused and labelled disk=ssd, and the new worker-1 is drained and labelled zone=eu-west.1 and
com.example.rack="r 1". The plugin runs as Ansible runs it (its options from its own DOCUMENTATION, a real
InventoryData, a real cache plugin); only the ssh process is replaced, by one that answers with that output.
"""

import copy
import json
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.utils.display import Display

from ansible_collections.swarmplane.cluster.plugins.inventory import swarm as plugin_module
from ansible_collections.swarmplane.cluster.plugins.inventory.swarm import (
    InventoryModule,
    SourceError,
    assign_hostnames,
    explain_remote_failure,
    node_address,
    node_groups,
    parse_manager,
    parse_node_inspect,
    remote_command,
    ssh_argv,
)

NODES_JSON = (Path(__file__).parent / "data" / "inventory_swarm_nodes.json").read_text()
NODES = json.loads(NODES_JSON)
NAME = "swarmplane.cluster.swarm"
STALE_WORKER = "qh7tpdddn5kgy1rlly6hanovs"
LIVE_WORKER = "lmzcrpp7wop4zwsul2atlkdrm"


def new_plugin():
    """The plugin as Ansible's loader makes it: option definitions from its DOCUMENTATION and fragments."""
    inventory_loader._load_config_defs(NAME, plugin_module, plugin_module.__file__)
    plugin = InventoryModule()
    plugin._load_name = plugin.ansible_name = NAME
    plugin._redirected_names = [NAME]
    return plugin


class FakeSsh:
    """Stands in for subprocess.run: records each argv, answers with a CompletedProcess (or raises)."""

    def __init__(self, stdout=NODES_JSON, returncode=0, stderr="", raises=None):
        self.calls = []
        self.stdout, self.returncode, self.stderr, self.raises = stdout, returncode, stderr, raises

    def __call__(self, argv, **kwargs):
        self.calls.append((argv, kwargs))
        if self.raises:
            raise self.raises
        return subprocess.CompletedProcess(argv, self.returncode, self.stdout, self.stderr)


@pytest.fixture
def ssh(monkeypatch):
    fake = FakeSsh()
    monkeypatch.setattr(plugin_module.subprocess, "run", fake)
    return fake


@pytest.fixture
def warnings(monkeypatch):
    """The warnings the plugin gives (through Ansible's Display, a singleton)."""
    seen = []
    monkeypatch.setattr(Display(), "warning", seen.append)
    return seen


def write_config(directory, name="swarm.yml", **options):
    config = dict(dict(plugin=NAME, manager="192.0.2.11"), **options)
    path = directory / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def run_plugin(path, cache=True):
    """parse() as Ansible calls it, then the cache written as the inventory manager does; returns the inventory."""
    inventory = InventoryData()
    plugin = new_plugin()
    plugin.parse(inventory, DataLoader(), path, cache=cache)
    try:
        plugin.update_cache_if_changed()
    except AttributeError:  # cache off: no cache plugin loaded, as for the inventory manager
        pass
    return inventory


def group_hosts(inventory):
    """{group: sorted host names} of the groups that hold hosts directly."""
    return {name: sorted(h.name for h in group.hosts) for name, group in inventory.groups.items() if group.hosts}


def variables(inventory, host):
    """The variables the plugin set on the host (without those Ansible adds: group_names, inventory_*)."""
    return {
        k: v
        for k, v in inventory.get_host(host).get_vars().items()
        if k not in ("group_names", "inventory_hostname", "inventory_hostname_short", "inventory_file", "inventory_dir")
    }


# --------------------------------------------------------------------------- parsing the recorded output


def test_the_recorded_output_parses_into_one_record_per_node():
    records = {r["id"]: r for r in parse_node_inspect(NODES_JSON)}
    assert len(records) == 4
    assert records["v7v8zs026igpmg3snl4krv6iu"] == dict(
        id="v7v8zs026igpmg3snl4krv6iu",
        hostname="manager-1",
        role="manager",
        availability="active",
        status="ready",
        address="172.18.0.2",
        engine_version="20.10.24+dfsg1",
        labels={},
        leader=True,
        reachability="reachable",
        updated_at="2026-11-27T18:41:00.82002815Z",
    )
    assert records[LIVE_WORKER]["labels"] == {"com.example.rack": "r 1", "zone": "eu-west.1"}
    assert (records[LIVE_WORKER]["availability"], records[LIVE_WORKER]["reachability"]) == ("drain", "")
    assert records[STALE_WORKER]["status"] == "down"
    assert records["zfy4wflee6an8h0g7g0kbgvr3"]["availability"] == "pause"


@pytest.mark.parametrize("text", ["", "{}", "[{}]", '{"ID": "x"}', "Error response from daemon"])
def test_output_that_is_not_a_node_list_is_refused(text):
    with pytest.raises(ValueError):
        parse_node_inspect(text)


def test_a_manager_reporting_0_0_0_0_is_reached_at_its_manager_address():
    node = copy.deepcopy(NODES[0])
    node["Status"]["Addr"] = "0.0.0.0"
    node["ManagerStatus"]["Addr"] = "10.0.8.92:2377"
    assert node_address(node) == "10.0.8.92"
    node["ManagerStatus"]["Addr"] = "[fd00::5]:2377"
    assert node_address(node) == "fd00::5"
    worker = copy.deepcopy(NODES[2])
    worker["Status"]["Addr"] = "0.0.0.0"
    assert node_address(worker) == "0.0.0.0"  # nothing better to offer: left as the engine says
    assert node_address(NODES[1]) == "172.18.0.3"


# --------------------------------------------------------------------------- host names and groups


def test_a_stale_entry_gives_its_host_name_to_the_live_node():
    chosen, warnings = assign_hostnames(parse_node_inspect(NODES_JSON))
    assert [(name, r["id"]) for name, r in chosen] == [
        ("manager-1", "v7v8zs026igpmg3snl4krv6iu"),
        ("manager-2", "zfy4wflee6an8h0g7g0kbgvr3"),
        ("worker-1", LIVE_WORKER),
    ]
    assert len(warnings) == 1
    assert STALE_WORKER in warnings[0] and "docker node rm %s" % STALE_WORKER in warnings[0]


def test_the_stale_entry_loses_even_when_listed_first_and_updated_last():
    records = parse_node_inspect(NODES_JSON)
    stale = next(r for r in records if r["id"] == STALE_WORKER)
    stale["updated_at"] = "2099-01-01T00:00:00Z"
    chosen, _ = assign_hostnames([stale] + [r for r in records if r is not stale])
    assert dict(chosen)["worker-1"]["id"] == LIVE_WORKER


def test_two_live_nodes_with_one_host_name_are_both_kept():
    records = parse_node_inspect(NODES_JSON)
    twin = dict(next(r for r in records if r["id"] == LIVE_WORKER), id="twin0000000000000000000000", updated_at="0")
    chosen, warnings = assign_hostnames(records + [twin])
    names = [name for name, _ in chosen]
    assert "worker-1" in names and "twin0000000000000000000000" in names
    assert any("two live swarm nodes are called worker-1" in w for w in warnings)


def test_node_groups_follow_role_availability_status_leader_and_labels():
    records = {r["hostname"]: r for r in parse_node_inspect(NODES_JSON) if r["id"] != STALE_WORKER}
    assert node_groups(records["manager-1"]) == ["managers", "availability_active", "status_ready", "leader"]
    assert node_groups(records["worker-1"], prefix="sw_") == [
        "sw_workers",
        "sw_availability_drain",
        "sw_status_ready",
        "sw_label_com.example.rack_r 1",  # sanitized by the plugin when the group is made
        "sw_label_zone_eu-west.1",
    ]


def test_inventory_groups_and_host_variables(tmp_path, ssh, warnings):
    inventory = run_plugin(write_config(tmp_path))
    assert group_hosts(inventory) == {
        "managers": ["manager-1", "manager-2"],
        "workers": ["worker-1"],
        "leader": ["manager-1"],
        "availability_active": ["manager-1"],
        "availability_pause": ["manager-2"],
        "availability_drain": ["worker-1"],
        "status_ready": ["manager-1", "manager-2", "worker-1"],
        "label_disk_ssd": ["manager-2"],
        "label_zone_eu_west_1": ["worker-1"],
        "label_com_example_rack_r_1": ["worker-1"],
    }
    assert sorted(g.name for g in inventory.groups["swarm"].child_groups) == ["managers", "workers"]
    assert variables(inventory, "worker-1") == dict(
        ansible_host="172.18.0.4",
        swarm_node_id=LIVE_WORKER,
        swarm_node_hostname="worker-1",
        swarm_node_address="172.18.0.4",
        swarm_node_engine_version="20.10.24+dfsg1",
        swarm_node_role="worker",
        swarm_node_status="ready",
        swarm_node_reachability="",
        swarm_node_is_leader=False,
        swarm_node_live_availability="drain",
        swarm_node_live_labels={"com.example.rack": "r 1", "zone": "eu-west.1"},
    )
    assert variables(inventory, "manager-1")["swarm_node_is_leader"] is True
    assert len(warnings) == 1 and STALE_WORKER in warnings[0]


def test_no_variable_of_the_swarm_role_is_set(tmp_path, ssh, warnings):
    """The live state must not override what the role is asked to enforce (swarm_node_availability, ...)."""
    inventory = run_plugin(write_config(tmp_path))
    role_variables = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "roles/swarm/meta/argument_specs.yml").read_text()
    )
    names = {name for entry in role_variables["argument_specs"].values() for name in entry.get("options", {})}
    set_here = set(variables(inventory, "manager-2"))
    assert names and not (set_here & names)


def test_group_prefix_and_constructed_options(tmp_path, ssh, warnings):
    path = write_config(
        tmp_path,
        group_prefix="prod-",
        compose=dict(ansible_host="swarm_node_hostname ~ '.mgmt.example.com'"),
        groups=dict(paused="swarm_node_live_availability == 'pause'"),
        keyed_groups=[dict(key="swarm_node_live_labels.zone | default('none')", prefix="zone")],
    )
    inventory = run_plugin(path)
    groups = group_hosts(inventory)
    assert groups["prod_leader"] == ["manager-1"]
    assert groups["prod_managers"] == ["manager-1", "manager-2"]
    assert groups["prod_label_zone_eu_west_1"] == ["worker-1"]
    assert groups["paused"] == ["manager-2"]
    assert groups["zone_eu_west_1"] == ["worker-1"]
    assert groups["zone_none"] == ["manager-1", "manager-2"]
    assert "managers" not in inventory.groups
    assert variables(inventory, "worker-1")["ansible_host"] == "worker-1.mgmt.example.com"


def test_connection_settings_become_variables_of_the_swarm_group(tmp_path, ssh, warnings):
    path = write_config(
        tmp_path,
        ssh_user="admin",
        ssh_port=2222,
        ssh_private_key_file="/keys/swarm",
        ssh_args=["-o", "StrictHostKeyChecking=accept-new", "-o", "ProxyJump=bastion user"],
        become=True,
    )
    inventory = run_plugin(path)
    swarm_vars = inventory.groups["swarm"].get_vars()
    assert swarm_vars == dict(
        ansible_user="admin",
        ansible_port=2222,
        ansible_ssh_private_key_file="/keys/swarm",
        ansible_ssh_common_args="-o StrictHostKeyChecking=accept-new -o 'ProxyJump=bastion user'",
        ansible_become=True,
    )
    assert "ansible_user" not in variables(inventory, "manager-1")  # group level: group_vars override it
    no_vars = run_plugin(write_config(tmp_path, name="b.swarm.yml", ssh_user="admin", connection_vars=False))
    assert no_vars.groups["swarm"].get_vars() == {}


# --------------------------------------------------------------------------- the SSH round trip


def test_one_ssh_command_reads_the_nodes(tmp_path, ssh, warnings):
    run_plugin(
        write_config(
            tmp_path,
            manager="[fd00::11]:2222",
            ssh_user="admin",
            ssh_private_key_file="/keys/swarm",
            ssh_args=["-o", "StrictHostKeyChecking=no"],
            timeout=7,
            become=True,
        )
    )
    [(argv, kwargs)] = ssh.calls
    assert argv[:-1] == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=7",
        "-p",
        "2222",
        "-l",
        "admin",
        "-i",
        "/keys/swarm",
        "-o",
        "StrictHostKeyChecking=no",
        "--",
        "fd00::11",
    ]
    assert argv[-1] == remote_command("docker", become=True)
    assert kwargs["timeout"] == 7 and kwargs["stdin"] is subprocess.DEVNULL


def test_the_remote_command_quotes_what_it_is_given():
    command = remote_command("/opt/docker bin/docker; rm -rf /", become=False)
    words = shlex.split(command)
    assert words[:2] == ["sh", "-c"] and len(words) == 3
    assert words[2] == (
        "ids=$('/opt/docker bin/docker; rm -rf /' node ls -q) || exit $?; "
        "exec '/opt/docker bin/docker; rm -rf /' node inspect $ids"
    )
    assert shlex.split(remote_command(become=True))[:4] == ["sudo", "-n", "sh", "-c"]


def test_the_destination_can_never_be_read_as_an_ssh_option():
    argv = ssh_argv("host", command="true")
    assert argv[-3:] == ["--", "host", "true"]
    for bad in ("-oProxyCommand=evil", "admin@host", "", "host:port:x"):
        with pytest.raises(SourceError):
            parse_manager(bad)
    assert parse_manager("manager-1") == ("manager-1", None)
    assert parse_manager("10.0.0.1:2222") == ("10.0.0.1", 2222)


@pytest.mark.parametrize(
    "rc, stderr, expected",
    [
        (
            1,
            "Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or "
            "modify cluster state. Please run this command on a manager node or promote the current node to a manager.",
            "manager m is not a swarm manager (Error response from daemon: This node is not a swarm manager. Worker",
        ),
        (
            1,
            'Error response from daemon: This node is not a swarm manager. Use "docker swarm init" or "docker swarm '
            'join" to connect this node to swarm and try again.',
            "point the option `manager` at a manager node",
        ),
        (255, "Host key verification failed.\n", "StrictHostKeyChecking=accept-new"),
        (255, "admin@m: Permission denied (publickey).", "check `ssh_user` and `ssh_private_key_file`"),
        (255, "ssh: connect to host m port 22: Connection refused", "manager m: SSH failed (ssh: connect to host"),
        (
            1,
            "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock",
            "set `become: true`",
        ),
        (127, "sh: 1: docker: not found", "set `docker_command`"),
        (
            1,
            "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader.",
            "failed with exit code 1 (Error response from daemon: rpc error: code = Unknown desc = The swarm does not",
        ),
    ],
)
def test_failures_are_explained_with_the_option_to_fix(rc, stderr, expected):
    assert expected in explain_remote_failure("m", rc, stderr)


def test_a_worker_named_as_manager_fails_naming_the_option(tmp_path, monkeypatch, warnings):
    stderr = "Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view"
    monkeypatch.setattr(plugin_module.subprocess, "run", FakeSsh(stdout="", returncode=1, stderr=stderr))
    with pytest.raises(AnsibleParserError, match="manager 192.0.2.11 is not a swarm manager.*option `manager`"):
        run_plugin(write_config(tmp_path))


def test_every_manager_is_tried_and_every_failure_named(tmp_path, monkeypatch, warnings):
    answers = iter(
        [
            subprocess.TimeoutExpired(["ssh"], 3),
            subprocess.CompletedProcess(["ssh"], 255, "", "ssh: connect to host b port 22: No route to host"),
        ]
    )

    def run(argv, **kwargs):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(plugin_module.subprocess, "run", run)
    with pytest.raises(AnsibleParserError) as error:
        run_plugin(write_config(tmp_path, manager=["a", "b"], timeout=3))
    assert "no manager gave the node list: manager a: no answer within 3 s (option `timeout`)" in str(error.value)
    assert "manager b: SSH failed (ssh: connect to host b port 22: No route to host)" in str(error.value)


def test_the_next_manager_answers_when_the_first_does_not(tmp_path, monkeypatch, warnings):
    calls = []

    def run(argv, **kwargs):
        calls.append(argv[argv.index("--") + 1])
        if len(calls) == 1:
            return subprocess.CompletedProcess(argv, 255, "", "ssh: connect to host a port 22: Connection refused")
        return subprocess.CompletedProcess(argv, 0, NODES_JSON, "")

    monkeypatch.setattr(plugin_module.subprocess, "run", run)
    inventory = run_plugin(write_config(tmp_path, manager=["a", "b"]))
    assert calls == ["a", "b"] and "manager-1" in inventory.hosts


def test_a_file_not_named_swarm_yml_is_not_this_plugins(tmp_path):
    plugin = new_plugin()
    assert plugin.verify_file(write_config(tmp_path, name="prod.swarm.yml"))
    assert plugin.verify_file(write_config(tmp_path, name="swarm.yaml"))
    assert not plugin.verify_file(write_config(tmp_path, name="hosts.yml"))
    assert not plugin.verify_file(str(tmp_path / "missing.swarm.yml"))


def test_local_without_a_manager_engine_names_docker_host(tmp_path, warnings):
    socket = tmp_path / "no.sock"
    with pytest.raises(
        AnsibleParserError, match=r"manager local: the engine at unix://.*no.sock \(option `docker_host`\)"
    ):
        run_plugin(write_config(tmp_path, manager="local", docker_host="unix://%s" % socket, timeout=2))


# --------------------------------------------------------------------------- the cache


def cached_config(tmp_path, **options):
    return write_config(
        tmp_path,
        cache=True,
        cache_plugin="jsonfile",
        cache_connection=str(tmp_path / "cache"),
        **options,
    )


def test_a_cached_inventory_is_built_without_contacting_the_manager(tmp_path, monkeypatch, warnings):
    path = cached_config(tmp_path)
    first = FakeSsh()
    monkeypatch.setattr(plugin_module.subprocess, "run", first)
    built = run_plugin(path)
    assert len(first.calls) == 1 and len(list((tmp_path / "cache").iterdir())) == 1

    unreachable = FakeSsh(raises=AssertionError("the manager was contacted"))
    monkeypatch.setattr(plugin_module.subprocess, "run", unreachable)
    again = run_plugin(path)
    assert unreachable.calls == []
    assert group_hosts(again) == group_hosts(built)
    assert variables(again, "worker-1") == variables(built, "worker-1")


def test_flush_cache_reads_the_swarm_again_and_refreshes_the_cache(tmp_path, monkeypatch, warnings):
    path = cached_config(tmp_path)
    monkeypatch.setattr(plugin_module.subprocess, "run", FakeSsh())
    run_plugin(path)
    drained = copy.deepcopy(NODES)
    drained[0]["Spec"]["Availability"] = "drain"
    refreshed = FakeSsh(stdout=json.dumps(drained))
    monkeypatch.setattr(plugin_module.subprocess, "run", refreshed)
    inventory = run_plugin(path, cache=False)  # --flush-cache, meta: refresh_inventory
    assert len(refreshed.calls) == 1
    assert "manager-1" in group_hosts(inventory)["availability_drain"]
    monkeypatch.setattr(plugin_module.subprocess, "run", FakeSsh(raises=AssertionError("contacted")))
    assert "manager-1" in group_hosts(run_plugin(path))["availability_drain"]


def test_pointing_the_file_at_another_manager_does_not_reuse_the_cache(tmp_path, monkeypatch, warnings):
    monkeypatch.setattr(plugin_module.subprocess, "run", FakeSsh())
    run_plugin(cached_config(tmp_path))
    other = FakeSsh()
    monkeypatch.setattr(plugin_module.subprocess, "run", other)
    run_plugin(cached_config(tmp_path, manager="192.0.2.99"))
    assert len(other.calls) == 1


def test_with_cache_off_the_manager_is_read_every_time_and_nothing_stored(tmp_path, ssh, warnings):
    path = write_config(tmp_path, cache_plugin="jsonfile", cache_connection=str(tmp_path / "cache"))
    run_plugin(path)
    run_plugin(path)
    assert len(ssh.calls) == 2 and not (tmp_path / "cache").exists()


def test_a_failed_read_keeps_the_cache_it_could_not_refresh(tmp_path, monkeypatch, warnings):
    path = cached_config(tmp_path)
    monkeypatch.setattr(plugin_module.subprocess, "run", FakeSsh())
    run_plugin(path)
    monkeypatch.setattr(plugin_module.subprocess, "run", FakeSsh(stdout="", returncode=255, stderr="No route to host"))
    with pytest.raises(AnsibleParserError, match="No route to host"):
        run_plugin(path, cache=False)
    monkeypatch.setattr(plugin_module.subprocess, "run", FakeSsh(raises=AssertionError("contacted")))
    assert "manager-1" in run_plugin(path).hosts

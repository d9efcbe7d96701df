"""The inventory plugin swarmplane.cluster.swarm against a live swarm: a lab of its own (`invp`, 2 managers and
1 worker, formed by cluster.yml), where manager-2 is drained, worker-1 labelled, and worker-1 left and joined
again (so the swarm lists a stale Down worker-1 beside the live one). `ansible-inventory --list` on a config
that reads manager-2 (not the leader) over SSH must give the groups `docker node ls` shows; the `leader` group
must reach the leader; remove-node.yml, scale.yml and cluster.yml must run through it; a cached inventory must be
built while the manager is unreachable."""

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ansible.inventory.group import to_safe_group_name
from conftest import REPO, ansible_env, changed, run_adhoc, run_playbook

LAB = "invp"
LAB_PY = str(REPO / "lab" / "lab.py")
ANSIBLE_INVENTORY = str(Path(sys.executable).parent / "ansible-inventory")
PLUGIN = "swarmplane.cluster.swarm"


def on(host, command, check=True):
    """A shell command in a lab host container; its stdout."""
    done = subprocess.run(
        ["docker", "exec", "swarmplane-%s-%s" % (LAB, host), "sh", "-c", command], text=True, capture_output=True
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done.stdout


def wait_until(condition, what, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for %s" % what
        time.sleep(1)


def live_nodes(manager="manager-1"):
    """`docker node ls` on a manager, with each node's labels: [{id, hostname, status, availability,
    manager_status, engine_version, labels}]."""
    listing = on(
        manager,
        "docker node ls --format '{{.ID}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}"
        "\t{{.EngineVersion}}'",
    )
    labels = on(manager, "docker node inspect --format '{{.ID}}\t{{json .Spec.Labels}}' $(docker node ls -q)")
    labels = {line.split("\t")[0]: json.loads(line.split("\t")[1]) or {} for line in labels.splitlines() if line}
    nodes = []
    for line in listing.splitlines():
        if not line:
            continue
        node_id, hostname, status, availability, manager_status, version = line.split("\t")
        nodes.append(
            dict(
                id=node_id,
                hostname=hostname,
                status=status,
                availability=availability,
                manager_status=manager_status,
                engine_version=version,
                labels=labels[node_id],
            )
        )
    return nodes


def expected_groups(nodes):
    """The groups the plugin must make, from `docker node ls`: a host name listed twice belongs to its Ready node."""
    by_name = {}
    for node in nodes:
        if node["hostname"] not in by_name or node["status"] == "Ready":
            by_name[node["hostname"]] = node
    groups = {}
    for name, node in by_name.items():
        names = [
            "managers" if node["manager_status"] else "workers",
            "availability_" + node["availability"].lower(),
            "status_" + node["status"].lower(),
        ]
        names += ["leader"] if node["manager_status"] == "Leader" else []
        names += [to_safe_group_name("label_%s_%s" % kv, force=True, silent=True) for kv in node["labels"].items()]
        for group in names:
            groups.setdefault(group, []).append(name)
    return {group: sorted(hosts) for group, hosts in groups.items()}, by_name


def unwrap(value):
    """ansible-inventory --list marks values from an inventory plugin as unsafe: {"__ansible_unsafe": value}."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: unwrap(v) for k, v in value.items()}
    return value


def inventory_list(config, *args, env=None):
    """`ansible-inventory -i config --list` from the repo: (CompletedProcess, parsed output or None)."""
    done = subprocess.run(
        [ANSIBLE_INVENTORY, "-i", str(config), "--list", *args],
        cwd=REPO,
        env=ansible_env(ANSIBLE_INVENTORY_UNPARSED_FAILED="1", **(env or {})),
        text=True,
        capture_output=True,
        timeout=120,
    )
    return done, (json.loads(done.stdout) if done.returncode == 0 else None)


def plugin_groups(listing):
    return {
        name: sorted(body["hosts"])
        for name, body in listing.items()
        if name not in ("_meta", "all", "ungrouped") and body.get("hosts")
    }


def assert_inventory_matches_the_swarm(config):
    done, listing = inventory_list(config)
    assert done.returncode == 0, done.stderr
    nodes = live_nodes()
    groups, by_name = expected_groups(nodes)
    assert plugin_groups(listing) == groups
    assert sorted(listing["swarm"]["children"]) == ["managers", "workers"]
    hostvars = unwrap(listing["_meta"]["hostvars"])
    for name, node in by_name.items():
        assert hostvars[name]["swarm_node_id"] == node["id"]
        assert hostvars[name]["swarm_node_engine_version"] == node["engine_version"]
        assert hostvars[name]["swarm_node_live_labels"] == node["labels"]
    return done, listing, nodes


@pytest.fixture(scope="module")
def invp(tmp_path_factory):
    """The lab, formed, with manager-2 drained, worker-1 labelled and a stale Down entry of worker-1; yields
    (directory, lab inventory as data, plugin config writer)."""
    directory = tmp_path_factory.mktemp("invp")
    hosts = directory / "hosts.yml"
    subprocess.run(
        [LAB_PY, "up", "--name", LAB, "--managers", "2", "--workers", "1", "--inventory", str(hosts)], check=True
    )
    try:
        formed = run_playbook(hosts)
        assert formed.returncode == 0, formed.stdout[-3000:]
        lab = yaml.safe_load(hosts.read_text())
        addresses = {
            name: hv["ansible_host"]
            for group in lab["all"]["children"]["swarm"]["children"].values()
            for name, hv in group["hosts"].items()
        }

        # worker-1 leaves and joins again: the swarm keeps its old node, Down, under the same host name.
        token = on("manager-1", "docker swarm join-token -q worker").strip()
        old_id = on("worker-1", "docker info --format '{{.Swarm.NodeID}}'").strip()
        on("worker-1", "docker swarm leave")
        wait_until(
            lambda: "Down" in on("manager-1", "docker node ls --filter id=%s --format '{{.Status}}'" % old_id),
            "the old worker-1 node to be Down",
        )
        on("worker-1", "docker swarm join --token %s %s:2377" % (shlex.quote(token), addresses["manager-1"]))
        new_id = on("worker-1", "docker info --format '{{.Swarm.NodeID}}'").strip()
        on("manager-1", "docker node update --availability drain manager-2")
        on(
            "manager-1",
            "docker node update --label-add zone=eu-west.1 --label-add 'com.example.rack=r 1' %s" % new_id,
        )

        def config(name="swarm.yml", manager=None, **options):
            """A plugin config reading manager-2 over SSH with the lab's SSH settings."""
            settings = dict(
                plugin=PLUGIN,
                manager=manager or addresses["manager-2"],
                ssh_user=lab["all"]["vars"]["ansible_user"],
                ssh_private_key_file=lab["all"]["vars"]["ansible_ssh_private_key_file"],
                ssh_args=shlex.split(lab["all"]["vars"]["ansible_ssh_common_args"]),
                timeout=10,
            )
            settings.update(options)
            path = directory / name
            path.write_text(yaml.safe_dump(settings))
            return path

        yield dict(directory=directory, addresses=addresses, config=config, stale_id=old_id, live_worker_id=new_id)
    finally:
        for host in ("manager-1", "manager-2", "worker-1"):
            subprocess.run(["docker", "unpause", "swarmplane-%s-%s" % (LAB, host)], capture_output=True)
        subprocess.run([LAB_PY, "down", "--name", LAB], check=False)


def test_groups_match_docker_node_ls(invp):
    done, listing, nodes = assert_inventory_matches_the_swarm(invp["config"]())
    assert [n["hostname"] for n in nodes].count("worker-1") == 2  # the stale entry is there ...
    hostvars = unwrap(listing["_meta"]["hostvars"])
    assert hostvars["worker-1"]["swarm_node_id"] == invp["live_worker_id"]  # ... and the live one won
    assert "swarm node %s (worker-1, down) is a stale entry" % invp["stale_id"] in " ".join(done.stderr.split())
    assert plugin_groups(listing)["availability_drain"] == ["manager-2"]
    assert plugin_groups(listing)["label_zone_eu_west_1"] == ["worker-1"]
    assert plugin_groups(listing)["label_com_example_rack_r_1"] == ["worker-1"]
    assert plugin_groups(listing)["leader"] == ["manager-1"]
    for name, address in invp["addresses"].items():
        assert hostvars[name]["ansible_host"] == address
        assert hostvars[name]["ansible_user"] == "root"  # connection_vars


def test_a_worker_named_as_manager_fails_with_the_option_to_fix(invp):
    done, _ = inventory_list(invp["config"]("worker.swarm.yml", manager=invp["addresses"]["worker-1"]))
    assert done.returncode != 0
    message = " ".join(done.stderr.split())
    assert "manager %s is not a swarm manager" % invp["addresses"]["worker-1"] in message
    assert "point the option `manager` at a manager node" in message


def test_the_next_manager_is_read_when_the_first_cannot_be_reached(invp):
    # Nothing listens on loopback port 9: SSH fails at once, and manager-1 is read instead.
    config = invp["config"]("two.swarm.yml", manager=["127.0.0.1:9", invp["addresses"]["manager-1"]], timeout=3)
    done, _, _ = assert_inventory_matches_the_swarm(config)
    assert "manager 127.0.0.1:9: SSH failed" not in done.stderr  # a manager that answered: no error shown


def test_a_local_socket(invp):
    """manager: local, with docker_host at manager-1's engine socket (reached through its container's root)."""
    merged = subprocess.run(
        ["docker", "inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", "swarmplane-%s-manager-1" % LAB],
        text=True,
        capture_output=True,
    ).stdout.strip()
    if not merged or not Path(merged, "run", "docker.sock").exists():
        pytest.skip("the host containers' root is not reachable here (not overlay2)")
    link = invp["directory"] / "m1run"  # a short path: a unix socket path has at most 107 bytes
    link.unlink(missing_ok=True)
    link.symlink_to(Path(merged, "run"))
    assert_inventory_matches_the_swarm(
        invp["config"]("local.swarm.yml", manager="local", docker_host="unix://%s/docker.sock" % link)
    )


def test_the_leader_group_reaches_the_leader(invp):
    done = run_adhoc(invp["config"](), "leader", "ansible.builtin.command", "docker node ls")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "manager-1 | CHANGED" in done.stdout
    mine = [line for line in done.stdout.splitlines() if " * " in line]
    assert len(mine) == 1 and "Leader" in mine[0], done.stdout


def test_remove_node_and_scale_run_through_the_plugin(invp):
    config = invp["config"]()
    removed = run_playbook(config, "-e", "node=worker-1", "-e", "skip_confirmation=true", playbook="remove-node.yml")
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert "Ready" not in on("manager-1", "docker node ls --filter name=worker-1 --format '{{.Status}}'")
    assert_inventory_matches_the_swarm(config)

    # The host comes back: the plugin's inventory plus a static one naming the new host, scale.yml limited to it.
    new_hosts = invp["directory"] / "new-hosts.yml"
    new_hosts.write_text(
        yaml.safe_dump(
            {
                "all": {
                    "children": {
                        "swarm": {
                            "children": {
                                "workers": {"hosts": {"worker-1": {"ansible_host": invp["addresses"]["worker-1"]}}}
                            }
                        }
                    }
                }
            }
        )
    )
    scaled = run_playbook(config, "-i", str(new_hosts), "--limit", "worker-1", playbook="scale.yml")
    assert scaled.returncode == 0, scaled.stdout[-3000:]
    assert "worker-1 joined the swarm" in scaled.stdout
    _, listing, _ = assert_inventory_matches_the_swarm(config)
    assert plugin_groups(listing)["workers"] == ["worker-1"]
    assert "worker-1" in plugin_groups(listing)["status_ready"]


def test_cluster_yml_on_the_plugin_inventory_changes_nothing(invp):
    """Same group names as the static inventories: the main playbook runs on it, and the live availability (a
    drained manager) is no host variable the swarm role would enforce."""
    result = run_playbook(invp["config"]())
    assert result.returncode == 0, result.stdout[-3000:]
    assert changed(result) == {"manager-1": 0, "manager-2": 0, "worker-1": 0}
    assert on("manager-1", "docker node inspect --format '{{.Spec.Availability}}' manager-2").strip() == "drain"


def test_a_cached_inventory_is_built_while_the_manager_is_unreachable(invp):
    cache = invp["directory"] / "cache"
    config = invp["config"](
        "cached.swarm.yml", timeout=5, cache=True, cache_plugin="ansible.builtin.jsonfile", cache_connection=str(cache)
    )
    done, first = inventory_list(config)
    assert done.returncode == 0, done.stderr
    assert len(list(cache.iterdir())) == 1

    subprocess.run(["docker", "pause", "swarmplane-%s-manager-2" % LAB], check=True)
    try:
        done, cached = inventory_list(config)
        assert done.returncode == 0, done.stderr  # no SSH: with the manager paused, a read fails (below)
        assert cached == first

        done, _ = inventory_list(config, "--flush-cache")
        assert done.returncode != 0
        assert "manager %s: no answer within 5 s (option `timeout`)" % invp["addresses"]["manager-2"] in " ".join(
            done.stderr.split()
        )
    finally:
        subprocess.run(["docker", "unpause", "swarmplane-%s-manager-2" % LAB], check=True)
    # The failed refresh left the cache as it was.
    subprocess.run(["docker", "pause", "swarmplane-%s-manager-2" % LAB], check=True)
    try:
        done, again = inventory_list(config)
        assert done.returncode == 0 and again == first
    finally:
        subprocess.run(["docker", "unpause", "swarmplane-%s-manager-2" % LAB], check=True)

"""Node lifecycle plays on a lab of their own (1 manager, 2 workers): scale.yml limited to a new host, join-token
rotation, remove-node.yml and its refusals, re-adding a removed host, strict mode, reset.yml. The tests build on
each other in file order."""

import subprocess

import pytest
import yaml
from conftest import REPO, changed, run_playbook, write_inventory

LAB = "life"
LAB_TOOL = str(REPO / "lab" / "lab.py")


def on(host, command):
    return subprocess.run(
        ["docker", "exec", "swarmplane-%s-%s" % (LAB, host), "sh", "-c", command], text=True, capture_output=True
    )


def node_rows():
    out = on("manager-1", "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}'").stdout
    return sorted(line for line in out.splitlines() if line)


def text(result):
    return " ".join(result.stdout.split())


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("life") / "hosts.yml"
    subprocess.run(
        [LAB_TOOL, "up", "--name", LAB, "--managers", "1", "--workers", "1", "--no-registry", "--inventory", str(path)],
        check=True,
    )
    try:
        formed = run_playbook(path)
        assert formed.returncode == 0, formed.stdout[-3000:]
        # A host added to the inventory after the swarm formed.
        subprocess.run(
            [
                LAB_TOOL,
                "up",
                "--name",
                LAB,
                "--managers",
                "1",
                "--workers",
                "2",
                "--no-registry",
                "--inventory",
                str(path),
            ],
            check=True,
        )
        yield path
    finally:
        subprocess.run([LAB_TOOL, "down", "--name", LAB], check=False)


def test_scale_joins_the_limited_host_and_runs_nothing_on_the_others(inventory):
    result = run_playbook(inventory, "--limit", "worker-2", playbook="scale.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "worker-2 joined the swarm." in result.stdout
    assert set(result.stats["hosts"]) == {"worker-2"}, result.stats["hosts"]
    assert node_rows() == ["manager-1 Ready Active", "worker-1 Ready Active", "worker-2 Ready Active"]
    again = run_playbook(inventory, "--limit", "worker-2", playbook="scale.yml")
    assert again.returncode == 0 and changed(again) == {"worker-2": 0}
    assert "worker-2 was already a node of the swarm (worker): nothing to join." in text(again)


def test_scale_without_a_live_manager_anywhere_is_refused_and_changes_nothing(inventory, tmp_path):
    lab = yaml.safe_load(inventory.read_text())
    # The manager's SSH port closed: the lookup cannot reach it (traffic stays on the lab's own address).
    broken = write_inventory(
        tmp_path / "hosts.yml",
        ["manager-1"],
        ["worker-1", "worker-2"],
        lab,
        host_vars={"manager-1": {"ansible_port": 1}},
    )
    result = run_playbook(broken, "--limit", "worker-2", playbook="scale.yml")
    assert result.returncode != 0
    assert "this run's hosts (worker-2) hold no manager, and no manager outside them answered" in text(result)
    assert "manager-1: unreachable" in text(result) and "Nothing was changed." in text(result)
    assert changed(result).get("worker-2", 0) == 0


def test_rotation_replaces_the_worker_token_once_and_the_old_one_stops_working(inventory):
    old = on("manager-1", "docker swarm join-token -q worker").stdout.strip()
    rotated = run_playbook(inventory, "-e", "swarm_rotate_tokens=worker")
    assert rotated.returncode == 0 and changed(rotated)["manager-1"] == 1, rotated.stdout[-2000:]
    new = on("manager-1", "docker swarm join-token -q worker").stdout.strip()
    assert new and new != old
    assert old not in rotated.stdout and new not in rotated.stdout
    plain = run_playbook(inventory)
    assert plain.returncode == 0 and set(changed(plain).values()) == {0}
    assert on("manager-1", "docker swarm join-token -q worker").stdout.strip() == new
    # Kept for the re-join test below.
    pytest.old_worker_token = old


def test_an_unknown_token_kind_is_refused_before_any_host_is_touched(inventory):
    result = run_playbook(inventory, "-e", "swarm_rotate_tokens=workers")
    assert result.returncode != 0
    assert "swarm_rotate_tokens=workers is not a kind of join token. Nothing was changed." in text(result)
    assert "Read the engine, swarm state and host facts" not in result.stdout


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ("web-9", "node=web-9: web-9 is not a host of this inventory's groups 'managers' or 'workers'"),
        ("manager-1", "no live manager is left to drive the removal: the only live managers (manager-1) are the ones"),
    ],
)
def test_remove_node_refuses_bad_names_and_the_last_manager(inventory, node, message):
    result = run_playbook(inventory, "-e", "node=%s" % node, "-e", "skip_confirmation=true", playbook="remove-node.yml")
    assert result.returncode != 0 and message in text(result)
    assert len(node_rows()) == 3


def test_remove_node_drains_leaves_and_removes_a_worker_then_is_a_no_op(inventory):
    # No service here (this lab has no registry): the removal of a node running tasks, while a client polls, is in
    # the Molecule scenario `ha`.
    result = run_playbook(inventory, "-e", "node=worker-2", "-e", "skip_confirmation=true", playbook="remove-node.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert node_rows() == ["manager-1 Ready Active", "worker-1 Ready Active"]
    assert on("worker-2", "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip() == "inactive"
    again = run_playbook(inventory, "-e", "node=worker-2", "-e", "skip_confirmation=true", playbook="remove-node.yml")
    assert again.returncode == 0 and set(changed(again).values()) == {0}
    assert "worker-2: not a node of the swarm manager-1 manages; nothing to remove." in text(again)


def test_the_old_token_no_longer_joins_and_scale_brings_the_host_back_without_a_stale_entry(inventory):
    address = on("manager-1", "docker info --format '{{.Swarm.NodeAddr}}'").stdout.strip()
    refused = on("worker-2", "docker swarm join --token %s %s:2377" % (pytest.old_worker_token, address))
    assert refused.returncode != 0 and "token" in refused.stderr.lower()
    result = run_playbook(inventory, "--limit", "worker-2", playbook="scale.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    assert node_rows() == ["manager-1 Ready Active", "worker-1 Ready Active", "worker-2 Ready Active"]


def test_strict_mode_fails_a_run_that_skipped_an_unreachable_host_after_doing_the_rest(inventory, tmp_path):
    lab = yaml.safe_load(inventory.read_text())
    partial = write_inventory(
        tmp_path / "hosts.yml",
        ["manager-1"],
        ["worker-1", "worker-2"],
        lab,
        host_vars={"worker-2": {"ansible_port": 1}},
    )
    lenient = run_playbook(partial)
    assert lenient.returncode == 0 and "host worker-2" in text(lenient) and "is unreachable" in text(lenient)
    strict = run_playbook(partial, "-e", "swarm_fail_on_unreachable=true")
    assert strict.returncode != 0
    assert "swarm_fail_on_unreachable is true and this run skipped unreachable hosts: worker-2" in text(strict)
    assert "Show the cluster (docker node ls)" in strict.stdout


def test_a_paused_host_counts_as_unreachable_instead_of_holding_the_run(inventory):
    # SSH connects to a paused host and then nothing answers: without a bound the run would wait for ever.
    subprocess.run(["docker", "pause", "swarmplane-%s-worker-2" % LAB], check=True)
    try:
        strict = run_playbook(inventory, "-e", "swarm_probe_timeout=3", "-e", "swarm_fail_on_unreachable=true")
    finally:
        subprocess.run(["docker", "unpause", "swarmplane-%s-worker-2" % LAB], check=True)
    assert strict.returncode != 0
    assert "host worker-2" in text(strict) and "no answer within 33 s: the SSH session opened" in text(strict)
    assert "this run skipped unreachable hosts: worker-2" in text(strict)
    assert {h: n for h, n in changed(strict).items() if n} == {}


def test_reset_leaves_no_swarm_state_on_any_host_and_a_second_reset_changes_nothing(inventory):
    result = run_playbook(inventory, "-e", "skip_confirmation=true", playbook="reset.yml")
    assert result.returncode == 0, result.stdout[-3000:]
    for host in ("manager-1", "worker-1", "worker-2"):
        state = on(
            host, "docker info --format '{{.Swarm.LocalNodeState}}'; ls -A /var/lib/docker/swarm 2>/dev/null | wc -l"
        )
        assert state.stdout.split() == ["inactive", "0"], (host, state.stdout)
    again = run_playbook(inventory, "-e", "skip_confirmation=true", playbook="reset.yml")
    assert again.returncode == 0 and set(changed(again).values()) == {0}

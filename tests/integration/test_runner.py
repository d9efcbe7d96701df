"""cluster.yml run the way AWX runs it: ansible_runner with a private data dir."""

import json
from pathlib import Path

import ansible_runner
from conftest import REPO, lab_exec, node_list, run_playbook, write_inventory


def run_like_awx(private_dir, inventory, cmdline=None):
    """cmdline="--check": what AWX runs for a job template of job type "check"."""
    private_dir.mkdir(parents=True, exist_ok=True)
    return ansible_runner.run(
        private_data_dir=str(private_dir),
        project_dir=str(REPO),
        playbook="cluster.yml",
        inventory=str(inventory),
        envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
        cmdline=cmdline,
        quiet=True,
    )


def changed_tasks(runner):
    return [
        e["event_data"].get("task")
        for e in runner.events
        if e.get("event") == "runner_on_ok" and e["event_data"].get("res", {}).get("changed")
    ]


def assert_no_join_token_in(private_dir):
    tokens = [lab_exec("manager-1", "docker swarm join-token -q %s" % r).stdout.strip() for r in ("worker", "manager")]
    artifacts = "\n".join(p.read_text(errors="replace") for p in Path(private_dir).rglob("*") if p.is_file())
    assert len(artifacts) > 1000
    for token in tokens:
        assert token.split("-")[-1] not in artifacts


def swarm_states(*hosts):
    return [lab_exec(h, "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip() for h in hosts]


def test_cluster_yml_through_ansible_runner_is_successful_then_idempotent(lab, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    # Engines running (whatever ran before), then both hosts leave: the first run forms the swarm, and the init's
    # result is what carries the join tokens.
    assert run_playbook(inventory).returncode == 0
    for host in ("worker-1", "manager-1"):
        assert lab_exec(host, "docker swarm leave --force").returncode == 0
    # A check job first (engines running, no swarm yet): it says what it would do and makes no swarm.
    check = run_like_awx(tmp_path / "check", inventory, cmdline="--check --diff")
    assert check.status == "successful", check.stdout.read()[-3000:]
    assert {
        "Initialize the swarm, or update its settings, on manager-1",
        "Join the managers and workers that are not in the swarm",
    } <= set(changed_tasks(check))
    assert swarm_states("manager-1", "worker-1") == ["inactive", "inactive"]

    first = run_like_awx(tmp_path / "run1", inventory)
    assert first.status == "successful", first.stdout.read()[-3000:]
    assert first.rc == 0
    assert "Join the managers and workers that are not in the swarm" in changed_tasks(first)
    assert_no_join_token_in(tmp_path / "run1")

    second = run_like_awx(tmp_path / "run2", inventory)
    assert second.status == "successful"
    assert changed_tasks(second) == []
    assert sum(second.stats["changed"].values()) == 0

    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]


def test_job_events_carry_no_join_token(lab, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    # worker-1 leaves, so this run has to fetch a token and join it again.
    assert lab_exec("worker-1", "docker swarm leave").returncode == 0
    runner = run_like_awx(tmp_path / "run", inventory)
    assert runner.status == "successful"
    assert "Join the managers and workers that are not in the swarm" in changed_tasks(runner)
    assert_no_join_token_in(tmp_path / "run")
    assert json.dumps(runner.stats)  # stats are plain data AWX can store
    # The entry worker-1 left behind is removed: one worker-1, and it is Ready.
    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]

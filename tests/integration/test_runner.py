"""cluster.yml run the way AWX runs it: ansible_runner with a private data dir."""

import json
from pathlib import Path

import ansible_runner
from conftest import REPO, lab_exec, node_list, write_inventory


def run_like_awx(private_dir, inventory):
    private_dir.mkdir(parents=True, exist_ok=True)
    return ansible_runner.run(
        private_data_dir=str(private_dir),
        project_dir=str(REPO),
        playbook="cluster.yml",
        inventory=str(inventory),
        envvars={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg")},
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


def test_cluster_yml_through_ansible_runner_is_successful_then_idempotent(lab, tmp_path):
    inventory = write_inventory(tmp_path / "hosts.yml", ["manager-1"], ["worker-1"], lab)
    # Both hosts leave first: the first run forms the swarm, and the init's result is what carries the join tokens.
    for host in ("worker-1", "manager-1"):
        lab_exec(host, "docker swarm leave --force")
    first = run_like_awx(tmp_path / "run1", inventory)
    assert first.status == "successful", first.stdout.read()[-3000:]
    assert first.rc == 0
    assert "Join workers" in changed_tasks(first)
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
    assert "Join workers" in changed_tasks(runner)
    assert_no_join_token_in(tmp_path / "run")
    assert json.dumps(runner.stats)  # stats are plain data AWX can store
    # The entry worker-1 left behind is removed: one worker-1, and it is Ready.
    assert node_list() == ["manager-1 Ready", "worker-1 Ready"]

"""cluster.yml run as AWX job slices: each slice is a --limit of the inventory's hosts, and a slice without a manager
finds a live one outside itself and works through it; when none answers, the slice is refused, naming each manager
and why, before anything changes."""

from conftest import changed, lab_exec, run_playbook, write_inventory

NETWORK = "slice-net"
DECLARED = {"swarm_networks": [{"name": NETWORK, "driver": "overlay", "attachable": True}]}


def node_label(host, label):
    out = lab_exec("manager-1", "docker node inspect %s --format '{{index .Spec.Labels \"%s\"}}'" % (host, label))
    return out.stdout.strip()


def test_each_slice_converges_and_a_slice_without_a_manager_works_through_one_outside_it(lab, tmp_path):
    plain = write_inventory(tmp_path / "plain.yml", ["manager-1"], ["worker-1"], lab, all_vars=DECLARED)
    formed = run_playbook(plain)
    assert formed.returncode == 0, formed.stdout[-3000:]
    assert NETWORK in lab_exec("manager-1", "docker network ls --format '{{.Name}}'").stdout

    # The slices of a formed swarm change nothing; the worker's slice still applies the declaration (through
    # manager-1, outside it) and prints the node table.
    for host in ("manager-1", "worker-1"):
        sliced = run_playbook(plain, "--limit", host)
        assert sliced.returncode == 0, sliced.stdout[-3000:]
        assert set(sliced.stats["hosts"]) == {host}, sliced.stats["hosts"]
        assert set(changed(sliced).values()) == {0}, changed(sliced)
        assert "worker-1" in sliced.stdout.split("TASK [Show the cluster (docker node ls)]", 1)[1]

    # A change for the worker, run from its slice alone: applied through the manager outside the slice.
    labelled = write_inventory(
        tmp_path / "labelled.yml",
        ["manager-1"],
        ["worker-1"],
        lab,
        host_vars={"worker-1": {"swarm_node_labels": {"slice": "b"}}},
        all_vars=DECLARED,
    )
    applied = run_playbook(labelled, "--limit", "worker-1")
    assert applied.returncode == 0, applied.stdout[-3000:]
    assert "worker-1: labels slice=b" in applied.stdout, applied.stdout[-4000:]  # why the swarm play ran
    assert node_label("worker-1", "slice") == "b"
    again = run_playbook(labelled, "--limit", "worker-1")
    assert again.returncode == 0 and set(changed(again).values()) == {0}, changed(again)

    # Back as the other tests expect it.
    lab_exec("manager-1", "docker node update --label-rm slice worker-1 && docker network rm %s" % NETWORK)


def test_a_slice_whose_managers_all_fail_to_answer_is_refused_before_anything_changes(lab, tmp_path):
    # The only manager named is a closed port on loopback: the slice of worker-1 has no live manager to work through.
    inventory = write_inventory(
        tmp_path / "hosts.yml",
        ["gone-1"],
        ["worker-1"],
        lab,
        host_vars={"gone-1": {"ansible_host": "127.0.0.1", "ansible_port": 1}},
    )
    refused = run_playbook(inventory, "--limit", "worker-1")
    assert refused.returncode != 0
    text = " ".join(refused.stdout.split())
    assert "this run's hosts (worker-1) hold no manager, and no manager outside them answered as a live swarm " in text
    assert "(gone-1: unreachable (" in text
    assert "Nothing was changed." in text
    assert set(changed(refused).values()) <= {0}, changed(refused)

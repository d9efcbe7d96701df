"""High availability on 3 managers and 2 workers, with the lifecycle plays, as an operator goes through it:

1. the inventory plugin's groups are `docker node ls`;
2. a manager down (engine stopped, host unreachable): cluster.yml names it and still applies a service change,
   and fails at the end in strict mode;
3. while it is down, removing or demoting another manager is refused with the quorum arithmetic;
4. cluster.yml with the manager reachable again starts its engine and brings it back;
5. a worker running a task is removed while a client polls the other replica's host-mode port;
6. scale.yml brings it back without a stale entry;
7. a manager is removed (demoted first) and comes back; one that left by hand without a demotion joins again and
   its old entry is demoted and removed;
8. reset.yml leaves no swarm state;
9. a cluster.yml run killed (SIGKILL) during the joins: a re-run converges, a third changes nothing.

The tests build on each other, in file order. Raft backup and restore onto a new manager are in
tests/integration/test_backup_restore.py (a 3-manager lab of its own).
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
INVENTORY_DIR = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
LAB = "molecule-%s" % os.environ.get("MOLECULE_SCENARIO_NAME", "ha")
MANAGERS = ("manager-1", "manager-2", "manager-3")
WORKERS = ("worker-1", "worker-2")
HOSTS = MANAGERS + WORKERS
LABELLED = ("manager-3", "worker-1", "worker-2")  # where the service `web` may run (molecule.yml)
PORT = 8080
STOP_ENGINE = "start-stop-daemon --stop --oknodo --retry 30 --exec /usr/sbin/dockerd"

# --------------------------------------------------------------------------- helpers


def on(host, command, check=True, timeout=120):
    """A shell command in a lab host container; the CompletedProcess."""
    done = subprocess.run(
        ["docker", "exec", "swarmplane-%s-%s" % (LAB, host), "sh", "-c", command],
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    if check:
        assert done.returncode == 0, "%s: %s: %s" % (host, command, done.stderr)
    return done


def lab_hosts():
    return yaml.safe_load((INVENTORY_DIR / "lab-hosts.yml").read_text())


def addresses():
    groups = lab_hosts()["all"]["children"]["swarm"]["children"]
    return {h: hv["ansible_host"] for g in groups.values() for h, hv in (g.get("hosts") or {}).items()}


def play(playbook, *args, inventory=None, kill_after=None):
    """ansible-playbook from the repo on the scenario's inventory; the CompletedProcess with `text` (whitespace
    collapsed) and `changed` (the recap's changed count per host). kill_after: (task name part, regular
    expression): the whole run is SIGKILLed as soon as a line of that task's output matches (`killed` says so)."""
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory or INVENTORY_DIR), playbook]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    process = subprocess.Popen(
        argv + list(args),
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes its SSH sessions too
    )
    lines, killed, task = [], False, ""
    deadline = time.monotonic() + 900
    for line in process.stdout:
        lines.append(line)
        task = line if line.startswith("TASK [") else task
        if kill_after and not killed and kill_after[0] in task and re.search(kill_after[1], line):
            os.killpg(process.pid, signal.SIGKILL)
            killed = True
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait()
    result = subprocess.CompletedProcess(argv, process.returncode, "".join(lines), "")
    result.text = " ".join(result.stdout.split())
    result.killed = killed
    recap = result.stdout.split("PLAY RECAP")[-1] if "PLAY RECAP" in result.stdout else ""
    result.changed = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+:.*?changed=(\d+)", recap, re.M)}
    return result


def succeeded(result):
    assert result.returncode == 0, result.stdout[-5000:]
    return result


def inventory_copy(tmp_path, port_of=None, demote=None):
    """A copy of the scenario's inventory: port_of={host: port} points a host's SSH at another port (a closed one:
    the host is unreachable; traffic stays on the lab's own address); demote moves a manager under 'workers'.
    Molecule's inventory and the one lab/lab.py wrote beside it both list the hosts, in groups of their own shape."""
    target = tmp_path / "inventory"
    subprocess.run(["cp", "-r", str(INVENTORY_DIR), str(target)], check=True)

    def edit(node):
        if not isinstance(node, dict):
            return
        for name, value in list(node.items()):
            if name == "hosts" and isinstance(value, dict):
                for host in set(value) & set(port_of or {}):
                    value[host] = dict(value[host] or {}, ansible_port=port_of[host])
            edit(value)
        managers, workers = node.get("managers"), node.get("workers")
        if demote and isinstance(managers, dict) and demote in (managers.get("hosts") or {}):
            moved = managers["hosts"].pop(demote)
            node["workers"] = dict(workers or {}, hosts=dict((workers or {}).get("hosts") or {}, **{demote: moved}))

    for source in target.glob("*.yml"):
        data = yaml.safe_load(source.read_text())
        edit(data)
        source.write_text(yaml.safe_dump(data))
    return target


def node_ls(manager="manager-1"):
    """`docker node ls` on a manager: [(hostname, status, availability, manager status)], sorted."""
    out = on(manager, "docker node ls --format '{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}'")
    return sorted(tuple(line.split("|")) for line in out.stdout.splitlines() if line)


def healthy_rows(managers=MANAGERS, workers=WORKERS):
    return {(h, "Ready", "Active") for h in managers + workers}


def rows_without_leadership(rows):
    return {row[:3] for row in rows}


def manager_statuses(rows):
    return sorted(row[3] for row in rows if row[3])


def wait_until(condition, what, seconds=90):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out after %d s waiting for %s" % (seconds, what)
        time.sleep(1)


def web_nodes(manager="manager-1"):
    out = on(manager, "docker service ps web --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'")
    return sorted(line.split()[0] for line in out.stdout.splitlines() if " Running " in " %s " % line)


def web_image(manager="manager-1"):
    return on(manager, "docker service inspect web --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'").stdout


def fetch(address, timeout=2):
    with urllib.request.urlopen("http://%s:%d/" % (address, PORT), timeout=timeout) as reply:
        return reply.read().decode().strip()


def swarm_state(host):
    return on(host, "docker info --format '{{.Swarm.LocalNodeState}}'").stdout.strip()


class Poller(threading.Thread):
    """A client that sends a request every 0.1 s to each address in turn and keeps every outcome."""

    def __init__(self, targets):
        super().__init__(daemon=True)
        self.targets = list(targets)
        self.stopped = threading.Event()
        self.answers, self.failures = [], []

    def run(self):
        turn = 0
        while not self.stopped.is_set():
            address = self.targets[turn % len(self.targets)]
            turn += 1
            try:
                self.answers.append(fetch(address))
            except Exception as exc:  # every failure counts, whatever it is
                self.failures.append("%s: %s" % (address, exc))
            self.stopped.wait(0.1)

    def stop(self):
        self.stopped.set()
        self.join()
        return "%d requests, %d failed%s" % (
            len(self.answers) + len(self.failures),
            len(self.failures),
            (": " + "; ".join(self.failures[:10])) if self.failures else "",
        )


# --------------------------------------------------------------------------- 1. the inventory plugin


def plugin_groups(tmp_path, manager):
    lab = lab_hosts()["all"]["vars"]
    config = tmp_path / "swarm.yml"
    config.write_text(
        yaml.safe_dump(
            dict(
                plugin="swarmplane.cluster.swarm",
                manager=addresses()[manager],
                ssh_user=lab["ansible_user"],
                ssh_private_key_file=lab["ansible_ssh_private_key_file"],
                ssh_args=shlex.split(lab["ansible_ssh_common_args"]),
                timeout=10,
            )
        )
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(config), "--list"],
        cwd=REPO,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_INVENTORY_UNPARSED_FAILED="1"),
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    return {name: sorted(body.get("hosts", [])) for name, body in listing.items() if name != "_meta"}


def test_the_inventory_plugins_groups_are_docker_node_ls(tmp_path):
    rows = node_ls()
    groups = plugin_groups(tmp_path, "manager-2")  # a manager that is not the leader
    assert groups["managers"] == sorted(h for h, _, _, m in rows if m)
    assert groups["workers"] == sorted(h for h, _, _, m in rows if not m)
    assert groups["leader"] == [h for h, _, _, m in rows if m == "Leader"]
    assert groups["availability_active"] == sorted(HOSTS)
    assert groups["label_web_yes"] == sorted(LABELLED)


# --------------------------------------------------------------------------- 2-4. a manager down


def test_a_down_manager_is_named_and_a_service_change_still_applies(tmp_path):
    assert rows_without_leadership(node_ls()) == healthy_rows()
    on("manager-3", STOP_ENGINE)
    wait_until(lambda: ("manager-3", "Down") in {r[:2] for r in node_ls()}, "manager-3 to be Down")
    # The host itself is unreachable too: its SSH port is a closed one.
    down = inventory_copy(tmp_path, port_of={"manager-3": 1})
    declaration = tmp_path / "v2.yml"
    services = yaml.safe_load((REPO / "molecule" / "ha" / "molecule.yml").read_text())
    web = services["provisioner"]["inventory"]["group_vars"]["all"]["swarm_services"][0]
    declaration.write_text(yaml.safe_dump(dict(swarm_services=[dict(web, image=web["image"].replace(":v1", ":v2"))])))

    changed = succeeded(play("cluster.yml", "-e", "@%s" % declaration, inventory=down))
    assert "host manager-3" in changed.text and "is unreachable" in changed.text
    assert web_image().startswith("lab-registry:5000/swarmplane/web:v2")
    wait_until(lambda: len(web_nodes()) == 2, "two web tasks")
    for node in web_nodes():
        assert fetch(addresses()[node]).endswith("v2")

    strict = play("cluster.yml", "-e", "@%s" % declaration, "-e", "swarm_fail_on_unreachable=true", inventory=down)
    assert strict.returncode != 0
    assert "swarm_fail_on_unreachable is true and this run skipped unreachable hosts: manager-3" in strict.text
    assert "Show the cluster (docker node ls)" in strict.stdout  # the table came first
    assert {h: n for h, n in strict.changed.items() if n} == {}, strict.changed


@pytest.mark.parametrize("how", ["remove-node.yml", "demotion in the inventory"])
def test_taking_a_second_manager_away_while_one_is_down_is_refused_with_the_arithmetic(tmp_path, how):
    before = node_ls()
    if how == "remove-node.yml":
        result = play("remove-node.yml", "-e", "node=manager-2", "-e", "skip_confirmation=true")
        expected = (
            "removing manager-2 would cost the swarm its quorum: it has 3 managers, 2 reachable (unreachable: "
            "manager-3); removing it would leave 2 managers of which 1 reachable, and 2 managers need 2 "
            "reachable (a majority). Nothing was changed."
        )
    else:
        result = play("cluster.yml", inventory=inventory_copy(tmp_path, port_of={"manager-3": 1}, demote="manager-2"))
        expected = "this run would cost the swarm its quorum: it has 3 managers, 2 reachable"
    assert result.returncode != 0
    assert expected in result.text, result.stdout[-3000:]
    assert {h: n for h, n in result.changed.items() if n} == {}, result.changed
    assert node_ls() == before


def test_cluster_yml_starts_the_stopped_engine_and_the_manager_comes_back():
    result = succeeded(play("cluster.yml"))
    assert result.changed["manager-3"] > 0
    rows = wait_until(lambda: rows_without_leadership(node_ls()) == healthy_rows() and node_ls(), "every node Ready")
    assert manager_statuses(rows) == ["Leader", "Reachable", "Reachable"]
    assert web_image().startswith("lab-registry:5000/swarmplane/web:v1")  # the scenario's declaration again
    again = play("cluster.yml")
    assert again.returncode == 0 and set(again.changed.values()) == {0}, again.changed


# --------------------------------------------------------------------------- 5-6. a worker away and back


def test_removing_a_worker_that_runs_a_task_moves_it_while_a_client_polls_the_other_replica():
    wait_until(lambda: len(web_nodes()) == 2, "two web tasks")
    running = web_nodes()
    removed = next(h for h in WORKERS if h in running)  # two tasks on three labelled nodes: a worker runs one
    others = [h for h in running if h != removed]
    poller = Poller([addresses()[h] for h in others])
    poller.start()
    try:
        result = play("remove-node.yml", "-e", "node=%s" % removed, "-e", "skip_confirmation=true")
    finally:
        report = poller.stop()
    print("poller on %s during the removal of %s: %s" % (", ".join(others), removed, report))
    succeeded(result)
    assert len(poller.answers) > 20 and poller.failures == [], report
    assert removed not in {r[0] for r in node_ls()}
    assert swarm_state(removed) == "inactive"
    moved = web_nodes()
    assert len(moved) == 2 and removed not in moved
    for node in moved:  # the moved task answers on its new node
        assert fetch(addresses()[node]).endswith("v1")
    pytest.removed_worker = removed


def test_scale_brings_the_worker_back_without_a_stale_entry():
    removed = pytest.removed_worker
    result = succeeded(play("scale.yml", "--limit", removed))
    assert set(result.changed) == {removed}
    assert rows_without_leadership(node_ls()) == healthy_rows()
    assert len(node_ls()) == len(HOSTS)  # no stale Down entry beside it
    again = play("scale.yml", "--limit", removed)
    assert again.returncode == 0 and again.changed == {removed: 0}, again.changed


# --------------------------------------------------------------------------- 7. a manager away and back


def test_removing_a_manager_demotes_it_first_keeps_the_quorum_and_it_comes_back():
    result = succeeded(play("remove-node.yml", "-e", "node=manager-3", "-e", "skip_confirmation=true"))
    steps = [line for line in result.stdout.splitlines() if line.startswith("TASK [")]
    demote = next(i for i, s in enumerate(steps) if "Demote" in s)
    leave = next(i for i, s in enumerate(steps) if "Leave the swarm" in s)
    assert demote < leave, steps
    rows = node_ls()
    assert rows_without_leadership(rows) == healthy_rows(managers=("manager-1", "manager-2"))
    assert manager_statuses(rows) == ["Leader", "Reachable"]
    assert swarm_state("manager-3") == "inactive"

    back = succeeded(play("scale.yml", "--limit", "manager-3"))
    assert set(back.changed) == {"manager-3"}
    rows = wait_until(lambda: rows_without_leadership(node_ls()) == healthy_rows() and node_ls(), "every node Ready")
    assert manager_statuses(rows) == ["Leader", "Reachable", "Reachable"] and len(rows) == len(HOSTS)


def test_a_manager_that_left_by_hand_without_a_demotion_joins_again_and_its_old_entry_is_demoted_and_removed():
    old_id = on("manager-3", "docker info --format '{{.Swarm.NodeID}}'").stdout.strip()
    on("manager-3", "docker swarm leave --force")
    wait_until(lambda: ("manager-3", "Down") in {r[:2] for r in node_ls()}, "the old manager-3 entry to be Down")
    result = succeeded(play("cluster.yml"))
    for task in ("Demote the stale manager entries", "Remove the stale Down entries"):
        said = result.stdout.split(task, 1)[1].split("TASK [", 1)[0]
        assert "changed: " in said and "(item=manager-3 (old node %s))" % old_id in said, (said, node_ls())
    rows = wait_until(lambda: rows_without_leadership(node_ls()) == healthy_rows() and node_ls(), "every node Ready")
    assert manager_statuses(rows) == ["Leader", "Reachable", "Reachable"] and len(rows) == len(HOSTS)
    raft = on("manager-1", "docker info --format '{{.Swarm.Managers}} {{.Swarm.Nodes}}'").stdout.split()
    assert raft == ["3", "5"], raft  # the old entry no longer counts in the raft
    again = play("cluster.yml")
    assert again.returncode == 0 and set(again.changed.values()) == {0}, again.changed


# --------------------------------------------------------------------------- 8-9. reset, and a killed run


def test_reset_leaves_no_swarm_state_on_any_host():
    succeeded(play("reset.yml", "-e", "skip_confirmation=true"))
    for host in HOSTS:
        state = on(host, "docker info --format '{{.Swarm.LocalNodeState}}'; ls -A /var/lib/docker/swarm | wc -l")
        assert state.stdout.split() == ["inactive", "0"], (host, state.stdout)


def test_a_run_killed_during_the_joins_is_converged_by_the_next():
    # Killed as soon as the first host reports its join (the others join beside it): roles, stale entries and
    # the wait for Ready never ran.
    killed = play("cluster.yml", kill_after=("Join the managers and workers", r"^changed: \["))
    assert killed.killed, killed.stdout[-3000:]
    assert killed.returncode == -signal.SIGKILL
    assert "Read the swarm's nodes" not in killed.stdout

    succeeded(play("cluster.yml"))
    rows = wait_until(lambda: rows_without_leadership(node_ls()) == healthy_rows() and node_ls(), "every node Ready")
    assert manager_statuses(rows) == ["Leader", "Reachable", "Reachable"] and len(rows) == len(HOSTS)
    wait_until(lambda: len(web_nodes()) == 2, "two web tasks")
    again = play("cluster.yml")
    assert again.returncode == 0 and set(again.changed.values()) == {0}, again.changed

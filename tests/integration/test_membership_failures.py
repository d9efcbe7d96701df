"""Membership and engine failures lose nothing (issue 7, paths 7 to 10), on a lab of its own: 3 managers, 1 worker.

Each test injects the failure on the real engines and checks that what ran still runs (quorum, roles, engines)
and that the message names what happened and the fix. The tests build on each other in file order: the swarm
is formed once, autolock is turned on half way.
"""

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, changed, run_adhoc, run_playbook, write_inventory

LAB = "mfail"
MANAGERS = ["manager-1", "manager-2", "manager-3"]
WORKERS = ["worker-1"]
VAULT_ID_LABEL = "swarm"


def on(host, command, stdin=None):
    return subprocess.run(
        ["docker", "exec", "-i", "swarmplane-%s-%s" % (LAB, host), "sh", "-c", command],
        input=stdin,
        text=True,
        capture_output=True,
    )


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within %s s: %s" % (timeout, what)
        time.sleep(0.5)


def nodes():
    """{hostname: (role, manager status)} as a reachable manager lists them."""
    for manager in MANAGERS:
        out = on(manager, "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}'")
        if out.returncode == 0:
            rows = [line.split(" ", 1) + [""] for line in out.stdout.splitlines() if line]
            return {r[0]: ("manager" if r[1] else "worker", r[1]) for r in rows}
    return {}


HEALTHY = {
    "manager-1": "manager",
    "manager-2": "manager",
    "manager-3": "manager",
    "worker-1": "worker",
}


def assert_cluster_unchanged():
    listed = nodes()
    assert {h: role for h, (role, _status) in listed.items()} == HEALTHY
    statuses = [status for _role, status in listed.values() if status]
    assert sorted(statuses) == ["Leader", "Reachable", "Reachable"], listed


def dockerd_pid(host):
    return on(host, "pidof dockerd").stdout.strip()


def engine_state(host):
    return on(host, "docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'").stdout.strip()


def stop_engine(host):
    assert on(host, "start-stop-daemon --stop --oknodo --retry 30 --exec /usr/sbin/dockerd").returncode == 0


def start_engine(host):
    started = on(
        host,
        "start-stop-daemon --start --background --make-pidfile --pidfile /run/swarmplane-dockerd.pid "
        "--output /var/log/dockerd.log --exec /usr/sbin/dockerd",
    )
    assert started.returncode == 0, started.stderr
    wait_until(lambda: on(host, "docker info").returncode == 0, 60, "%s's engine answers" % host)


def text(result):
    """The run's output with YAML's line folding undone, for matching whole sentences."""
    return " ".join(result.stdout.replace("''", "'").split())


class ManagerWatch:
    """Counts, while a run goes on, how many managers are active with their control plane up (docker info)."""

    def __init__(self):
        self.fewest = len(MANAGERS)
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        while not self._stop.is_set():
            up = sum(1 for m in MANAGERS if engine_state(m) == "active true")
            self.fewest = min(self.fewest, up)
            self.rounds += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def mfail(tmp_path_factory):
    """The lab, formed into one swarm by cluster.yml; removed at the end even when tests fail."""
    workdir = tmp_path_factory.mktemp("mfail")
    lab_inventory = workdir / "lab.yml"
    up = [str(REPO / "lab" / "lab.py"), "up", "--name", LAB, "--managers", "3", "--workers", "1"]
    try:
        subprocess.run(up + ["--inventory", str(lab_inventory)], check=True, capture_output=True)
        lab = yaml.safe_load(lab_inventory.read_text())
        inventory = write_inventory(workdir / "hosts.yml", MANAGERS, WORKERS, lab)
        formed = run_playbook(inventory)
        assert formed.returncode == 0, formed.stdout[-3000:]
        password = workdir / "vault-pass"
        password.write_text("mfail-vault-password\n")
        password.chmod(0o600)
        yield dict(
            lab=lab,
            workdir=workdir,
            inventory=inventory,
            vault_file=workdir / "unlock.yml",
            vault_id="%s@%s" % (VAULT_ID_LABEL, password),
        )
    finally:
        subprocess.run([str(REPO / "lab" / "lab.py"), "down", "--name", LAB], check=False, capture_output=True)


def inventory_with(mfail, name, managers, workers, host_vars=None):
    return write_inventory(mfail["workdir"] / name, managers, workers, mfail["lab"], host_vars)


def with_key(mfail):
    return ["-e", "@%s" % mfail["vault_file"], "--vault-id", mfail["vault_id"]]


# --------------------------------------------------------------------------- path 7: membership


def test_host_in_swarm_but_in_neither_group_is_refused_and_nothing_changes(mfail):
    # The typo of the issue: two managers under `manager:`, a group of its own inside `swarm`.
    inventory = yaml.safe_load(mfail["inventory"].read_text())
    groups = inventory["all"]["children"]["swarm"]["children"]
    groups["manager"] = {"hosts": {h: groups["managers"]["hosts"].pop(h) for h in ("manager-2", "manager-3")}}
    typo = mfail["workdir"] / "typo.yml"
    typo.write_text(yaml.safe_dump(inventory))

    result = run_playbook(typo)

    assert result.returncode != 0
    for host in ("manager-2", "manager-3"):
        assert "host %s is in 'swarm' but in neither 'managers' nor 'workers' (its groups: manager)" % host in text(
            result
        )
    assert "Fix: put it under managers or workers" in text(result)
    assert set(changed(result).values()) <= {0}
    assert_cluster_unchanged()


def test_bulk_demotion_is_refused_with_the_arithmetic_and_nothing_changes(mfail):
    inventory = inventory_with(mfail, "bulk.yml", ["manager-1"], ["manager-2", "manager-3", "worker-1"])

    result = run_playbook(inventory)

    assert result.returncode != 0
    said = text(result)
    assert "this run would demote 2 managers at once: manager-2, manager-3" in said
    assert "The swarm has 3 managers and tolerates 1 unavailable; after this run it would have 1, tolerating 0" in said
    assert "set swarm_allow_bulk_demotion: true" in said
    assert set(changed(result).values()) == {0}
    assert_cluster_unchanged()


def test_demotion_that_would_cost_the_quorum_is_refused_even_when_bulk_demotion_is_allowed(mfail):
    # manager-3's engine is down and the run cannot bring it back (SSH refuses): demoting manager-2 would leave
    # 2 managers, 1 of them reachable.
    stop_engine("manager-3")
    try:
        wait_until(lambda: nodes().get("manager-3", ("", ""))[1] == "Unreachable", 30, "manager-3 unreachable")
        inventory = inventory_with(
            mfail,
            "quorum.yml",
            ["manager-1", "manager-3"],
            ["manager-2", "worker-1"],
            {"manager-3": {"ansible_port": 1}},
        )

        result = run_playbook(inventory, "-e", "swarm_allow_bulk_demotion=true")

        assert result.returncode != 0
        said = text(result)
        assert (
            "this run would cost the swarm its quorum: it has 3 managers, 2 reachable (unreachable: manager-3)" in said
        )
        assert "demoting manager-2 would leave 2 managers of which 1 reachable, and 2 managers need 2 reachable" in said
        assert "Fix: bring manager-3 back first" in said
        assert set(changed(result).values()) <= {0}
        assert nodes()["manager-2"] == ("manager", "Reachable")
    finally:
        start_engine("manager-3")
    wait_until(lambda: nodes().get("manager-3", ("", ""))[1] == "Reachable", 60, "manager-3 reachable again")
    assert_cluster_unchanged()


# --------------------------------------------------------------------------- path 10: engines that hang


def test_hung_engine_is_reported_in_its_own_words_and_left_alone(mfail):
    pid = dockerd_pid("worker-1")
    on("worker-1", "kill -STOP %s" % pid)
    try:
        started = time.monotonic()
        result = run_playbook(mfail["inventory"], "-e", "swarm_probe_timeout=3")
        took = time.monotonic() - started
    finally:
        on("worker-1", "kill -CONT %s" % pid)
    assert result.returncode != 0
    said = text(result)
    assert "host worker-1: the Docker engine at unix:///var/run/docker.sock does not work: no answer within 3 s" in said
    assert "Read timed out" in said  # the engine's (its socket's) own words
    assert "raise swarm_probe_timeout (3 s now)" in said
    assert "no Docker engine" not in said and "Install the packages" not in said
    assert took < 45, "a 3 s probe timeout took %.0f s" % took
    assert dockerd_pid("worker-1") == pid  # neither restarted nor replaced
    assert set(changed(result).values()) <= {0}
    assert_cluster_unchanged()


def test_engine_start_wait_gives_up_at_its_timeout_on_a_stuck_socket(mfail):
    # No engine on worker-1, only a socket that accepts connections and never answers.
    stop_engine("worker-1")
    stuck = (
        "import os, socket\n"
        "path = '/var/run/docker.sock'\n"
        "os.path.exists(path) and os.unlink(path)\n"
        "server = socket.socket(socket.AF_UNIX)\n"
        "server.bind(path)\n"
        "server.listen(64)\n"
        "held = []\n"
        "while True:\n"
        "    held.append(server.accept())\n"
    )
    on("worker-1", "cat > /tmp/stuck.py && (python3 /tmp/stuck.py >/dev/null 2>&1 &)", stdin=stuck)
    try:
        wait_until(lambda: on("worker-1", "test -S /var/run/docker.sock").returncode == 0, 10, "the stuck socket")
        started = time.monotonic()
        wait = run_adhoc(mfail["inventory"], "worker-1", "swarmplane.cluster.swarm", "state=unlocked timeout=5")
        took = time.monotonic() - started
        probe = run_adhoc(
            mfail["inventory"], "worker-1", "swarmplane.cluster.swarm_info", "fail_on_unavailable=false timeout=2"
        )
    finally:
        on("worker-1", "pkill -f /tmp/stuck.py; rm -f /var/run/docker.sock /tmp/stuck.py")
        start_engine("worker-1")
    said = " ".join(wait.stdout.split())
    assert wait.returncode != 0
    assert "the Docker engine at unix:///var/run/docker.sock did not answer within 5 s" in said
    assert "Read timed out" in said
    assert took < 20, "a 5 s wait took %.0f s" % took
    # The probe does not take a hanging engine for a missing one (which the role would try to install and start).
    assert probe.returncode != 0 and "docker_available: false" not in probe.stdout
    assert "no answer within 2 s" in " ".join(probe.stdout.split())
    wait_until(lambda: nodes().get("worker-1") == ("worker", ""), 30, "worker-1 back")
    assert_cluster_unchanged()


# --------------------------------------------------------------------------- path 9: the unlock key


def test_autolock_key_is_written_encrypted_to_the_vault_file_only(mfail):
    vault_args = [
        "-e",
        "swarm_autolock=true",
        "-e",
        "swarm_unlock_key_vault_file=%s" % mfail["vault_file"],
        "-e",
        "swarm_unlock_key_vault_id=%s" % mfail["vault_id"],
    ]
    first = run_playbook(mfail["inventory"], *vault_args)
    assert first.returncode == 0, first.stdout[-3000:]

    key = on("manager-1", "docker swarm unlock-key -q").stdout.strip()
    assert key.startswith("SWMKEY-1-")
    vault_file = mfail["vault_file"]
    assert vault_file.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;%s\n" % VAULT_ID_LABEL)
    assert oct(vault_file.stat().st_mode & 0o777) == "0o600"
    secret = key.split("-")[-1]
    assert secret not in vault_file.read_text()
    assert secret not in first.stdout + first.stderr
    view = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-vault"), "view", "--vault-id", mfail["vault_id"], str(vault_file)],
        text=True,
        capture_output=True,
    )
    assert yaml.safe_load(view.stdout) == {"swarm_unlock_key": key}
    assert [p.name for p in vault_file.parent.iterdir() if p.name.startswith(".unlock")] == []  # no leftovers

    second = run_playbook(mfail["inventory"], *vault_args)
    assert second.returncode == 0
    assert set(changed(second).values()) == {0}


# --------------------------------------------------------------------------- path 8: restarts with autolock


def test_daemon_json_change_with_autolock_and_no_key_is_refused_before_any_change(mfail):
    pids = {h: dockerd_pid(h) for h in MANAGERS + WORKERS}

    result = run_playbook(mfail["inventory"], "-e", '{"docker_engine_daemon_options": {"debug": true}}')

    assert result.returncode != 0
    said = text(result)
    named = said.split("the engines of the managers ", 1)[1].split(" would restart", 1)[0]
    assert sorted(named.split(", ")) == MANAGERS
    assert "the swarm has autolock on" in said and "swarm_unlock_key is not set" in said
    assert "Fix: give the key as swarm_unlock_key" in said
    assert set(changed(result).values()) <= {0}
    for host in MANAGERS + WORKERS:
        assert on(host, "test -e /etc/docker/daemon.json").returncode == 1, "%s: daemon.json written" % host
    assert {h: dockerd_pid(h) for h in MANAGERS + WORKERS} == pids
    assert_cluster_unchanged()


def test_wrong_unlock_key_is_refused_before_any_restart(mfail):
    pids = {h: dockerd_pid(h) for h in MANAGERS + WORKERS}
    wrong = "SWMKEY-1-" + "A" * 43

    result = run_playbook(
        mfail["inventory"],
        "-e",
        '{"docker_engine_daemon_options": {"debug": true}}',
        "-e",
        "swarm_unlock_key=%s" % wrong,
    )

    assert result.returncode != 0
    assert "swarm_unlock_key is not the current unlock key of this swarm" in text(result)
    assert {h: dockerd_pid(h) for h in MANAGERS + WORKERS} == pids
    assert on("manager-1", "test -e /etc/docker/daemon.json").returncode == 1
    assert_cluster_unchanged()


def test_daemon_json_change_restarts_managers_one_at_a_time_unlocked_with_the_vault_key(mfail):
    pids = {h: dockerd_pid(h) for h in MANAGERS + WORKERS}
    leader = next(h for h, (_role, status) in nodes().items() if status == "Leader")

    with ManagerWatch() as watch:
        result = run_playbook(
            mfail["inventory"], "-e", '{"docker_engine_daemon_options": {"debug": true}}', *with_key(mfail)
        )

    assert result.returncode == 0, result.stdout[-3000:]
    for host in MANAGERS + WORKERS:
        assert on(host, "docker info --format '{{.Debug}}'").stdout.strip() == "true"
        assert dockerd_pid(host) != pids[host], "%s was not restarted" % host
    assert watch.rounds > 5
    assert watch.fewest >= 2, "only %d managers were up at one point: the quorum was lost" % watch.fewest
    restarted = [
        line.split("Restart the engine of ", 1)[1].split("]", 1)[0]
        for line in result.stdout.splitlines()
        if "TASK [swarmplane.cluster.docker_engine : Restart the engine of " in line
    ]
    assert restarted[0] == "worker-1" and restarted[-1] == leader and sorted(restarted) == sorted(MANAGERS + WORKERS)
    key = on("manager-1", "docker swarm unlock-key -q").stdout.strip()
    assert key.split("-")[-1] not in result.stdout + result.stderr
    assert_cluster_unchanged()

    again = run_playbook(
        mfail["inventory"], "-e", '{"docker_engine_daemon_options": {"debug": true}}', *with_key(mfail)
    )
    assert again.returncode == 0
    assert set(changed(again).values()) == {0}


def test_locked_manager_is_unlocked_by_cluster_yml_with_the_key_from_the_vault_file(mfail):
    stop_engine("manager-2")
    start_engine("manager-2")
    assert engine_state("manager-2").startswith("locked")
    wait_until(lambda: nodes()["manager-2"][1] == "Unreachable", 30, "manager-2 unreachable while locked")

    refused = run_playbook(mfail["inventory"])
    assert refused.returncode != 0
    said = text(refused)
    assert "host manager-2: its swarm is locked (autolock)" in said
    assert "swarm_unlock_key is not set. Fix: give the key as swarm_unlock_key" in said
    assert engine_state("manager-2").startswith("locked")

    unlocked = run_playbook(mfail["inventory"], *with_key(mfail))
    assert unlocked.returncode == 0, unlocked.stdout[-3000:]
    assert changed(unlocked)["manager-2"] >= 1
    assert engine_state("manager-2") == "active true"
    assert_cluster_unchanged()


# --------------------------------------------------------------------------- path 7: a deliberate bulk demotion


def test_bulk_demotion_when_allowed_demotes_one_manager_at_a_time(mfail):
    inventory = inventory_with(mfail, "bulk.yml", ["manager-1"], ["manager-2", "manager-3", "worker-1"])

    result = run_playbook(inventory, "-e", "swarm_allow_bulk_demotion=true")

    assert result.returncode == 0, result.stdout[-3000:]
    demoted = [
        line for line in result.stdout.splitlines() if line.startswith("changed: [") and "(item=manager-" in line
    ]
    assert len(demoted) == 2  # one swarm_node run each, the second once the first settled in the raft
    listed = nodes()
    assert listed["manager-1"] == ("manager", "Leader")
    assert listed["manager-2"] == listed["manager-3"] == ("worker", "")
    assert all(engine_state(h) == "active false" for h in ("manager-2", "manager-3", "worker-1"))


def test_a_manager_that_cannot_join_stops_the_run_naming_it_and_the_next_run_converges(mfail):
    # After the bulk demotion above, manager-2 and manager-3 are workers: they leave, and the inventory makes them
    # managers again; they join together with the rest. manager-3 is told to listen on port 22, where its sshd
    # listens: its engine refuses the join before the leader hears of it. The run stops on every host naming it,
    # and manager-2's join stands.
    for host in ("manager-2", "manager-3"):
        assert on(host, "docker swarm leave").returncode == 0
    inventory = inventory_with(
        mfail, "rejoin.yml", MANAGERS, WORKERS, host_vars={"manager-3": {"swarm_listen_addr": "0.0.0.0:22"}}
    )

    refused = run_playbook(inventory)

    assert refused.returncode != 0
    said = text(refused)
    assert "host manager-3: could not join the swarm as a manager (" in said
    assert "address already in use" in said
    assert "Read the swarm's nodes" not in refused.stdout  # stopped before roles are reconciled
    assert engine_state("manager-2") == "active true"
    assert engine_state("manager-3").startswith("inactive")

    result = run_playbook(mfail["inventory"])

    assert result.returncode == 0, result.stdout[-3000:]
    # The entry manager-3's failed join left (no hostname, never Ready) is removed; manager-3's new one, whose ID came
    # from the join's result, is not taken for a stale one.
    assert_cluster_unchanged()
    assert set(changed(run_playbook(mfail["inventory"])).values()) == {0}

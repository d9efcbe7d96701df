"""Rolling engine changes on a swarm of 3 managers and 2 workers running a service: a daemon.json change on every
host and an engine package upgrade on one go one node at a time - drained first, restarted, Ready again, its
availability given back and its services running again before the next - while a watcher checks every half second
that at most one node is out of service, the managers keep their quorum and the service always answers over HTTP.
A node the operator drained stays drained; a second run changes nothing. Runs on its own lab (`roll`, with the lab
registry), created and removed by this module."""

import json
import subprocess
import threading
import time
import urllib.request

import pytest
import yaml
from conftest import changed, registry_lab, run_playbook, run_services

LAB = "roll"
WEB = "lab-registry:5000/swarmplane/web"
MANAGERS = ("manager-1", "manager-2", "manager-3")
HOSTS = MANAGERS + ("worker-1", "worker-2")
DRAINED_BY_HAND = "worker-2"
UPGRADED = "worker-1"
PORT = 8080
LABEL = "swarmplane-roll=1"
# The installed docker.io, repacked under a higher version in a local apt source of one host: an engine upgrade
# without a mirror (the lab has no way out).
OFFER_NEWER_DOCKER_IO = r"""
set -e
v=$(dpkg-query -W -f='${Version}' docker.io)
new="${v}+swarmplane1"
d=/var/tmp/newer/pkg
rm -rf /var/tmp/newer && mkdir -p $d/DEBIAN /srv/newer
dpkg-query -L docker.io | while read -r f; do
  if [ ! -d "$f" ] && { [ -f "$f" ] || [ -L "$f" ]; }; then mkdir -p "$d$(dirname "$f")"; cp -a "$f" "$d$f"; fi
done
dpkg-query -s docker.io | grep -v -E '^(Status|Conffiles|Version):|^ /' | sed '/^$/d' > $d/DEBIAN/control
echo "Version: $new" >> $d/DEBIAN/control
[ ! -f /var/lib/dpkg/info/docker.io.conffiles ] || cp /var/lib/dpkg/info/docker.io.conffiles $d/DEBIAN/conffiles
deb=docker.io_${new}_amd64.deb
dpkg-deb -Znone --build $d /srv/newer/$deb >/dev/null
rm -rf /var/tmp/newer
cd /srv/newer
{ dpkg-deb -f $deb; echo "Filename: ./$deb"; echo "Size: $(stat -c %s $deb)"; echo "SHA256: $(sha256sum $deb | cut -d' ' -f1)"; echo; } > Packages
echo "deb [trusted=yes] file:/srv/newer ./" > /etc/apt/sources.list.d/newer.list
apt-get update -qq -o Dir::Etc::sourcelist=/etc/apt/sources.list.d/newer.list -o Dir::Etc::sourceparts=- \
    -o APT::Get::List-Cleanup=0
echo "$new"
"""


def lab_exec(host, command, timeout=30):
    return subprocess.run(
        ["docker", "exec", "swarmplane-%s-%s" % (LAB, host), "sh", "-c", command],
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def nodes():
    """{hostname: (status, availability, manager status)} from the first manager that answers; None when none does
    (no leader)."""
    for manager in MANAGERS:
        try:
            out = lab_exec(
                manager, "docker node ls --format '{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}'", 5
            )
        except subprocess.TimeoutExpired:
            continue
        if out.returncode == 0 and out.stdout.strip():
            rows = [line.split("|") for line in out.stdout.splitlines() if line]
            return {row[0]: tuple(row[1:]) for row in rows}
    return None


OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def answers(addresses):
    """The nodes whose published port answers with a replica's name."""
    answered = []
    for host, address in sorted(addresses.items()):
        try:
            with OPENER.open("http://%s:%d/" % (address, PORT), timeout=1) as reply:
                if reply.status == 200 and reply.read():
                    answered.append(host)
        except OSError:
            pass
    return answered


class Watcher(threading.Thread):
    """Every half second: the nodes as a manager lists them, and which nodes' published port answers."""

    def __init__(self, addresses):
        super().__init__(daemon=True)
        self.addresses = addresses
        self.samples = []  # (seconds since start, nodes or None, answering hosts)
        self.stopping = threading.Event()

    def run(self):
        start = time.monotonic()
        while not self.stopping.is_set():
            began = time.monotonic()
            self.samples.append((round(began - start, 1), nodes(), answers(self.addresses)))
            self.stopping.wait(max(0.0, 0.5 - (time.monotonic() - began)))

    def stop(self):
        self.stopping.set()
        self.join(timeout=30)


def out_of_service(listed):
    """Nodes that are down (or disconnected) or not active; the node drained by hand counts only when it is down.

    Unknown is not out of service: a manager just elected leader lists every node Unknown until it reports to it
    again (a few seconds after the leader's restart), while the nodes and their tasks run on."""
    return sorted(
        host
        for host, (status, availability, _) in listed.items()
        if status in ("Down", "Disconnected") or (availability != "Active" and host != DRAINED_BY_HAND)
    )


def reachable_managers(listed):
    return sum(1 for _, _, manager in listed.values() if manager in ("Leader", "Reachable"))


def outcomes(result, task):
    """{restarted host: 'changed' / 'skipping' / ...} of the task `<task><host>` in a run's output, in run order."""
    found = {}
    lines = result.stdout.splitlines()
    marker = "TASK [swarmplane.cluster.docker_engine : %s" % task
    for index, line in enumerate(lines):
        if line.startswith(marker):
            host = line[len(marker) :].split("]", 1)[0]
            status = next((n for n in lines[index + 1 :] if n.strip()), "")
            found[host] = status.split(":", 1)[0]
    return found


def restarted(result):
    return [h for h, outcome in outcomes(result, "Restart the engine of ").items() if outcome == "changed"]


@pytest.fixture(scope="module")
def roll_lab(tmp_path_factory):
    with registry_lab(LAB, tmp_path_factory.mktemp("roll"), managers=3, workers=2) as formed:
        yield formed


def test_a_rolling_daemon_json_change_and_engine_upgrade_keep_the_service_up(roll_lab, tmp_path):
    inventory, addresses = roll_lab
    started = time.monotonic()
    # The operator drained one node by hand: it must stay drained.
    drained = lab_exec("manager-1", "docker node update --availability drain %s" % DRAINED_BY_HAND)
    assert drained.returncode == 0, drained.stderr
    web = dict(name="web", image=WEB + ":v1", replicas=2, publish=[dict(target=8000, published=PORT, mode="host")])
    agent = dict(name="agent", image=WEB + ":v1", mode="global")
    deployed = run_services(inventory, tmp_path, dict(swarm_services=[web, agent]))
    assert deployed.returncode == 0, deployed.stdout[-3000:]
    assert len(answers(addresses)) == 2
    offered = lab_exec(UPGRADED, OFFER_NEWER_DOCKER_IO, timeout=120)
    assert offered.returncode == 0, offered.stderr
    newer = offered.stdout.strip()
    before = nodes()
    assert {h: row[1] for h, row in before.items()} == dict({h: "Active" for h in HOSTS}, **{DRAINED_BY_HAND: "Drain"})
    # A run interrupted between a drain and the return left worker-1 drained, with the label that says how it was.
    interrupted = lab_exec(
        "manager-1",
        "docker node update --availability drain --label-add swarmplane.restart.availability=active worker-1",
    )
    assert interrupted.returncode == 0, interrupted.stderr
    versions = {h: lab_exec(h, "dpkg-query -W -f='${Version}' docker.io").stdout for h in HOSTS}
    pids = {h: lab_exec(h, "pidof dockerd").stdout.strip() for h in HOSTS}

    # A daemon.json change on every host, and the engine upgrade the apt lists offer (no mirror: lists as they are).
    lab = yaml.safe_load(inventory.read_text())
    options = dict(lab["all"]["vars"]["docker_engine_daemon_options"], labels=[LABEL])
    lab["all"]["vars"].update(
        docker_engine_daemon_options=options, docker_engine_upgrade=True, docker_engine_upgrade_update_cache=False
    )
    rolling = tmp_path / "rolling.yml"
    rolling.write_text(yaml.safe_dump(lab))

    check = run_playbook(rolling, "--check")
    assert check.returncode == 0, check.stdout[-3000:]
    text = " ".join(check.stdout.split())
    assert "check mode: a real run upgrades on %s docker.io %s -> %s." % (UPGRADED, versions[UPGRADED], newer) in text
    assert "a real run drains (then gives back its availability) and restarts the engines of" in text
    # Nothing changed: no engine restarted, no package upgraded, daemon.json as it was.
    assert {h: lab_exec(h, "pidof dockerd").stdout.strip() for h in HOSTS} == pids
    assert lab_exec(UPGRADED, "dpkg-query -W -f='${Version}' docker.io").stdout == versions[UPGRADED]
    for host in HOSTS:
        assert LABEL not in lab_exec(host, "cat /etc/docker/daemon.json").stdout

    watcher = Watcher(addresses)
    watcher.start()
    try:
        result = run_playbook(rolling)
    finally:
        watcher.stop()
    assert result.returncode == 0, result.stdout[-5000:]
    assert "TASK [swarmplane.cluster.docker_engine : Give back their availability to nodes an interrupted run" in (
        result.stdout
    )
    assert "changed: [manager-1] => (item=worker-1)" in result.stdout

    # Every engine restarted, one at a time, workers first and the leader last; each node the operator had active
    # was drained first and given back; the one drained by hand was not touched.
    assert sorted(restarted(result)) == sorted(HOSTS)
    assert restarted(result)[:2] == ["worker-1", "worker-2"]
    drains = outcomes(result, "Drain the node and wait until its tasks run elsewhere, on ")
    assert {h: o for h, o in drains.items() if o == "changed"} == {h: "changed" for h in HOSTS if h != DRAINED_BY_HAND}
    assert drains[DRAINED_BY_HAND] == "skipping"
    gave_back = outcomes(result, "Give the node its availability back and wait for its services, on ")
    assert sorted(h for h, o in gave_back.items() if o == "changed") == sorted(set(HOSTS) - {DRAINED_BY_HAND})
    upgrades = outcomes(result, "Upgrade the engine packages of ")
    assert {h for h, o in upgrades.items() if o == "changed"} == {UPGRADED}
    assert lab_exec(UPGRADED, "dpkg-query -W -f='${Version}' docker.io").stdout == newer
    for host in HOSTS:
        if host != UPGRADED:
            assert lab_exec(host, "dpkg-query -W -f='${Version}' docker.io").stdout == versions[host]
        assert LABEL in json.loads(lab_exec(host, "docker info --format '{{json .Labels}}'").stdout)
        assert lab_exec(host, "pidof dockerd").stdout.strip() != pids[host]

    # What the watcher saw while the run went on.
    samples = watcher.samples
    assert len(samples) > 40, samples
    listed = [(t, n) for t, n, _ in samples if n is not None]
    for t, n in listed:
        assert len(out_of_service(n)) <= 1, (t, n)
        assert reachable_managers(n) >= 2, (t, n)  # 2 of 3: the quorum
    # Every node the run drained was seen out of service at some point (so the checks above saw the drains).
    seen_out = {h for _, n in listed for h in out_of_service(n)}
    assert seen_out >= set(HOSTS) - {DRAINED_BY_HAND}, seen_out
    # No manager answered `docker node ls` only while the leader restarted and another was elected.
    gaps, gap = [], 0
    for _, n, _ in samples:
        gap = gap + 1 if n is None else 0
        gaps.append(gap)
    assert max(gaps) <= 20, samples  # 20 samples: about 10 s
    for t, _, answering in samples:
        assert answering, (t, samples)  # a replica always answered
    print(
        "watcher: %d samples over %.0f s; most nodes out of service at once: %d; longest time without an answering "
        "manager: %d samples; fewest answering replicas: %d"
        % (
            len(samples),
            samples[-1][0],
            max(len(out_of_service(n)) for _, n in listed),
            max(gaps),
            min(len(a) for _, _, a in samples),
        )
    )
    assert len(answers(addresses)) == 2

    # Each node's availability is what it was before; no restart label is left.
    after = nodes()
    assert {h: row[1] for h, row in after.items()} == {h: row[1] for h, row in before.items()}
    assert {h: row[0] for h, row in after.items()} == {h: "Ready" for h in HOSTS}
    for host in HOSTS:
        labels = lab_exec("manager-1", "docker node inspect %s --format '{{json .Spec.Labels}}'" % host).stdout
        assert "swarmplane.restart" not in labels, (host, labels)
    assert lab_exec("manager-1", "docker node ps %s --filter desired-state=running -q" % DRAINED_BY_HAND).stdout == ""

    # The same inventory again: nothing to change, nothing newer to upgrade, nothing restarted or drained.
    pids = {h: lab_exec(h, "pidof dockerd").stdout.strip() for h in HOSTS}
    again = run_playbook(rolling)
    assert again.returncode == 0, again.stdout[-3000:]
    assert set(changed(again).values()) == {0}, changed(again)
    assert restarted(again) == []
    assert {h: lab_exec(h, "pidof dockerd").stdout.strip() for h in HOSTS} == pids
    assert time.monotonic() - started < 330


def test_a_task_pinned_to_a_node_stops_the_rolling_change_before_that_restart_and_the_node_is_given_back(
    roll_lab, tmp_path
):
    inventory, _ = roll_lab
    pinned = lab_exec(
        "manager-1",
        "docker service create -q --detach --name pinned --constraint node.hostname==%s %s:v1" % (UPGRADED, WEB),
    )
    assert pinned.returncode == 0, pinned.stderr
    try:
        deadline = time.monotonic() + 60
        while "Running" not in lab_exec("manager-1", "docker service ps pinned --format '{{.CurrentState}}'").stdout:
            assert time.monotonic() < deadline, "pinned never ran"
            time.sleep(1)
        pids = {h: lab_exec(h, "pidof dockerd").stdout.strip() for h in HOSTS}
        lab = yaml.safe_load(inventory.read_text())
        lab["all"]["vars"]["docker_engine_daemon_options"]["labels"] = ["swarmplane-roll=2"]
        changed_options = tmp_path / "pinned.yml"
        changed_options.write_text(yaml.safe_dump(lab))

        result = run_playbook(changed_options)

        assert result.returncode != 0
        said = " ".join(result.stdout.split())
        assert (
            "host %s: its node could not be drained before its engine restart, so its engine was not restarted, nor "
            "those of the hosts after it." % UPGRADED
        ) in said
        assert "Tasks that cannot leave it: pinned.1 (pending: no suitable node (" in said
        assert "Its availability is active again." in said
        assert "or set docker_engine_restart_drain: false to restart without draining" in said
        # Nothing restarted, nothing written; the node takes tasks again, without the restart label.
        assert {h: lab_exec(h, "pidof dockerd").stdout.strip() for h in HOSTS} == pids
        for host in HOSTS:
            assert "swarmplane-roll=2" not in lab_exec(host, "cat /etc/docker/daemon.json").stdout
        assert nodes()[UPGRADED][1] == "Active"
        labels = lab_exec("manager-1", "docker node inspect %s --format '{{json .Spec.Labels}}'" % UPGRADED).stdout
        assert "swarmplane.restart" not in labels
    finally:
        lab_exec("manager-1", "docker service rm pinned")

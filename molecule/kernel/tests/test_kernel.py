"""What only a real kernel shows, on the scenario's VMs (Debian's kernel, IPVS and ESP):

1. the tutorial's test: the service answers through the worker's address, round robin over both replicas;
2. the edge VIP answers round robin over the nodes; a node removed from the inventory is drained out of it
   while a client polls;
3. the fabric: hosts reach each other over fabric addresses; peers follow the inventory;
4. built-in DNS: the service name is a VIP balanced by IPVS, tasks.<service> lists every task;
5. an encrypted overlay carries traffic between hosts;
6. a rolling update through the worker's address while a client polls every 0.1 s;
7. verify.yml passes (idempotence is Molecule's own step, before this).

Tests that change the cluster (6, then 2's drain) come last, in file order. Failed requests are printed.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.swarmplane.cluster.plugins.modules.endpoint_probe import request_once  # noqa: E402

INSTANCES = {i["instance"]: i for i in yaml.safe_load(Path(os.environ["MOLECULE_INSTANCE_CONFIG"]).read_text())}
INVENTORY_DIR = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
GROUP_VARS = yaml.safe_load((REPO / "molecule" / "kernel" / "molecule.yml").read_text())["provisioner"]["inventory"]
VIP = GROUP_VARS["host_vars"]["lb-1"]["edge_lb_vip"]
FABRIC = GROUP_VARS["group_vars"]["all"]["fabric_subnet"]
SERVICES = GROUP_VARS["group_vars"]["all"]["swarm_services"]
NODES = ("manager-1", "worker-1")

# --------------------------------------------------------------------------- helpers


def ssh(host, command, check=True, timeout=120):
    instance = INSTANCES[host]
    argv = [
        "ssh",
        "-i",
        instance["identity_file"],
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ControlMaster=auto",
        "-o",
        "ControlPath=/tmp/swarmplane-kernel-%C",
        "-o",
        "ControlPersist=120",
        "root@%s" % instance["address"],
        command,
    ]
    result = subprocess.run(argv, text=True, capture_output=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError("%s: %s failed (%d): %s" % (host, command, result.returncode, result.stderr.strip()))
    return result.stdout


def address(host):
    return INSTANCES[host]["address"]


def fetch(host, port, timeout=3):
    return request_once(host, port, "http", "/", timeout)


def replica(reply):
    """'<container hostname> <variant>' -> the container hostname (the task that answered)."""
    return reply.split()[0]


def playbook(*args, inventory=None):
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_TIMEOUT="60",
    )
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory or INVENTORY_DIR), *args],
        cwd=REPO,
        env=env,
        text=True,
        capture_output=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


class Poller(threading.Thread):
    """A client that sends a request every `interval` seconds and keeps every outcome."""

    def __init__(self, host, port, interval=0.1):
        super().__init__(daemon=True)
        self.host, self.port, self.interval = host, port, interval
        self.stopped = threading.Event()
        self.answers, self.failures = [], []

    def run(self):
        while not self.stopped.is_set():
            started = time.monotonic()
            try:
                self.answers.append(fetch(self.host, self.port, timeout=2))
            except Exception as exc:  # every failure counts, whatever it is
                self.failures.append("%.1f s: %s" % (time.monotonic(), exc))
            self.stopped.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self):
        self.stopped.set()
        self.join()
        print(
            "poller %s:%d: %d requests, %d failed%s"
            % (
                self.host,
                self.port,
                len(self.answers) + len(self.failures),
                len(self.failures),
                (": " + "; ".join(self.failures[:10])) if self.failures else "",
            )
        )


def in_container(host, network, script):
    image = ssh(host, "docker service inspect myweb --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'", check=False)
    image = image.strip().split("@")[0] or "swarmplane/web:v1"
    return ssh(host, "docker run --rm --network %s %s sh -c %s" % (network, image, json.dumps(script)))


def nslookup(host, network, name):
    out = in_container(host, network, "nslookup %s 127.0.0.11" % name)
    answer = out.split("Name:", 1)[1] if "Name:" in out else ""
    return sorted(re.findall(r"Address:\s*([0-9.]+)", answer))


def reduced_inventory(tmp_path, host):
    """A copy of the scenario's inventory without `host`: what an operator does to remove it."""
    target = tmp_path / "inventory"
    subprocess.run(["cp", "-r", str(INVENTORY_DIR), str(target)], check=True)

    def drop(node):
        if isinstance(node, dict):
            node.pop(host, None)
            for value in node.values():
                drop(value)

    # Molecule's inventory and the one lab/vm.py wrote beside it both list the host.
    for source in target.glob("*.yml"):
        data = yaml.safe_load(source.read_text())
        drop(data)
        source.write_text(yaml.safe_dump(data))
    for extra in (target / "host_vars").glob("%s*" % host):
        extra.unlink()
    return target


def ipvs_stats(host, netns=None):
    """{real server: connections} of every virtual service (ipvsadm -Ln --stats)."""
    prefix = "nsenter --net=%s " % netns if netns else ""
    out = ssh(host, prefix + "ipvsadm -Ln --stats")
    stats = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] == "->" and fields[2].isdigit():
            stats[fields[1]] = int(fields[2])
    return stats


@pytest.fixture(scope="module", autouse=True)
def close_ssh_masters():
    """The tests' SSH connections stay open between tests; none is left behind at the end."""
    yield
    for host in INSTANCES:
        subprocess.run(
            ["ssh", "-o", "ControlPath=/tmp/swarmplane-kernel-%C", "-O", "exit", "root@%s" % address(host)],
            capture_output=True,
            timeout=30,
        )


def recap_changed(out):
    return sum(int(n) for n in re.findall(r"changed=(\d+)", out.split("PLAY RECAP")[-1]))


# --------------------------------------------------------------------------- 1. the tutorial's test


def test_the_service_answers_through_the_workers_address_round_robin_over_both_replicas():
    replies = [replica(fetch(address("worker-1"), 8080)) for _ in range(6)]
    print("through worker-1:", replies)
    assert len(set(replies)) == 2, replies
    assert all(replies[i] != replies[i + 1] for i in range(5)), "not round robin: %s" % replies
    tasks = ssh("manager-1", "docker service ps myweb --filter desired-state=running --format '{{.Node}}'").split()
    assert sorted(tasks) == sorted(NODES), "one replica per node expected: %s" % tasks


@pytest.mark.parametrize("node", NODES)
def test_the_routing_mesh_is_an_ipvs_firewall_mark_service_on_every_node(node):
    out = ssh(node, "nsenter --net=/var/run/docker/netns/ingress_sbox ipvsadm -Ln")
    print(node, out)
    assert re.search(r"^FWM\s+\d+ rr", out, re.M)
    assert len(re.findall(r"->\s+\S+\s+Masq", out)) == 2


def test_no_ingress_warning_on_hosts_with_ipvs():
    out = playbook("services.yml")
    assert "publish ports in ingress mode" not in out


# --------------------------------------------------------------------------- 2. the edge VIP


def test_the_edge_vip_answers_round_robin_over_the_nodes():
    # IPVS adds the per-CPU counters into the totals every 2 s (its rate estimator): read them settled.
    time.sleep(3)
    before = ipvs_stats("lb-1")
    replies = [replica(fetch(VIP, 80)) for _ in range(8)]
    time.sleep(3)
    after = ipvs_stats("lb-1")
    per_node = {rs: after.get(rs, 0) - before.get(rs, 0) for rs in after}
    print("through the VIP:", replies, "connections per node:", per_node)
    assert sorted(per_node) == sorted("%s:8080" % address(n) for n in NODES)
    assert sorted(per_node.values()) == [4, 4], per_node
    assert len(set(replies)) == 2


# --------------------------------------------------------------------------- 3. the fabric


def fabric_address(host):
    out = json.loads(ssh(host, "ip -j -4 addr show dev fabric0"))
    return out[0]["addr_info"][0]["local"]


def test_every_host_reaches_every_other_over_the_fabric():
    hosts = sorted(INSTANCES)
    addresses = {h: fabric_address(h) for h in hosts}
    print("fabric:", addresses)
    assert all(a.startswith(FABRIC.rsplit(".", 2)[0]) for a in addresses.values())
    for source in hosts:
        for target in hosts:
            if source != target:
                ssh(source, "ping -c 1 -W 3 %s" % addresses[target])


def fabric_peers(host):
    entries = json.loads(ssh(host, "bridge -j fdb show dev fabric0"))
    return sorted(e["dst"] for e in entries if e.get("mac") == "00:00:00:00:00:00" and e.get("dst"))


def test_fabric_peers_are_the_other_hosts():
    for host in INSTANCES:
        assert fabric_peers(host) == sorted(address(h) for h in INSTANCES if h != host)


# --------------------------------------------------------------------------- 4. built-in DNS and the service VIP


def test_the_service_name_is_a_vip_balanced_over_every_task():
    tasks = nslookup("worker-1", "backend", "tasks.myweb")
    vip = nslookup("worker-1", "backend", "myweb")
    print("tasks.myweb:", tasks, "myweb:", vip)
    assert len(tasks) == 2 and len(vip) == 1 and vip[0] not in tasks
    script = "for i in 1 2 3 4 5 6; do wget -q -O /tmp/r http://myweb:8000/ && cat /tmp/r; done"
    replies = [replica(line) for line in in_container("worker-1", "backend", script).splitlines() if line]
    assert len(replies) == 6 and len(set(replies)) == 2, replies
    for task in tasks:
        assert in_container("worker-1", "backend", "wget -q -O /tmp/r http://%s:8000/ && cat /tmp/r" % task).strip()


# --------------------------------------------------------------------------- 5. an encrypted overlay


def esp_bytes(host):
    out = ssh(host, "ip -s xfrm state")
    return sum(int(n) for n in re.findall(r"current:\s*\n?\s*(\d+)\(bytes\)", out))


def test_an_encrypted_overlay_carries_traffic_between_hosts():
    before = esp_bytes("worker-1")
    tasks = nslookup("worker-1", "secure", "tasks.myweb")
    assert len(tasks) == 2
    script = "; ".join("wget -q -O /tmp/r http://%s:8000/ && cat /tmp/r" % t for t in tasks)
    replies = [replica(line) for line in in_container("worker-1", "secure", script).splitlines() if line]
    on_manager = ssh("manager-1", "docker ps --filter name=myweb --format '{{.ID}}'").split()
    after = esp_bytes("worker-1")
    print("over secure:", replies, "ESP bytes on worker-1: %d -> %d" % (before, after))
    assert len(set(replies)) == 2, replies
    assert any(r.startswith(c[:12]) for r in replies for c in on_manager), "no reply came from manager-1's task"
    assert ssh("worker-1", "ip xfrm state | grep -c 'proto esp'").strip() != "0"
    assert after > before


# --------------------------------------------------------------------------- 7. verify.yml


def test_verify_playbook_passes_and_reports_every_node_and_the_vip():
    out = playbook("verify.yml")
    print(out[-3000:])
    for via in ("via manager-1", "via worker-1", "via lb-1 VIP"):
        assert re.search(r"myweb 8080 %s \(\S+\): 6/6 answered by" % via, out), via


# --------------------------------------------------------------------------- the ipvs module on its own


def test_the_ipvs_module_in_a_namespace_file_check_apply_apply_check(tmp_path):
    """check mode reports the change and makes none; apply changes; again, and check mode again, change nothing."""
    ssh("lb-1", "ip netns add ipvstest && ip -n ipvstest link set lo up")
    try:
        declared = [
            dict(address="10.99.0.1", port=80, scheduler="wrr", real_servers=[dict(address="10.99.0.2", weight=3)])
        ]
        play = tmp_path / "ipvs.yml"
        steps = [("check", True), ("apply", False), ("again", False), ("check again", True)]
        tasks = [
            {
                "name": name,
                "swarmplane.cluster.ipvs": {"netns": "/run/netns/ipvstest", "services": declared},
                "check_mode": check,
                "register": name.replace(" ", "_"),
            }
            for name, check in steps
        ]
        tasks.append(
            {
                "name": "Judge",
                "ansible.builtin.assert": {
                    "that": [
                        "check is changed",
                        "apply is changed",
                        "again is not changed",
                        "check_again is not changed",
                        "apply.changes == ['-A -t 10.99.0.1:80 -s wrr', '-a -t 10.99.0.1:80 -r 10.99.0.2:80 -m -w 3']",
                    ]
                },
            }
        )
        play.write_text(yaml.safe_dump([dict(name="ipvs on lb-1", hosts="lb-1", gather_facts=False, tasks=tasks)]))
        playbook(str(play))
        table = ssh("lb-1", "ip netns exec ipvstest ipvsadm -Sn")
        assert table.splitlines() == ["-A -t 10.99.0.1:80 -s wrr", "-a -t 10.99.0.1:80 -r 10.99.0.2:80 -m -w 3"]
    finally:
        ssh("lb-1", "ip netns del ipvstest", check=False)


# --------------------------------------------------------------------------- 6. a rolling update


def test_a_rolling_update_through_the_workers_address_loses_no_request(tmp_path):
    updated = [dict(SERVICES[0], image="{{ lab_web_image }}:v2")]
    extra = tmp_path / "v2.yml"
    extra.write_text(yaml.safe_dump(dict(swarm_services=updated)))
    poller = Poller(address("worker-1"), 8080)
    poller.start()
    try:
        playbook("services.yml", "-e", "@%s" % extra)
        time.sleep(2)
    finally:
        poller.stop()
    variants = [a.split()[-1] for a in poller.answers]
    assert variants[-1] == "v2", variants[-5:]
    assert poller.failures == [], "%d failed requests during the update" % len(poller.failures)


# --------------------------------------------------------------------------- 2 and 3: a node leaves the inventory


def test_a_node_removed_from_the_inventory_is_drained_from_the_vip_and_leaves_the_fabric(tmp_path):
    reduced = reduced_inventory(tmp_path, "worker-1")
    both = sorted("%s:8080" % address(n) for n in NODES)
    # A dry run first: it announces the drain and the peer removal, and changes nothing.
    dry = playbook("cluster.yml", "--tags", "fabric,edge", "--check", "--diff", inventory=reduced)
    assert "--a -t %s:80 -r %s:8080 -m -w 1" % (VIP, address("worker-1")) in dry  # the diff's removed line
    assert "%s:8080 would be drained from lb-1" % address("worker-1") in " ".join(dry.split())
    assert sorted(ipvs_stats("lb-1")) == both
    assert fabric_peers("lb-1") == both_underlay()
    poller = Poller(VIP, 80)
    poller.start()
    try:
        out = playbook("cluster.yml", "--tags", "fabric,edge", inventory=reduced)
        time.sleep(1)
    finally:
        poller.stop()
    print(out[out.find("Report the drained nodes") :][:600])
    assert sorted(ipvs_stats("lb-1")) == ["%s:8080" % address("manager-1")]
    assert poller.failures == [], "%d failed requests while worker-1 was drained" % len(poller.failures)
    assert fabric_peers("manager-1") == [address("lb-1")]
    assert fabric_peers("lb-1") == [address("manager-1")]
    playbook("cluster.yml", "--tags", "fabric,edge")
    assert sorted(ipvs_stats("lb-1")) == both
    assert fabric_peers("lb-1") == both_underlay()
    assert recap_changed(playbook("cluster.yml", "--tags", "fabric,edge")) == 0


def both_underlay():
    return sorted(address(n) for n in NODES)

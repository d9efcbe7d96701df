"""swarmplane.cluster.vxlan for real, on this machine's kernel: three hosts are network namespaces whose eth0
(MTU 1400) plugs into a bridge in a fourth, the switch; the module runs through ansible-playbook with netns set,
one inventory host per namespace, and the overlay has to carry ICMP echo between the hosts' overlay addresses.

Needs root (namespaces) and a kernel with vxlan, bridge and veth; nothing else (the echo is sent from Python, so
no ping binary is needed). Every namespace is deleted at the end, also when a test fails.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import run_playbook

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

PREFIX = "spvx-%d" % os.getpid()
NAMESPACE_NUMBERS = itertools.count()
HOSTS = ("h1", "h2", "h3")
UNDERLAY = {"h1": "192.168.77.1", "h2": "192.168.77.2", "h3": "192.168.77.3"}
OVERLAY = {"h1": "10.77.0.1", "h2": "10.77.0.2", "h3": "10.77.0.3"}
UNDERLAY_MTU = 1400
# h1 and h2 put the overlay address on a bridge, h3 on the VXLAN interface itself.
BRIDGES = {"h1": "br-ov", "h2": "br-ov"}
OPTIONS = ("name", "state", "vni", "port", "local", "device", "mtu", "learning", "address", "bridge", "peers", "netns")

PLAYBOOK = [
    dict(
        name="The VXLAN interface of each host",
        hosts="all",
        gather_facts=False,
        tasks=[
            {
                "name": "Apply it",
                "swarmplane.cluster.vxlan": {o: "{{ vx.%s | default(omit) }}" % o for o in OPTIONS},
                "register": "vxlan_result",
                "ignore_errors": True,
            },
            {"name": "Show the result to the test", "ansible.builtin.debug": {"var": "vxlan_result"}},
        ],
    )
]

# ICMP echo from Python (raw socket, root): exit 0 when dst answers within the timeout.
ECHO = r"""
import os, socket, struct, sys, time
dst, timeout = sys.argv[1], float(sys.argv[2])
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
ident, payload = os.getpid() & 0xFFFF, b"swarmplane-vxlan"
request = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + payload
request = request[:2] + struct.pack("!H", checksum(request)) + request[4:]
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock.sendto(request, (dst, 0))
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    sock.settimeout(deadline - time.monotonic())
    try:
        data, (src, _port) = sock.recvfrom(2048)
    except socket.timeout:
        break
    start = (data[0] & 0x0F) * 4
    kind, _code, _sum, reply_id, _seq = struct.unpack("!BBHHH", data[start : start + 8])
    if kind == 0 and reply_id == ident and src == dst:
        sys.exit(0)
sys.exit(1)
"""


def sh(*argv, check=True):
    done = subprocess.run(argv, text=True, capture_output=True, env=dict(os.environ, LC_ALL="C"))
    if check and done.returncode != 0:
        raise AssertionError("%s: rc %d: %s" % (" ".join(argv), done.returncode, done.stderr))
    return done


def ip_json(netns, *args):
    return json.loads(sh("ip", "-n", netns, "-j", *args).stdout or "[]")


class Fabric:
    """Three hosts on an underlay switch, each a network namespace, and the module run on all of them."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.switch = "%s-%d" % (PREFIX, next(NAMESPACE_NUMBERS))
        self.netns = {host: "%s-%d" % (PREFIX, next(NAMESPACE_NUMBERS)) for host in HOSTS}
        self.playbook = workdir / "vxlan.yml"
        self.playbook.write_text(yaml.safe_dump(PLAYBOOK, sort_keys=False))

    def namespaces(self):
        return [self.switch, *self.netns.values()]

    def build(self):
        sh("ip", "netns", "add", self.switch)
        sh("ip", "-n", self.switch, "link", "add", "switch", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "switch", "up")
        for host, netns in self.netns.items():
            sh("ip", "netns", "add", netns)
            sh("ip", "link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", host, "netns", self.switch)
            sh("ip", "-n", self.switch, "link", "set", host, "master", "switch", "mtu", str(UNDERLAY_MTU), "up")
            sh("ip", "-n", netns, "link", "set", "eth0", "mtu", str(UNDERLAY_MTU), "up")
            sh("ip", "-n", netns, "link", "set", "lo", "up")
            sh("ip", "-n", netns, "addr", "add", UNDERLAY[host] + "/24", "dev", "eth0")

    def destroy(self):
        for netns in self.namespaces():
            sh("ip", "netns", "del", netns, check=False)

    def task(self, host, **options):
        """The options of a host: the overlay of the tests, with what the test changes."""
        base = dict(
            name="vx0",
            vni=100,
            local=UNDERLAY[host],
            address=OVERLAY[host] + "/24",
            peers=list(UNDERLAY.values()),
            netns=self.netns[host],
        )
        if host in BRIDGES:
            base["bridge"] = BRIDGES[host]
        base.update(options)
        return {k: v for k, v in base.items() if v is not None}

    def run(self, *flags, per_host=None, **options):
        """Run the module on every host (options for all, per_host {host: options}); {host: registered result}."""
        inventory = self.workdir / "hosts.yml"
        hosts = {h: dict(vx=self.task(h, **dict(options, **(per_host or {}).get(h, {})))) for h in HOSTS}
        local = dict(ansible_connection="local", ansible_python_interpreter=sys.executable)
        inventory.write_text(yaml.safe_dump(dict(all=dict(hosts=hosts, vars=local))))
        done = run_playbook(
            inventory, *flags, playbook=str(self.playbook), env=dict(ANSIBLE_CALLBACK_RESULT_FORMAT="json")
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        results = registered_results(done.stdout)
        assert sorted(results) == list(HOSTS), done.stdout[-3000:]
        return results

    def live_vxlan(self, host, name="vx0"):
        """The live VXLAN interface of a host ({} when there is none)."""
        links = [link for link in ip_json(self.netns[host], "-d", "link", "show") if link["ifname"] == name]
        return links[0]["linkinfo"]["info_data"] if links else {}

    def fdb_destinations(self, host):
        fdb = json.loads(sh("bridge", "-n", self.netns[host], "-j", "fdb", "show", "dev", "vx0").stdout or "[]")
        return sorted(entry["dst"] for entry in fdb if entry.get("dst"))

    def snapshot(self, host):
        """What the module could change in a host: interfaces, their settings and addresses, the VXLAN FDB."""
        state = []
        for link in ip_json(self.netns[host], "-d", "addr", "show"):
            info = link.get("linkinfo") or {}
            state.append(
                (
                    link["ifname"],
                    link["mtu"],
                    link.get("master"),
                    "UP" in link["flags"],
                    json.dumps(info.get("info_data")) if info.get("info_kind") == "vxlan" else info.get("info_kind"),
                    sorted("%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info", [])),
                )
            )
        fdb = sh("bridge", "-n", self.netns[host], "-j", "fdb", "show").stdout
        return sorted(state), sorted(e["dst"] for e in json.loads(fdb or "[]") if e.get("dst"))

    def answers(self, source, target, timeout=2.0, tries=2):
        """Whether target's overlay address answers an ICMP echo from source's namespace."""
        for _attempt in range(tries):
            argv = [sys.executable, "-c", ECHO, OVERLAY[target], str(timeout)]
            if sh("ip", "netns", "exec", self.netns[source], *argv, check=False).returncode == 0:
                return True
        return False

    def silent(self, source, target):
        """Whether target's overlay address stays silent to an echo from source for a second."""
        return not self.answers(source, target, timeout=1.0, tries=1)


def registered_results(stdout):
    """{host: vxlan_result} from the debug task's `ok: [host] => {...}` lines (JSON result format)."""
    decoder = json.JSONDecoder()
    results = {}
    for line in re.finditer(r"^ok: \[(\S+)\] => ", stdout, re.M):
        shown, _end = decoder.raw_decode(stdout, line.end())
        if "vxlan_result" in shown:
            results[line.group(1)] = shown["vxlan_result"]
    return results


@pytest.fixture
def fabric(tmp_path):
    fabric = Fabric(tmp_path)
    try:
        fabric.build()
        yield fabric
    finally:
        fabric.destroy()


def changed(results):
    return {host: result["changed"] for host, result in results.items()}


def failures(results):
    return {host: result.get("msg") for host, result in results.items() if result.get("failed")}


ALL_CHANGED = dict(h1=True, h2=True, h3=True)
NONE_CHANGED = dict(h1=False, h2=False, h3=False)


def test_overlay_carries_traffic_check_mode_changes_nothing_and_a_second_run_changes_nothing(fabric):
    before = {h: fabric.snapshot(h) for h in HOSTS}
    check = fabric.run("--check", "--diff")
    assert failures(check) == {}
    assert changed(check) == ALL_CHANGED
    assert {h: fabric.snapshot(h) for h in HOSTS} == before

    first = fabric.run("--diff")
    assert changed(first) == ALL_CHANGED
    assert first["h1"]["diff"] == dict(
        before={},
        after=dict(
            vni=100,
            port=4789,
            local="192.168.77.1",
            device="eth0",
            mtu=UNDERLAY_MTU - 50,
            learning=False,
            address="10.77.0.1/24",
            bridge="br-ov",
            peers=["192.168.77.2", "192.168.77.3"],
            up=True,
        ),
    )
    assert first["h3"]["interface"]["bridge"] is None
    assert fabric.answers("h1", "h2") and fabric.answers("h1", "h3") and fabric.answers("h3", "h2")

    assert changed(fabric.run("--diff")) == NONE_CHANGED
    again = fabric.run("--check", "--diff")
    assert changed(again) == NONE_CHANGED
    assert again["h2"]["diff"]["before"] == again["h2"]["diff"]["after"]


def test_a_peer_added_on_every_host_becomes_reachable_and_a_removed_one_is_gone(fabric):
    two_hosts = [UNDERLAY["h1"], UNDERLAY["h2"]]
    fabric.run(peers=two_hosts)
    assert fabric.fdb_destinations("h1") == ["192.168.77.2"]
    assert fabric.answers("h1", "h2")
    assert fabric.silent("h1", "h3")

    added = fabric.run("--diff", peers=list(UNDERLAY.values()))
    assert added["h1"]["changes"] == dict(peers=dict(before=["192.168.77.2"], after=["192.168.77.2", "192.168.77.3"]))
    assert changed(added) == dict(h1=True, h2=True, h3=False)  # h3 already had both others
    assert fabric.answers("h1", "h3") and fabric.answers("h2", "h3")

    removed = fabric.run("--diff", peers=two_hosts)
    assert changed(removed) == dict(h1=True, h2=True, h3=False)
    assert fabric.fdb_destinations("h1") == ["192.168.77.2"]
    assert fabric.fdb_destinations("h2") == ["192.168.77.1"]
    assert fabric.silent("h1", "h3")
    assert fabric.answers("h1", "h2")


def test_a_vni_change_is_announced_as_a_recreate_in_check_mode_and_applied_as_one(fabric):
    fabric.run()
    check = fabric.run("--check", "--diff", vni=101)
    assert {h: (r["changed"], r["recreated"]) for h, r in check.items()} == {h: (True, True) for h in HOSTS}
    assert check["h1"]["changes"] == dict(vni=dict(before=100, after=101))
    assert any("traffic over it stops briefly" in w for w in check["h1"]["warnings"])
    assert fabric.live_vxlan("h1")["id"] == 100

    applied = fabric.run("--diff", vni=101)
    assert {h: r["recreated"] for h, r in applied.items()} == dict(h1=True, h2=True, h3=True)
    assert [fabric.live_vxlan(h)["id"] for h in HOSTS] == [101, 101, 101]
    assert fabric.fdb_destinations("h1") == ["192.168.77.2", "192.168.77.3"]
    assert fabric.answers("h1", "h2") and fabric.answers("h2", "h3")


def test_an_mtu_above_the_underlay_fails_naming_the_field_and_changes_nothing(fabric):
    fabric.run()
    before = {h: fabric.snapshot(h) for h in HOSTS}
    results = fabric.run(mtu=UNDERLAY_MTU, learning=True)
    for host in HOSTS:
        message = failures(results)[host]
        assert "mtu=1400 is larger than the underlay can carry: eth0 has MTU 1400" in message
        assert "the largest is 1350. Fix: " in message
    assert {h: fabric.snapshot(h) for h in HOSTS} == before


def test_a_missing_netns_fails_before_anything_changes(fabric):
    # The loopback address exists in every namespace: a module that ignored netns would create the interface here.
    name = "spvx%d" % (os.getpid() % 100000)
    missing = {h: dict(netns=fabric.netns[h] + "-gone", name=name, local="127.0.0.1", bridge=None) for h in HOSTS}
    try:
        results = fabric.run(per_host=missing)
        for host in HOSTS:
            assert failures(results)[host].startswith(
                "vxlan %s: netns=%s-gone: the network namespace does not exist" % (name, fabric.netns[host])
            )
        assert not os.path.exists("/sys/class/net/%s" % name)
        assert not [ns for ns in sh("ip", "netns", "list").stdout.split() if ns.endswith("-gone")]
    finally:
        sh("ip", "link", "del", name, check=False)


def test_state_absent_removes_the_interface_and_its_bridge(fabric):
    fabric.run()
    removed = fabric.run("--diff", state="absent")
    assert changed(removed) == ALL_CHANGED
    assert removed["h1"]["diff"]["after"] == {}
    for host in HOSTS:
        names = [link["ifname"] for link in ip_json(fabric.netns[host], "link", "show")]
        assert sorted(names) == ["eth0", "lo"]
    assert changed(fabric.run(state="absent")) == NONE_CHANGED

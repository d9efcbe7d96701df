#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vxlan
short_description: A VXLAN interface on a Linux host, with unicast peers, an optional bridge and address
version_added: "0.2.0"
description:
  - Creates, changes and removes a VXLAN interface, declaratively. The live state is read with iproute2
    (C(ip -j -d addr show), C(bridge -j fdb show)), compared with the task, and only the difference is applied,
    in one C(ip -batch) and one C(bridge -batch) at most. A second run changes nothing.
  - Flooding is unicast head-end replication, as flannel and Docker's overlay driver do it, with one permanent
    all-zeros FDB entry (C(00:00:00:00:00:00 dst PEER)) per peer and no multicast group.
  - The kernel cannot change O(vni), O(port), O(local) or O(device) of an existing VXLAN interface. A change of
    one of them deletes the interface and creates it again, and traffic over it stops for a moment; RV(recreated)
    and a warning say so, also in check mode. O(mtu), O(learning), O(peers), O(address), O(bridge) and the up state
    change in place.
  - Every option is checked (and the underlay looked up) before anything changes; an error names the option,
    its value and the fix.
  - When the kernel turns out to have no VXLAN support as the interface is created, C(modprobe vxlan) is tried
    once, then the task fails saying what to install.
  - IPv4 underlay only (O(local), O(peers)); the overlay MTU leaves the 50 bytes of VXLAN over IPv4.
requirements:
  - iproute2 with JSON output (C(ip -j), C(bridge -j)), as in Debian 10 and later.
options:
  name:
    description: Name of the VXLAN interface (at most 15 characters).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the interface; V(absent) deletes it.
      - With V(absent) and O(bridge) set, the bridge is deleted too when no other interface is a port of it.
    type: str
    choices: [present, absent]
    default: present
  vni:
    description: VXLAN network identifier, 1 to 16777215. Required with O(state=present). Changing it recreates the interface.
    type: int
  port:
    description: UDP destination port of the tunnel, 1 to 65535. Changing it recreates the interface.
    type: int
    default: 4789
  local:
    description:
      - Local underlay IPv4 address, the source of the tunnel; an interface of the host (of O(netns)) must hold it.
      - Required with O(state=present). Changing it recreates the interface.
    type: str
  device:
    description:
      - Underlay interface the tunnel is bound to. Unset, the interface that holds O(local).
      - Changing it recreates the interface.
    type: str
  mtu:
    description:
      - MTU of the VXLAN interface. Unset, the underlay interface's MTU minus 50.
      - A value above the underlay MTU minus 50 is an error, since larger packets would be fragmented or dropped.
    type: int
  learning:
    description:
      - Whether the VXLAN interface learns remote MAC addresses from the traffic it receives. Off, as unicast
        meshes run it, the peers' all-zeros entries carry broadcasts and the bridge learns the rest.
    type: bool
    default: false
  address:
    description:
      - IPv4 address in CIDR form (V(10.77.0.1/24)) of the interface, or of O(bridge) when one is set.
      - That interface then holds exactly this IPv4 address; other IPv4 addresses on it are removed (IPv6
        addresses are left alone). Unset, its addresses are left as they are.
    type: str
  bridge:
    description:
      - Linux bridge the VXLAN interface is a port of; created (and brought up) if missing.
      - Unset, the interface's bridge (if any) is left as it is.
    type: str
  peers:
    description:
      - Underlay IPv4 addresses of the other hosts of the overlay. Each gets a permanent all-zeros FDB entry, and
        entries of addresses not listed are removed.
      - O(local) is skipped, so every host can be given the same list. Unset, the FDB is left as it is; V([])
        removes every peer.
    type: list
    elements: str
  netns:
    description:
      - Network namespace to work in, by name (as C(ip netns list) shows it) or as the path of a namespace file
        (V(/var/run/docker/netns/ingress_sbox)). Unset, the host's own namespace.
      - A namespace that does not exist fails the task before anything changes.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
    details: Reports what would change, including whether the interface would be recreated, and changes nothing.
  diff_mode:
    support: full
    details: Before and after views of the interface (vni, port, local, device, mtu, learning, address, bridge, peers, up).
notes:
  - Runs as root (or with CAP_NET_ADMIN and, for O(netns), CAP_SYS_ADMIN).
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
- name: Overlay between three hosts, the same task on each (every host skips its own address)
  swarmplane.cluster.vxlan:
    name: vx100
    vni: 100
    local: "{{ ansible_default_ipv4.address }}"
    bridge: br-overlay
    address: "10.77.0.{{ groups['swarm'].index(inventory_hostname) + 1 }}/24"
    peers: "{{ groups['swarm'] | map('extract', hostvars, ['ansible_default_ipv4', 'address']) | list }}"

- name: Tunnel bound to a given underlay interface, on a non-default port, inside a network namespace
  swarmplane.cluster.vxlan:
    name: vx200
    vni: 200
    port: 8472
    local: 192.168.10.5
    device: eth1
    mtu: 1400
    address: 10.88.0.5/24
    peers: [192.168.10.6, 192.168.10.7]
    netns: lab-1

- name: Dry run of a VNI change (reports recreated=true and a warning; changes nothing)
  swarmplane.cluster.vxlan:
    name: vx100
    vni: 101
    local: 192.168.10.5
  check_mode: true
  diff: true
  register: vni_change

- name: Remove the interface (and its bridge, when nothing else uses it)
  swarmplane.cluster.vxlan:
    name: vx100
    bridge: br-overlay
    state: absent
"""

RETURN = r"""
interface:
  description:
    - The interface after the run (in check mode, as it would be), in the module's own terms. C(address) is the
      IPv4 address of the interface the task manages (the bridge, when one is named), a list when it holds
      several; C(up) is whether the interface and its bridge are up.
  returned: when the interface exists after the run
  type: dict
  sample:
    vni: 100
    port: 4789
    local: 192.168.77.1
    device: eth0
    mtu: 1450
    learning: false
    address: 10.77.0.1/24
    bridge: br-overlay
    peers: [192.168.77.2, 192.168.77.3]
    up: true
changes:
  description: The properties that differ, each with before and after.
  returned: always
  type: dict
  sample: {"vni": {"before": 100, "after": 101}}
recreated:
  description: Whether the interface was (in check mode, would be) deleted and created again, stopping its traffic briefly.
  returned: always
  type: bool
commands:
  description: The C(ip) and C(bridge) commands run (in check mode, that would run), in batch syntax.
  returned: always
  type: list
  elements: str
  sample: ["ip link set vx100 mtu 1400", "bridge fdb append 00:00:00:00:00:00 dev vx100 dst 192.168.77.3 self permanent"]
"""

import ipaddress
import json
import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.netns import NetnsError, entered, netns_path

VNI_RANGE = (1, 16777215)
PORT_RANGE = (1, 65535)
MIN_MTU = 68
VXLAN_IPV4_OVERHEAD = 50
ALL_ZEROS_MAC = "00:00:00:00:00:00"
RECREATE_PROPERTIES = ("vni", "port", "local", "device")
VIEW_PROPERTIES = RECREATE_PROPERTIES + ("mtu", "learning", "address", "bridge", "peers", "up")
# What the kernel lets through and what stays one word in an `ip -batch` line.
INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,15}$")
BATCH_FAILED_LINE = re.compile(r"Command failed \S*:(\d+)")


class VxlanError(Exception):
    """A task that cannot be applied as written; the message names the option, its value and the fix."""


# ----------------------------------------------------------------- validation of the task


def check_interface_name(field, value):
    if not INTERFACE_NAME.match(value) or value in (".", ".."):
        raise VxlanError(
            "%s=%s is not a usable interface name. Fix: use 1 to 15 letters, digits or _ . + - (no spaces or /)."
            % (field, value)
        )
    return value


def check_range(field, value, bounds, what):
    low, high = bounds
    if not low <= value <= high:
        raise VxlanError(
            "%s=%s is out of range: %s is %d to %d. Fix: pick a value in that range." % (field, value, what, low, high)
        )
    return value


def unicast_ipv4(field, value):
    """The address as a string, or a VxlanError: the underlay is IPv4, and a peer must be one host."""
    try:
        address = ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        raise VxlanError(
            "%s=%s is not an IPv4 address. Fix: give a dotted-quad address such as 192.168.10.5." % (field, value)
        ) from None
    if address.is_multicast or address.is_unspecified or address == ipaddress.IPv4Address("255.255.255.255"):
        raise VxlanError("%s=%s is not a unicast address. Fix: give the underlay address of one host." % (field, value))
    return str(address)


def ipv4_cidr(field, value):
    """The address in CIDR form (10.77.0.1/24), normalized; the prefix length must be written out."""
    text = str(value).strip()
    try:
        if "/" not in text:
            raise ValueError
        interface = ipaddress.IPv4Interface(text)
    except ValueError:
        raise VxlanError(
            "%s=%s is not an IPv4 address in CIDR form. Fix: write the address with its prefix length, such as "
            "10.77.0.1/24." % (field, value)
        ) from None
    return str(interface)


def address_order(text):
    address = ipaddress.ip_address(text)
    return address.version, address


def peer_list(peers, local):
    """The peers' addresses, normalized, without duplicates and without the local address, in address order."""
    found = set()
    for index, peer in enumerate(peers):
        found.add(unicast_ipv4("peers[%d]" % index, peer))
    found.discard(local)
    return sorted(found, key=address_order)


def validate_present(params):
    """The wanted interface from the task's options, before looking at the host; VxlanError if an option is wrong.

    device and mtu stay None when unset: resolve_on_host fills them in from the host.
    """
    local = unicast_ipv4("local", params["local"])
    mtu = params.get("mtu")
    if mtu is not None and mtu < MIN_MTU:
        raise VxlanError(
            "mtu=%s is below the smallest MTU of IPv4 (%d). Fix: leave mtu unset for the underlay MTU minus 50."
            % (mtu, MIN_MTU)
        )
    wanted = dict(
        name=check_interface_name("name", params["name"]),
        vni=check_range("vni", params["vni"], VNI_RANGE, "a VXLAN network identifier"),
        port=check_range("port", params["port"], PORT_RANGE, "a UDP port"),
        local=local,
        device=check_interface_name("device", params["device"]) if params.get("device") else None,
        mtu=mtu,
        learning=bool(params.get("learning")),
        address=ipv4_cidr("address", params["address"]) if params.get("address") else None,
        bridge=check_interface_name("bridge", params["bridge"]) if params.get("bridge") else None,
        peers=peer_list(params["peers"], local) if params.get("peers") is not None else None,
    )
    if wanted["bridge"] and wanted["bridge"] in (wanted["name"], wanted["device"]):
        raise VxlanError(
            "bridge=%s is the VXLAN interface or its underlay. Fix: name a bridge of its own." % wanted["bridge"]
        )
    if wanted["device"] == wanted["name"]:
        raise VxlanError(
            "device=%s is the VXLAN interface itself. Fix: name the underlay interface (or leave device unset)."
            % wanted["device"]
        )
    return wanted


def resolve_on_host(wanted, links, where):
    """wanted with device and mtu filled in from the host's interfaces (links), after the checks that need them."""
    device = underlay_device(wanted, links, where)
    mtu = overlay_mtu(wanted["mtu"], device, links[device]["mtu"])
    check_bridge_kind(wanted["bridge"], links)
    check_vni_free(wanted, links, where)
    return dict(wanted, device=device, mtu=mtu)


def underlay_device(wanted, links, where):
    """The device the task names, or else the interface holding the local address (which must exist)."""
    holder = interface_holding(links, wanted["local"])
    if holder is None:
        raise VxlanError(
            "local=%s: no interface %s holds this address. Fix: give an address of this host (ip -4 addr show), "
            "or add it to the underlay interface first." % (wanted["local"], where)
        )
    device = wanted["device"] or holder
    if device not in links:
        raise VxlanError(
            "device=%s: no such interface %s. Fix: name an existing underlay interface (ip link show), or leave "
            "device unset to use %s, which holds %s." % (device, where, holder, wanted["local"])
        )
    return device


def overlay_mtu(mtu, device, underlay_mtu):
    """The MTU asked for, or the largest the underlay carries (its MTU - 50); asking for more is an error."""
    largest = underlay_mtu - VXLAN_IPV4_OVERHEAD
    if mtu is None:
        return largest
    if mtu > largest:
        raise VxlanError(
            "mtu=%d is larger than the underlay can carry: %s has MTU %d, and VXLAN over IPv4 takes %d bytes of it, "
            "so the largest is %d. Fix: set mtu to %d or less (or leave it unset), or raise the MTU of %s."
            % (mtu, device, underlay_mtu, VXLAN_IPV4_OVERHEAD, largest, largest, device)
        )
    return mtu


def check_bridge_kind(bridge, links):
    if bridge and bridge in links and link_kind(links[bridge]) != "bridge":
        raise VxlanError(
            "bridge=%s is a %s interface, not a bridge. Fix: name a bridge (one that does not exist is created)."
            % (bridge, link_kind(links[bridge]) or "plain")
        )


def check_vni_free(wanted, links, where):
    """The kernel allows one VXLAN interface per VNI and UDP port in a namespace; a recreate would lose ours."""
    for name, link in links.items():
        data = (link.get("linkinfo") or {}).get("info_data") or {}
        if name == wanted["name"] or link_kind(link) != "vxlan":
            continue
        if (data.get("id"), data.get("port")) == (wanted["vni"], wanted["port"]):
            raise VxlanError(
                "vni=%d: %s already uses VNI %d with port %d %s, and the kernel allows one interface per VNI and port. "
                "Fix: pick another vni (or port), or delete %s."
                % (wanted["vni"], name, wanted["vni"], wanted["port"], where, name)
            )


# ----------------------------------------------------------------- the live state, from iproute2 JSON


def links_by_name(ip_json):
    """`ip -j -d addr show` output as {ifname: link}."""
    return {link["ifname"]: link for link in ip_json}


def link_kind(link):
    return ((link or {}).get("linkinfo") or {}).get("info_kind")


def is_up(link):
    return "UP" in ((link or {}).get("flags") or [])


def ipv4_addresses(link):
    """The link's IPv4 addresses in CIDR form, in the kernel's order (the primary first)."""
    return [
        "%s/%s" % (a["local"], a["prefixlen"]) for a in (link or {}).get("addr_info") or [] if a.get("family") == "inet"
    ]


def address_value(addresses):
    """How the view shows addresses: None, the one CIDR, or the list when there are several."""
    if not addresses:
        return None
    return addresses[0] if len(addresses) == 1 else list(addresses)


def address_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def interface_holding(links, address):
    for name, link in links.items():
        if any(a.split("/")[0] == address for a in ipv4_addresses(link)):
            return name
    return None


def fdb_peers(fdb_json):
    """Peers of a VXLAN interface: the destinations of its all-zeros FDB entries (`bridge -j fdb show dev X`).

    Only the VXLAN driver's own entries have a dst; the bridge's entries for the port have none.
    """
    peers = {entry["dst"] for entry in fdb_json if entry.get("mac") == ALL_ZEROS_MAC and entry.get("dst")}
    return sorted(peers, key=address_order)


def vxlan_view(links, fdb_json, name, address_holder):
    """The VXLAN interface in the module's own terms, or None when there is none; VxlanError if name is another kind.

    address_holder is the interface whose IPv4 address the task manages: the bridge, when the task names one.
    """
    link = links.get(name)
    if link is None:
        return None
    if link_kind(link) != "vxlan":
        raise VxlanError(
            "name=%s is a %s interface, not a VXLAN one. Fix: choose another name, or delete that interface first "
            "(ip link del %s)." % (name, link_kind(link) or "plain", name)
        )
    data = link["linkinfo"].get("info_data") or {}
    master = link.get("master")
    return dict(
        vni=data.get("id"),
        port=data.get("port"),
        local=data.get("local"),
        device=data.get("link"),
        mtu=link.get("mtu"),
        learning=bool(data.get("learning")),
        address=address_value(ipv4_addresses(links.get(address_holder))),
        bridge=master,
        peers=fdb_peers(fdb_json),
        up=is_up(link) and (master is None or is_up(links.get(master))),
    )


# ----------------------------------------------------------------- what to change


def target_view(view, wanted):
    """The interface as the task wants it: options the task leaves unset (None) keep their live value."""
    current = view or dict(address=None, bridge=None, peers=[])
    target = {p: wanted[p] for p in RECREATE_PROPERTIES + ("mtu", "learning")}
    for prop in ("address", "bridge", "peers"):
        target[prop] = wanted[prop] if wanted[prop] is not None else current[prop]
    target["up"] = True
    return target


def view_changes(before, after):
    """{property: {before, after}} for every property of the view that differs."""
    before = before or {}
    return {p: dict(before=before.get(p), after=after[p]) for p in VIEW_PROPERTIES if before.get(p) != after[p]}


def recreate_reasons(view, changes):
    """The changed properties the kernel cannot change in place (none for an interface that does not exist)."""
    return [p for p in RECREATE_PROPERTIES if view is not None and p in changes]


def create_command(name, target):
    learning = "learning" if target["learning"] else "nolearning"
    return "link add %s mtu %d type vxlan id %d dstport %d local %s dev %s %s" % (
        name,
        target["mtu"],
        target["vni"],
        target["port"],
        target["local"],
        target["device"],
        learning,
    )


def ip_commands(name, view, target, links, fresh, address_holder):
    """`ip -batch` lines from the live interface (view) to the target; fresh: it is created (again) first."""
    lines = []
    if fresh:
        if view is not None:
            lines.append("link del %s" % name)
        lines.append(create_command(name, target))
    else:
        if view["mtu"] != target["mtu"]:
            lines.append("link set %s mtu %d" % (name, target["mtu"]))
        if view["learning"] != target["learning"]:
            lines.append("link set %s type vxlan %s" % (name, "learning" if target["learning"] else "nolearning"))
    bridge = target["bridge"]
    if bridge and bridge not in links:
        lines.append("link add %s type bridge" % bridge)
    if bridge and (fresh or view["bridge"] != bridge):
        lines.append("link set %s master %s" % (name, bridge))
    if fresh or not is_up(links.get(name)):
        lines.append("link set %s up" % name)
    if bridge and not is_up(links.get(bridge)):
        lines.append("link set %s up" % bridge)
    # A recreated interface has lost its addresses; a bridge keeps its own.
    live = [] if fresh and address_holder == name else ipv4_addresses(links.get(address_holder))
    wanted = address_list(target["address"])
    # Deletes first: deleting a primary address after adding one in the same subnet would take the new one with it.
    lines += ["addr del %s dev %s" % (a, address_holder) for a in live if a not in wanted]
    lines += ["addr add %s dev %s" % (a, address_holder) for a in wanted if a not in live]
    return lines


def fdb_commands(name, live_peers, target_peers):
    """`bridge -batch` lines: new peers appended before old ones go, so flooding never has no destination."""
    lines = [
        "fdb append %s dev %s dst %s self permanent" % (ALL_ZEROS_MAC, name, p)
        for p in target_peers
        if p not in live_peers
    ]
    lines += ["fdb del %s dev %s dst %s self" % (ALL_ZEROS_MAC, name, p) for p in live_peers if p not in target_peers]
    return lines


def plan_present(name, view, wanted, links):
    """Everything state=present does, from the live view and the resolved wanted state, without doing it."""
    holder = wanted["bridge"] or name
    target = target_view(view, wanted)
    changes = view_changes(view, target)
    reasons = recreate_reasons(view, changes)
    fresh = view is None or bool(reasons)
    live_peers = [] if fresh else view["peers"]
    return dict(
        target=target,
        changes=changes,
        recreate=reasons,
        ip=ip_commands(name, view, target, links, fresh, holder),
        bridge=fdb_commands(name, live_peers, target["peers"]),
    )


def plan_absent(name, view, bridge, links):
    """`ip -batch` lines of state=absent: the interface, and the named bridge once it has no other port."""
    lines = ["link del %s" % name] if view is not None else []
    if bridge and link_kind(links.get(bridge)) == "bridge":
        ports = [n for n, link in links.items() if link.get("master") == bridge and n != name]
        if not ports:
            lines.append("link del %s" % bridge)
    return lines


def failed_batch_line(stderr, lines):
    """Index of the batch line that failed (`Command failed -:N` from ip/bridge -batch), or None."""
    found = BATCH_FAILED_LINE.search(stderr or "")
    if not found:
        return None
    index = int(found.group(1)) - 1
    return index if 0 <= index < len(lines) else None


def batch_failure(tool, lines, stderr):
    """The message of a failed `ip -batch` / `bridge -batch`: the command, the kernel's words, what was applied."""
    failed = failed_batch_line(stderr, lines)
    said = [line.strip() for line in (stderr or "").splitlines() if line.strip() and not BATCH_FAILED_LINE.search(line)]
    error = "; ".join(said) or "no error message"
    if failed is None:
        return "%s -batch failed: %s. Fix: correct what the error names and run the task again." % (tool, error)
    applied = "nothing was applied" if failed == 0 else "the %d command(s) before it were applied" % failed
    fix = "Fix: correct what the error names and run the task again; it applies what is missing."
    return "`%s %s` failed: %s (%s). %s" % (tool, lines[failed], error, applied, fix)


def is_missing_vxlan_support(line, stderr):
    return " type vxlan " in line and line.startswith("link add ") and "Unknown device type" in (stderr or "")


def recreate_warning(name, changes, reasons, check_mode):
    what = ", ".join("%s %s -> %s" % (p, changes[p]["before"], changes[p]["after"]) for p in reasons)
    verb = "would be" if check_mode else "is"
    return (
        "vxlan %s: %s cannot change in place: the interface %s deleted and created again, and traffic over it "
        "stops briefly." % (name, what, verb)
    )


# ----------------------------------------------------------------- the module


class VxlanManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.name = module.params["name"]
        self.ip = module.get_bin_path("ip", required=True)
        self.bridge_tool = module.get_bin_path("bridge", required=True)
        self.where = "in netns %s" % self.params["netns"] if self.params["netns"] else "on this host"

    def fail(self, msg, **extra):
        self.module.fail_json(msg="vxlan %s: %s" % (self.name, msg), **extra)

    def run(self, argv, data=None):
        return self.module.run_command(argv, data=data, check_rc=False, environ_update=dict(LC_ALL="C"))

    def read_json(self, argv):
        rc, out, err = self.run(argv)
        if rc != 0:
            self.fail("reading the live state failed: %s" % " ".join(argv), rc=rc, stdout=out, stderr=err, cmd=argv)
        try:
            return json.loads(out or "[]")
        except ValueError:
            self.fail("%s printed no JSON (iproute2 too old for -j?)" % " ".join(argv), rc=rc, stdout=out, stderr=err)

    def read_links(self):
        return links_by_name(self.read_json([self.ip, "-j", "-d", "addr", "show"]))

    def read_fdb(self, links):
        if link_kind(links.get(self.name)) != "vxlan":
            return []
        return self.read_json([self.bridge_tool, "-j", "fdb", "show", "dev", self.name])

    def run_batch(self, tool, lines):
        argv = [tool, "-batch", "-"]
        rc, out, err = self.run(argv, data="\n".join(lines))
        if rc == 0:
            return
        failed = failed_batch_line(err, lines)
        if failed is not None and is_missing_vxlan_support(lines[failed], err):
            self.load_vxlan_module(lines[failed], err)
            # ip -batch stops at the failing line: the lines before it are applied, the rest still to do.
            lines = lines[failed:]
            rc, out, err = self.run(argv, data="\n".join(lines))
            if rc == 0:
                return
            failed = failed_batch_line(err, lines)
        self.fail(
            batch_failure(os.path.basename(tool), lines, err or out),
            rc=rc,
            stdout=out,
            stderr=err,
            cmd=argv,
            commands=lines,
        )

    def load_vxlan_module(self, line, stderr):
        modprobe = self.module.get_bin_path("modprobe")
        if modprobe:
            rc, _out, err = self.run([modprobe, "vxlan"])
            if rc == 0:
                return
            why = "modprobe vxlan failed: %s" % (err.strip() or "rc %d" % rc)
        else:
            why = "modprobe is not installed (package kmod)"
        self.fail(
            "this kernel (%s) has no VXLAN support: `ip %s` says %s, and %s. Fix: load the vxlan module "
            "(modprobe vxlan; on a container host, on the host itself), install the kernel's extra modules "
            "(linux-modules-extra-$(uname -r) on Ubuntu), or boot a kernel built with CONFIG_VXLAN."
            % (os.uname().release, line, stderr.strip().splitlines()[0], why),
            stderr=stderr,
        )

    def apply(self, ip_lines, bridge_lines):
        if self.module.check_mode:
            return
        if ip_lines:
            self.run_batch(self.ip, ip_lines)
        if bridge_lines:
            self.run_batch(self.bridge_tool, bridge_lines)

    def execute(self):
        try:
            path = netns_path(self.params["netns"])
            with entered(path):
                return self.reconcile()
        except (NetnsError, VxlanError) as exc:
            self.fail(str(exc))

    def reconcile(self):
        check_interface_name("name", self.name)
        if self.params["bridge"]:
            check_interface_name("bridge", self.params["bridge"])
        wanted = validate_present(self.params) if self.params["state"] == "present" else None
        links = self.read_links()
        holder = self.params["bridge"] or self.name
        view = vxlan_view(links, self.read_fdb(links), self.name, holder)
        if wanted is None:
            return self.absent(view, links)
        return self.present(view, resolve_on_host(wanted, links, self.where), links)

    def absent(self, view, links):
        lines = plan_absent(self.name, view, self.params["bridge"], links)
        self.apply(lines, [])
        return dict(
            changed=bool(lines),
            recreated=False,
            changes=dict(state=dict(before="present", after="absent")) if view else {},
            commands=["ip " + line for line in lines],
            diff=dict(before=view or {}, after={}),
        )

    def present(self, view, wanted, links):
        plan = plan_present(self.name, view, wanted, links)
        if plan["recreate"]:
            self.module.warn(recreate_warning(self.name, plan["changes"], plan["recreate"], self.module.check_mode))
        self.apply(plan["ip"], plan["bridge"])
        return dict(
            changed=bool(plan["ip"] or plan["bridge"]),
            recreated=bool(plan["recreate"]),
            changes=plan["changes"],
            interface=plan["target"],
            commands=["ip " + line for line in plan["ip"]] + ["bridge " + line for line in plan["bridge"]],
            diff=dict(before=view or {}, after=plan["target"]),
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            vni=dict(type="int"),
            port=dict(type="int", default=4789),
            local=dict(type="str"),
            device=dict(type="str"),
            mtu=dict(type="int"),
            learning=dict(type="bool", default=False),
            address=dict(type="str"),
            bridge=dict(type="str"),
            peers=dict(type="list", elements="str"),
            netns=dict(type="str"),
        ),
        required_if=[("state", "present", ("vni", "local"))],
        supports_check_mode=True,
    )
    module.exit_json(**VxlanManager(module).execute())


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm_info
short_description: Where the local node stands in a Docker Swarm, and on a manager the node list
version_added: "0.1.0"
description:
  - Reads the local engine (whether the node is in a swarm, its state and role, the cluster ID, the managers
    it knows) and on a manager also the nodes as C(docker node ls) shows them, and the leader.
  - With O(join_tokens=true) or O(unlock_key=true) on a manager, returns the join tokens or the unlock key. They
    are secrets, so register such a result with C(no_log=true).
  - With O(fail_on_unavailable=false) a host without an engine or without the Docker SDK is reported
    (RV(docker_available=false)) instead of failing, so a play can probe hosts before preparing them. An engine
    that is there but fails (does not answer within O(timeout), refuses the caller) always fails the module,
    with the engine's own words.
  - A manager that cannot list the nodes because the engine answers with an error (a swarm without a leader)
    reports it in RV(nodes_error); an engine that does not answer fails the module.
  - With O(ready_nodes), waits up to O(ready_timeout) seconds for those nodes to be Ready; every engine call
    is bounded by the time left, so the wait never outlasts O(ready_timeout).
options:
  nodes:
    description: On a manager, list the swarm's nodes.
    type: bool
    default: true
  join_tokens:
    description: On a manager, return the worker and manager join tokens.
    type: bool
    default: false
  unlock_key:
    description:
      - On a manager, return the swarm's unlock key in RV(unlock_key) (empty when autolock is off).
      - The key unlocks every manager after a restart; register the result with C(no_log=true).
    type: bool
    default: false
  ready_nodes:
    description:
      - Node IDs that must be Ready; on a manager, wait up to O(ready_timeout) seconds until they are, and fail
        naming those that are not.
    type: list
    elements: str
    default: []
  ready_timeout:
    description: Seconds to wait for O(ready_nodes).
    type: int
    default: 60
  fail_on_unavailable:
    description:
      - Fail when no engine listens or the Docker SDK is missing; when false, report it instead
        (RV(docker_available=false)).
    type: bool
    default: true
  host_facts:
    description:
      - Also return RV(host), the few host facts swarm decisions need (addresses, interfaces, init system,
        OS family, AppArmor), read in the same round trip instead of a separate fact-gathering task.
      - Works without an engine and without the Docker SDK.
    type: bool
    default: false
  kernel:
    description:
      - The kernel modules, sysctls and boot files M(swarmplane.cluster.host_kernel) would be given; return in
        RV(kernel_drift) what differs from them, changing nothing, so that a host without drift needs no
        host_kernel run. Modules missing from the kernel and read-only sysctls are warned about, not drift.
      - Works without an engine and without the Docker SDK.
    type: dict
    suboptions:
      modules:
        description: Kernel modules, as M(swarmplane.cluster.host_kernel) takes them.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: Module name as C(modprobe) takes it.
            type: str
            required: true
          purpose:
            description: What stops working without it; said in the warning.
            type: str
            default: ""
          probe_path:
            description: A path whose existence proves the feature is built in.
            type: str
      sysctls:
        description: Kernel parameters and their wanted values.
        type: dict
        default: {}
      persist:
        description: Whether the boot files are wanted too.
        type: bool
        default: true
      modules_load_file:
        description: File listing modules to load at boot.
        type: path
        default: /etc/modules-load.d/swarmplane.conf
      sysctl_file:
        description: File with the sysctls to apply at boot.
        type: path
        default: /etc/sysctl.d/90-swarmplane.conf
  files:
    description:
      - Paths of files to report in RV(files) (checksum, owner, group, mode), as M(ansible.builtin.stat) would, in the
        same round trip; the docker_engine role compares daemon.json with them.
      - Works without an engine and without the Docker SDK.
    type: list
    elements: path
    default: []
  packages:
    description:
      - Names of Debian packages; RV(packages_missing) lists those dpkg does not list as installed, read from
        C(/var/lib/dpkg/status) in the same round trip. The docker_engine role installs, and refreshes the apt lists,
        only when some are missing.
      - Works without an engine and without the Docker SDK.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - swarmplane.cluster.engine
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
- name: Read the swarm state of every host
  swarmplane.cluster.swarm_info:
    fail_on_unavailable: false
  register: swarm_probe

- name: Read the swarm state, and whether the kernel settings drifted from what host_kernel sets
  swarmplane.cluster.swarm_info:
    fail_on_unavailable: false
    kernel:
      modules: [{name: br_netfilter}, {name: ip_vs}]
      sysctls: {net.ipv4.ip_forward: 1}
  register: swarm_probe

- name: Read the join tokens from a live manager
  swarmplane.cluster.swarm_info:
    join_tokens: true
  register: swarm_tokens
  no_log: true

- name: Wait up to 60 s for two nodes to be Ready
  swarmplane.cluster.swarm_info:
    ready_nodes: [m0qgdcu8ytvzmbyjodj6m207q, sbj57woue8jjjvs3zkjxu5a07]
    ready_timeout: 60
"""

RETURN = r"""
docker_available:
  description: Whether an engine answered through the Docker SDK.
  returned: always
  type: bool
docker_error:
  description: Why the engine could not be used.
  returned: when docker_available is false
  type: str
engine_version:
  description: The engine's version.
  returned: when docker_available
  type: str
hostname:
  description: The engine's host name (the HOSTNAME column of C(docker node ls)).
  returned: when docker_available
  type: str
swarm_state:
  description: inactive, pending, active, error or locked.
  returned: always
  type: str
in_swarm:
  description: Whether the node is an active member of a swarm.
  returned: always
  type: bool
is_manager:
  description: Whether the node is a manager that can serve the control plane.
  returned: always
  type: bool
node_id:
  description: The node's ID in the swarm.
  returned: always
  type: str
node_addr:
  description: The address the node advertises.
  returned: always
  type: str
cluster_id:
  description: ID of the swarm (managers only).
  returned: always
  type: str
autolock:
  description: Whether the swarm locks its managers after a restart until they get the unlock key.
  returned: on a manager
  type: bool
remote_managers:
  description: Managers this node knows, with node_id and addr.
  returned: always
  type: list
  elements: dict
nodes_error:
  description:
    - Why a manager could not list the nodes, in the engine's words (for example a swarm that lost its quorum
      has no leader).
  returned: when the engine answered the node listing with an error
  type: str
leader:
  description: Hostname of the raft leader.
  returned: on a manager with nodes=true
  type: str
nodes:
  description: The nodes as C(docker node ls) shows them.
  returned: on a manager with nodes=true
  type: list
  elements: dict
  contains:
    id:
      description: Node ID.
      type: str
    hostname:
      description: Host name.
      type: str
    status:
      description: Ready, Down, Unknown or Disconnected.
      type: str
    availability:
      description: Active, Pause or Drain.
      type: str
    manager_status:
      description: Leader, Reachable, Unreachable, or empty for workers.
      type: str
    engine_version:
      description: Engine version of the node.
      type: str
    role:
      description: manager or worker.
      type: str
    address:
      description: The node's address.
      type: str
    labels:
      description: Node labels.
      type: dict
join_tokens:
  description: Worker and manager join tokens.
  returned: on a manager with join_tokens=true
  type: dict
unlock_key:
  description: The swarm's unlock key; empty when autolock is off. A secret.
  returned: on a manager with unlock_key=true
  type: str
files:
  description: For each path of O(files), whether it exists and, when it does, its SHA-1 checksum, owner, group and mode.
  returned: when files are given
  type: dict
  sample: {"/etc/docker/daemon.json": {"exists": true, "checksum": "6b1e...", "owner": "root", "group": "root",
           "mode": "0644"}}
packages_missing:
  description:
    - The names of O(packages) that dpkg does not list as installed; all of them on a host without
      C(/var/lib/dpkg/status).
  returned: when packages are given
  type: list
  elements: str
  sample: ["docker.io"]
kernel_drift:
  description: What differs from O(kernel), one line each (empty when nothing does).
  returned: when kernel is given
  type: list
  elements: str
  sample: ["module ip_vs: not loaded", "net.ipv4.ip_forward = 0", "/etc/sysctl.d/90-swarmplane.conf:"]
host:
  description: Host facts, named as Ansible's own facts where they have an equivalent.
  returned: with host_facts=true
  type: dict
  contains:
    all_ipv4_addresses:
      description: IPv4 addresses of all interfaces but loopback.
      type: list
    all_ipv6_addresses:
      description: Global IPv6 addresses.
      type: list
    interfaces:
      description: Interface names.
      type: list
    interface_ipv4:
      description: First IPv4 address of each interface that has one.
      type: dict
    default_ipv4:
      description: The interface of the default IPv4 route and its address.
      type: dict
    service_mgr:
      description: systemd, openrc, sysvinit, or the name of PID 1 when it is no init system (a container).
      type: str
    os_family:
      description: Debian for Debian and its derivatives, else the os-release ID.
      type: str
    distribution:
      description: The os-release NAME.
      type: str
    apparmor:
      description: Whether the kernel enables AppArmor.
      type: bool
    ipvs:
      description:
        - Whether the kernel has IPVS loaded, built in or loadable (the routing mesh and service VIPs need it). A
          kernel that only lacks the loaded module counts, since the docker_engine role loads it.
      type: bool
    esp:
      description: Whether the kernel has (or can load) ESP, which encrypted overlay networks need.
      type: bool
    kernel:
      description: Kernel release.
      type: str
"""

import grp
import hashlib
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.kernel import (
    KERNEL_OPTIONS,
    KernelManager,
    kernel_has_module,
)
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    ENGINE_ARGUMENT_SPEC,
    Deadline,
    EngineClient,
    EngineError,
    EngineUnavailable,
    NotYet,
    local_node_state,
    node_row,
    wait_for,
)


def parse_ip_addr(text):
    """`ip -o addr show` -> (interfaces, {iface: [ipv4...]}, [ipv6...]); loopback and link-local left out."""
    interfaces, ipv4, ipv6 = [], {}, []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        name = fields[1].split("@", 1)[0]
        if name not in interfaces:
            interfaces.append(name)
        family, address = fields[2], fields[3].split("/", 1)[0]
        if name == "lo":
            continue
        if family == "inet":
            ipv4.setdefault(name, []).append(address)
        elif family == "inet6" and "scope global" in line:
            ipv6.append(address)
    return interfaces, ipv4, ipv6


def parse_default_route(text):
    """`ip -o -4 route show default` -> the interface of the first default route, or None."""
    for line in text.splitlines():
        fields = line.split()
        if "dev" in fields[:-1]:
            return fields[fields.index("dev") + 1]
    return None


def parse_os_release(text):
    """/etc/os-release -> os_family (Debian for Debian and derivatives, else the ID) and distribution (NAME)."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    ids = [values.get("ID", "")] + values.get("ID_LIKE", "").split()
    return dict(
        os_family="Debian" if "debian" in ids or "ubuntu" in ids else values.get("ID", "unknown"),
        distribution=values.get("NAME", values.get("ID", "unknown")),
    )


def _read(path, default=""):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return default


def service_manager():
    if os.path.isdir("/run/systemd/system"):
        return "systemd"
    if os.path.isdir("/run/openrc"):
        return "openrc"
    comm = _read("/proc/1/comm").strip()
    return "sysvinit" if comm == "init" else (comm or "unknown")


def host_facts(module):
    env = dict(LC_ALL="C")
    _rc, addr_out, _err = module.run_command(["ip", "-o", "addr", "show"], environ_update=env)
    _rc, route_out, _err = module.run_command(["ip", "-o", "-4", "route", "show", "default"], environ_update=env)
    interfaces, ipv4, ipv6 = parse_ip_addr(addr_out)
    default_interface = parse_default_route(route_out)
    default_ipv4 = {}
    if default_interface and ipv4.get(default_interface):
        default_ipv4 = dict(interface=default_interface, address=ipv4[default_interface][0])
    facts = dict(
        all_ipv4_addresses=[a for addrs in ipv4.values() for a in addrs],
        all_ipv6_addresses=ipv6,
        interfaces=interfaces,
        interface_ipv4={name: addrs[0] for name, addrs in ipv4.items()},
        default_ipv4=default_ipv4,
        service_mgr=service_manager(),
        apparmor=_read("/sys/module/apparmor/parameters/enabled").strip() == "Y",
        ipvs=kernel_has_module("ip_vs"),
        esp=kernel_has_module("esp4"),
        kernel=os.uname().release,
    )
    facts.update(parse_os_release(_read("/etc/os-release")))
    return facts


def file_state(path):
    """What ansible.builtin.stat would say of a file that matters here: checksum (SHA-1), owner, group, mode."""
    try:
        info = os.stat(path)
        with open(path, "rb") as handle:
            checksum = hashlib.sha1(handle.read()).hexdigest()
    except FileNotFoundError:
        return dict(exists=False)
    except OSError as exc:
        return dict(exists=True, error=exc.strerror)
    return dict(
        exists=True,
        checksum=checksum,
        owner=_name(pwd.getpwuid, info.st_uid),
        group=_name(grp.getgrgid, info.st_gid),
        mode="%04o" % stat.S_IMODE(info.st_mode),
    )


def installed_packages(status_text):
    """Names of the packages a dpkg status file lists as installed ("Status: install ok installed")."""
    installed = set()
    for stanza in status_text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if fields.get("Status", "").split()[-1:] == ["installed"] and "Package" in fields:
            installed.add(fields["Package"])
    return installed


def missing_packages(names, status_text):
    """The names not installed, in the order given; all of them when there is no status to read."""
    installed = installed_packages(status_text)
    return [name for name in names if name not in installed]


def _name(lookup, number):
    try:
        return lookup(number)[0]
    except KeyError:
        return str(number)


def unavailable_result(reason):
    return dict(
        changed=False,
        docker_available=False,
        docker_error=reason,
        swarm_state="inactive",
        in_swarm=False,
        is_manager=False,
        node_id="",
        node_addr="",
        cluster_id="",
        remote_managers=[],
    )


def node_rows(nodes):
    """The nodes as `docker node ls` lists them: managers first, then by hostname."""
    return sorted((node_row(n) for n in nodes), key=lambda r: (r["role"] != "manager", r["hostname"] or ""))


def not_ready(rows, node_ids):
    """'hostname (status)' of each wanted node that is not Ready; 'ID (not in the swarm)' for one not listed."""
    by_id = {r["id"]: r for r in rows}
    waiting = []
    for node_id in node_ids:
        row = by_id.get(node_id)
        if row is None:
            waiting.append("%s (not in the swarm)" % node_id)
        elif row["status"] != "Ready":
            waiting.append("%s (%s)" % (row["hostname"] or node_id, row["status"]))
    return waiting


def list_nodes(client):
    """nodes and leader; an engine that answers with an error (a swarm without a leader) gives nodes_error."""
    try:
        rows = node_rows(client.attempt("listing the swarm nodes (docker node ls)", client.api.nodes))
    except EngineError as exc:
        if not exc.answered:
            client.fail(str(exc))
        return dict(nodes=[], leader="", nodes_error=str(exc))
    return dict(nodes=rows, leader=next((r["hostname"] for r in rows if r["manager_status"] == "Leader"), ""))


def wait_until_ready(client, node_ids, seconds):
    """nodes and leader once every node of node_ids is Ready; fails naming the others after `seconds`."""
    deadline = Deadline(seconds, client.clock)

    def attempt():
        client.bounded_by(deadline)
        try:
            rows = node_rows(client.attempt("listing the swarm nodes (docker node ls)", client.api.nodes))
        except EngineError as exc:
            raise NotYet(str(exc)) from None
        waiting = not_ready(rows, node_ids)
        if waiting:
            raise NotYet("not Ready: %s" % ", ".join(waiting))
        return rows

    try:
        rows = wait_for(attempt, deadline, interval=1.0, sleep=client.sleep)
    except NotYet as exc:
        client.fail("nodes did not become Ready within %s s: %s" % (seconds, exc))
    client.unbounded()
    return dict(nodes=rows, leader=next((r["hostname"] for r in rows if r["manager_status"] == "Leader"), ""))


def read_swarm(module, client):
    local = local_node_state(client.info())
    result = dict(
        changed=False,
        docker_available=True,
        engine_version=local["engine_version"],
        hostname=local["hostname"],
        swarm_state=local["state"],
        in_swarm=local["state"] == "active",
        is_manager=local["is_manager"],
        node_id=local["node_id"] or "",
        node_addr=local["node_addr"] or "",
        cluster_id=local["cluster_id"] or "",
        remote_managers=local["remote_managers"],
    )
    if local["error"]:
        result["swarm_error"] = local["error"]
    if not local["is_manager"]:
        return result
    result["autolock"] = local["autolock"]
    if module.params["ready_nodes"]:
        result.update(wait_until_ready(client, module.params["ready_nodes"], module.params["ready_timeout"]))
    elif module.params["nodes"]:
        result.update(list_nodes(client))
    if module.params["join_tokens"]:
        result["join_tokens"] = client.join_tokens()
    if module.params["unlock_key"]:
        result["unlock_key"] = client.unlock_key()
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="bool", default=True),
            join_tokens=dict(type="bool", default=False, no_log=False),
            unlock_key=dict(type="bool", default=False, no_log=False),
            ready_nodes=dict(type="list", elements="str", default=[]),
            ready_timeout=dict(type="int", default=60),
            fail_on_unavailable=dict(type="bool", default=True),
            host_facts=dict(type="bool", default=False),
            kernel=dict(type="dict", options=KERNEL_OPTIONS),
            files=dict(type="list", elements="path", default=[]),
            packages=dict(type="list", elements="str", default=[]),
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    extra = dict(host=host_facts(module)) if module.params["host_facts"] else {}
    if module.params["files"]:
        extra["files"] = {path: file_state(path) for path in module.params["files"]}
    if module.params["packages"]:
        extra["packages_missing"] = missing_packages(module.params["packages"], _read("/var/lib/dpkg/status"))
    if module.params["kernel"] is not None:
        probe = KernelManager(module, check_only=True)
        probe.run(module.params["kernel"])
        extra["kernel_drift"] = probe.drift()
    try:
        client = EngineClient(module, soft=not module.params["fail_on_unavailable"])
    except EngineUnavailable as exc:
        module.exit_json(**unavailable_result(str(exc)), **extra)
    module.exit_json(**read_swarm(module, client), **extra)


if __name__ == "__main__":
    main()

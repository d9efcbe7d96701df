#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ipvs
short_description: Declarative IPVS virtual services and real servers, reconciled against the kernel's table
version_added: "0.2.0"
description:
  - Makes the kernel's IPVS table hold the declared virtual services (C(address:port) over TCP, UDP or SCTP,
    or a firewall mark) with their scheduler, persistence and real servers (port, weight, forwarding method).
  - Reads the live table, computes the difference and applies only that, in a safe order - new services,
    then new and changed real servers, then removals - in one batch over netlink. It never flushes.
  - The real servers of a declared service are exactly the declared ones. A real server that has to go is first
    set to weight 0 (no new connections) and deleted once its active connections reach zero or
    O(drain_timeout) passes; RV(drained) says which, how long they took and whether they timed out. A service
    with O(services[].state=absent) is drained the same way, then deleted.
  - Services that are not declared are left alone, unless O(purge=true), which drains and removes them.
  - If the kernel has no IPVS loaded, loads C(ip_vs); if that fails, fails saying so before changing anything.
notes:
  - Talks to the kernel over generic netlink with Python's standard library, not through ipvsadm. One socket reads
    the whole table, including each real server's active connections (which C(ipvsadm -S) does not print and
    draining needs), and applies every change with its own acknowledgement, so an error names the exact rule.
    No process is spawned per rule. Targets need nothing from PyPI (Debian 12's python3-pyroute2 0.7.2 has no
    IPVS support). C(diff) and RV(changes) use ipvsadm's restore syntax, so the output reads like C(ipvsadm -S -n).
  - Only mainline schedulers are accepted; one whose kernel module (C(ip_vs_<name>)) is missing fails before
    anything is changed.
  - With O(bind_interface), every declared service address is also held, as a host address (/32 or /128), by that
    interface (a dummy interface, created if missing), as kube-proxy's IPVS mode does, so the host accepts
    traffic for it; addresses of removed services are taken off.
options:
  services:
    description: The virtual services.
    type: list
    elements: dict
    default: []
    suboptions:
      protocol:
        description: Transport protocol of an C(address:port) service. Ignored for O(services[].fwmark) services.
        type: str
        choices: [tcp, udp, sctp]
        default: tcp
      address:
        description: Virtual IP address (IPv4 or IPv6). Required unless O(services[].fwmark) is set.
        type: str
      port:
        description: Virtual port, 1-65535. Required unless O(services[].fwmark) is set.
        type: int
      fwmark:
        description:
          - Firewall mark of a port-less service (C(ipvsadm -f)), as Docker's routing mesh uses in C(ingress_sbox).
            Excludes O(services[].address) and O(services[].port).
        type: int
      family:
        description: Address family of an O(services[].fwmark) service; other services take it from their address.
        type: str
        choices: [ipv4, ipv6]
        default: ipv4
      scheduler:
        description: Scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos).
        type: str
        default: wlc
      scheduler_flags:
        description: Flags of the sh and mh schedulers (C(ipvsadm -b)).
        type: list
        elements: str
        choices: [sh-fallback, sh-port, mh-fallback, mh-port]
        default: []
      persistence_timeout:
        description: Seconds a client sticks to the same real server (C(ipvsadm -p)); 0 is no persistence.
        type: int
        default: 0
      persistence_netmask:
        description:
          - Clients within this netmask stick together (C(ipvsadm -M)); IPv4 as a mask or prefix length, IPv6 as a
            prefix length. Default one address.
        type: str
      state:
        description: V(absent) drains the service's real servers, then deletes it.
        type: str
        choices: [present, absent]
        default: present
      real_servers:
        description: The real servers; exactly these, the others are drained and removed.
        type: list
        elements: dict
        default: []
        suboptions:
          address:
            description: Real server address, of the service's family.
            type: str
            required: true
          port:
            description:
              - Port on the real server. Default the service's port. A O(services[].fwmark) service has no port to
                inherit, so a NAT real server there needs one (0 keeps the port each client connected to).
                Direct routing and tunnelling cannot change the port.
            type: int
          weight:
            description: Weight, 0-65535; 0 takes no new connections.
            type: int
            default: 1
          forwarding:
            description: V(nat) (masquerading), V(dr) (direct routing, C(ipvsadm -g)) or V(tunnel) (IP-in-IP).
            type: str
            choices: [nat, dr, tunnel]
            default: nat
          u_threshold:
            description: Upper connection threshold (0 is none).
            type: int
            default: 0
          l_threshold:
            description: Lower connection threshold (0 is none).
            type: int
            default: 0
  purge:
    description: Drain and remove services that are not declared.
    type: bool
    default: false
  drain_timeout:
    description: Seconds to wait for a removed real server's active connections to end; 0 deletes at once.
    type: int
    default: 30
  netns:
    description:
      - Manage the table of this network namespace instead of the host's; a name (C(ip netns)) or a namespace file,
        such as C(/var/run/docker/netns/ingress_sbox). A namespace that does not exist fails before any change.
    type: str
  bind_interface:
    description: Interface (a dummy interface, created if missing) that holds every declared service address.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
    details: Reports the changes and drains without waiting or changing anything.
  diff_mode:
    support: full
    details: Before and after tables in C(ipvsadm -S -n) syntax.
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
- name: A round-robin front door on 192.0.2.10:80 over three nodes (NAT)
  swarmplane.cluster.ipvs:
    bind_interface: swarmplane-vip
    services:
      - address: 192.0.2.10
        port: 80
        scheduler: rr
        real_servers:
          - {address: 10.0.0.11, port: 8080}
          - {address: 10.0.0.12, port: 8080}
          - {address: 10.0.0.13, port: 8080}

- name: Own the whole table (everything else is drained and removed)
  swarmplane.cluster.ipvs:
    purge: true
    drain_timeout: 120
    services:
      - protocol: udp
        address: 192.0.2.10
        port: 53
        scheduler: sh
        scheduler_flags: [sh-port]
        real_servers:
          - {address: 10.0.0.11, forwarding: dr}

- name: A firewall-mark service inside a namespace
  swarmplane.cluster.ipvs:
    netns: lb
    services:
      - fwmark: 10
        scheduler: wrr
        persistence_timeout: 300
        real_servers:
          - {address: 10.0.0.11, port: 0, weight: 2}
          - {address: 10.0.0.12, port: 0}
"""

RETURN = r"""
changes:
  description: The changes made (or, in check mode, to make), in ipvsadm's syntax (-A/-E/-D services, -a/-e/-d real servers).
  returned: always
  type: list
  elements: str
  sample: ["-A -t 192.0.2.10:80 -s rr", "-a -t 192.0.2.10:80 -r 10.0.0.11:8080 -m -w 1"]
summary:
  description: How many services and real servers were added, updated, drained and removed.
  returned: always
  type: dict
  sample: {"services_added": 1, "services_updated": 0, "services_removed": 0, "real_servers_added": 3,
           "real_servers_updated": 0, "real_servers_removed": 0}
drained:
  description:
    - Real servers taken out, each with the service, the seconds waited, the active connections left when it was
      deleted and whether O(drain_timeout) ran out.
  returned: always
  type: list
  elements: dict
  sample: [{"service": "tcp 192.0.2.10:80", "real_server": "10.0.0.13:8080", "waited": 1.5,
            "active_connections": 0, "timed_out": false}]
addresses:
  description: Addresses added to and removed from O(bind_interface), and whether the interface was created.
  returned: when bind_interface is set
  type: dict
  sample: {"added": ["192.0.2.10/32"], "removed": [], "created": true}
"""

import ipaddress
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.ipvs import (
    CMD_DEL_DEST,
    CMD_DEL_SERVICE,
    CMD_NEW_DEST,
    CMD_NEW_SERVICE,
    CMD_SET_DEST,
    CMD_SET_SERVICE,
    FAMILIES,
    SCHEDULERS,
    IpvsError,
    IpvsKernel,
    IpvsUnavailable,
    default_netmask,
    real_server_key,
    render_real_server,
    render_rules,
    render_service,
    service_key,
    service_selector,
)
from ansible_collections.swarmplane.cluster.plugins.module_utils.kernel import kernel_has_module
from ansible_collections.swarmplane.cluster.plugins.module_utils.netns import NetnsError, entered, netns_path

SERVICE_SETTINGS = ("scheduler", "scheduler_flags", "persistence_timeout", "persistence_netmask")
REAL_SERVER_SETTINGS = ("forwarding", "weight", "u_threshold", "l_threshold")
DRAIN_POLL = 0.5

# --------------------------------------------------------------------------- validation


def _netmask(family, value):
    """A persistence netmask in the kernel's form (IPv4 dotted mask, IPv6 prefix length), or raise ValueError."""
    if value in (None, ""):
        return default_netmask(FAMILIES[family])
    text = str(value).lstrip("/")
    if family == "ipv6":
        prefix = int(text)
        if not 1 <= prefix <= 128:
            raise ValueError(text)
        return str(prefix)
    network = ipaddress.IPv4Network("0.0.0.0/%s" % text)
    return str(network.netmask)


def _address(value, family=None):
    address = ipaddress.ip_address(str(value))
    if family and address.version != (6 if family == "ipv6" else 4):
        raise ValueError("not an %s address" % family)
    return str(address)


def normalize_services(declared):
    """(services, errors): the declaration in the table model's shape, and every problem found in it.

    Each error names the service (by index and key), the field and the fix; nothing is applied when there is one.
    """
    services, errors, seen = [], [], {}
    for index, item in enumerate(declared or []):
        service, problems = _normalize_service(item)
        where = "services[%d]" % index
        if service:
            key = service_key(service)
            where = "services[%d] (%s)" % (index, key)
            if key in seen:
                problems.append(
                    "declared twice (also services[%d]): a virtual service is one address, port and protocol, or "
                    "one firewall mark. Fix: merge the two entries." % seen[key]
                )
            seen.setdefault(key, index)
            services.append(service)
        errors += ["%s: %s" % (where, p) for p in problems]
    return services, errors


def _normalize_service(item):
    problems = []
    fwmark = item.get("fwmark")
    service = dict(
        protocol=None,
        address=None,
        port=None,
        fwmark=None,
        scheduler=item.get("scheduler") or "wlc",
        scheduler_flags=sorted(item.get("scheduler_flags") or []),
        persistence_timeout=item.get("persistence_timeout") or 0,
        state=item.get("state") or "present",
        flags=0,
    )
    if fwmark is not None:
        if item.get("address") or item.get("port"):
            problems.append(
                "fwmark=%s with address or port: a firewall-mark service has neither. Fix: drop address and port, "
                "or drop fwmark." % fwmark
            )
        if not 1 <= fwmark <= 0xFFFFFFFF:
            return None, problems + ["fwmark=%s is out of range. Fix: use 1-4294967295." % fwmark]
        service.update(fwmark=fwmark, family=item.get("family") or "ipv4")
    else:
        if not item.get("address"):
            return None, ["no address and no fwmark. Fix: set address and port, or fwmark."]
        try:
            service["address"] = _address(item["address"])
        except ValueError:
            return None, ["address=%s is not an IP address. Fix: use an IPv4 or IPv6 address." % item["address"]]
        port = item.get("port")
        if port is None or not 1 <= port <= 65535:
            return None, ["port=%s is not a port. Fix: use 1-65535." % port]
        service.update(
            protocol=item.get("protocol") or "tcp",
            port=port,
            family="ipv6" if ":" in service["address"] else "ipv4",
        )
    if service["scheduler"] not in SCHEDULERS:
        problems.append(
            "scheduler=%s is not an IPVS scheduler. Fix: use one of %s." % (service["scheduler"], ", ".join(SCHEDULERS))
        )
    for flag in service["scheduler_flags"]:
        if not flag.startswith(service["scheduler"] + "-"):
            problems.append(
                "scheduler_flags=%s does not belong to scheduler %s. Fix: drop it, or use scheduler %s."
                % (flag, service["scheduler"], flag.split("-")[0])
            )
    if service["persistence_timeout"] < 0:
        problems.append(
            "persistence_timeout=%s is negative. Fix: use 0 (none) or seconds." % item.get("persistence_timeout")
        )
    try:
        service["persistence_netmask"] = _netmask(service["family"], item.get("persistence_netmask"))
    except ValueError:
        problems.append(
            "persistence_netmask=%s is not a netmask of %s. Fix: use a mask or prefix length."
            % (item.get("persistence_netmask"), service["family"])
        )
    real_servers, seen = [], set()
    for index, rs in enumerate(item.get("real_servers") or []):
        real_server, rs_problems = _normalize_real_server(rs, service)
        label = "real_servers[%d]" % index
        if real_server:
            label = "real_servers[%d] (%s)" % (index, real_server_key(real_server))
            if real_server_key(real_server) in seen:
                rs_problems.append("declared twice. Fix: keep one entry per address and port.")
            seen.add(real_server_key(real_server))
            real_servers.append(real_server)
        problems += ["%s: %s" % (label, p) for p in rs_problems]
    service["real_servers"] = real_servers
    return service, problems


def _normalize_real_server(rs, service):
    try:
        address = _address(rs.get("address"), service["family"])
    except ValueError:
        return None, [
            "address=%s is not an %s address (the service's family). Fix: use one."
            % (rs.get("address"), service["family"])
        ]
    forwarding = rs.get("forwarding") or "nat"
    port = rs.get("port")
    problems = []
    if port is None:
        if service["fwmark"] and forwarding == "nat":
            problems.append(
                "no port: a firewall-mark service has no port for a NAT real server to inherit. Fix: set port, or "
                "port: 0 to keep the port each client connected to."
            )
        port = service["port"] or 0
    elif not 0 <= port <= 65535:
        problems.append("port=%s is not a port. Fix: use 1-65535 (0 on a firewall-mark service)." % port)
    elif forwarding != "nat" and port not in (0, service["port"] or 0):
        problems.append(
            "port=%s differs from the service's port, which %s forwarding cannot change. Fix: use forwarding: nat, or "
            "the service's port." % (port, forwarding)
        )
    weight = rs.get("weight", 1)
    weight = 1 if weight is None else weight
    if not 0 <= weight <= 65535:
        problems.append("weight=%s is out of range. Fix: use 0-65535." % weight)
    for field in ("u_threshold", "l_threshold"):
        if (rs.get(field) or 0) < 0:
            problems.append("%s=%s is negative. Fix: use 0 (none) or a connection count." % (field, rs.get(field)))
    real_server = dict(
        address=address,
        port=port if not (forwarding != "nat" and service["port"]) else service["port"],
        forwarding=forwarding,
        weight=weight,
        u_threshold=rs.get("u_threshold") or 0,
        l_threshold=rs.get("l_threshold") or 0,
    )
    return real_server, problems


def missing_schedulers(services, kernel_has):
    """Declared schedulers whose kernel module this kernel does not have."""
    wanted = sorted({s["scheduler"] for s in services if s["state"] == "present"})
    return [name for name in wanted if not kernel_has("ip_vs_%s" % name)]


# --------------------------------------------------------------------------- the plan


def _same_forwarding(live, wanted):
    # A NAT real server on one of the host's own addresses may read back as "local".
    return live == wanted or (live == "local" and wanted == "nat")


def real_server_differs(live, wanted):
    return not _same_forwarding(live["forwarding"], wanted["forwarding"]) or any(
        live[f] != wanted[f] for f in REAL_SERVER_SETTINGS if f != "forwarding"
    )


def service_differs(live, wanted):
    # The netmask only matters to a persistent service; the kernel keeps whatever it was given otherwise.
    settings = SERVICE_SETTINGS if wanted["persistence_timeout"] else SERVICE_SETTINGS[:-1]
    return any(live.get(f) != wanted.get(f) for f in settings)


def render_operation(op):
    """One change in ipvsadm's syntax: -A/-E a service, -a/-e/-d a real server, -D a service."""
    command, service, real_server = op
    if command in (CMD_NEW_SERVICE, CMD_SET_SERVICE):
        line = render_service(service)
        return line if command == CMD_NEW_SERVICE else "-E" + line[2:]
    if command in (CMD_NEW_DEST, CMD_SET_DEST):
        line = render_real_server(service, real_server)
        return line if command == CMD_NEW_DEST else "-e" + line[2:]
    if command == CMD_DEL_DEST:
        return "-d %s -r %s" % (service_selector(service), real_server_key(real_server))
    return "-D %s" % service_selector(service)


class Plan:
    """What to change, in the order it is applied: additions and updates, then drains, then removals."""

    def __init__(self):
        self.apply = []  # (command, service, real_server)
        self.drain = []  # (service, live real server): weight 0, wait, delete
        self.remove = []  # services to delete once drained

    def empty(self):
        return not (self.apply or self.drain or self.remove)

    def changes(self):
        lines = [render_operation(op) for op in self.apply]
        lines += [render_operation((CMD_DEL_DEST, service, rs)) for service, rs in self.drain]
        lines += [render_operation((CMD_DEL_SERVICE, service, None)) for service in self.remove]
        return lines

    def summary(self):
        def count(cmd):
            return sum(1 for op in self.apply if op[0] == cmd)

        return dict(
            services_added=count(CMD_NEW_SERVICE),
            services_updated=count(CMD_SET_SERVICE),
            services_removed=len(self.remove),
            real_servers_added=count(CMD_NEW_DEST),
            real_servers_updated=count(CMD_SET_DEST),
            real_servers_removed=len(self.drain),
        )


def plan_changes(live, wanted, purge=False):
    """The Plan that turns the live table into the wanted one (pure: both are lists in the table model)."""
    plan = Plan()
    live_by_key = {service_key(s): s for s in live}
    declared = set()
    for service in wanted:
        key = service_key(service)
        declared.add(key)
        current = live_by_key.get(key)
        if service["state"] == "absent":
            if current:
                _remove_service(plan, current)
            continue
        if current is None:
            plan.apply.append((CMD_NEW_SERVICE, service, None))
            plan.apply += [(CMD_NEW_DEST, service, rs) for rs in service["real_servers"]]
            continue
        if service_differs(current, service):
            plan.apply.append((CMD_SET_SERVICE, dict(service, flags=current.get("flags") or 0), None))
        live_rs = {real_server_key(rs): rs for rs in current["real_servers"]}
        for rs in service["real_servers"]:
            existing = live_rs.pop(real_server_key(rs), None)
            if existing is None:
                plan.apply.append((CMD_NEW_DEST, service, rs))
            elif real_server_differs(existing, rs):
                plan.apply.append((CMD_SET_DEST, service, rs))
        plan.drain += [(current, rs) for _key, rs in sorted(live_rs.items())]
    if purge:
        for key, current in sorted(live_by_key.items()):
            if key not in declared:
                _remove_service(plan, current)
    # Additions first, services before their real servers; the kernel takes them in this order.
    order = {CMD_NEW_SERVICE: 0, CMD_SET_SERVICE: 1, CMD_NEW_DEST: 2, CMD_SET_DEST: 3}
    plan.apply.sort(key=lambda op: order[op[0]])
    return plan


def _remove_service(plan, current):
    plan.drain += [(current, rs) for rs in sorted(current["real_servers"], key=real_server_key)]
    plan.remove.append(current)


def predicted_table(live, plan):
    """The table after the plan: for the diff, and for check mode."""
    table = {service_key(s): dict(s, real_servers=list(s["real_servers"])) for s in live}
    for command, service, real_server in plan.apply:
        key = service_key(service)
        if command == CMD_NEW_SERVICE:
            table[key] = dict(service, real_servers=[])
        elif command == CMD_SET_SERVICE:
            table[key] = dict(table[key], **{f: service[f] for f in SERVICE_SETTINGS})
        else:
            rest = [rs for rs in table[key]["real_servers"] if real_server_key(rs) != real_server_key(real_server)]
            table[key]["real_servers"] = rest + [real_server]
    for service, real_server in plan.drain:
        key = service_key(service)
        table[key]["real_servers"] = [
            rs for rs in table[key]["real_servers"] if real_server_key(rs) != real_server_key(real_server)
        ]
    for service in plan.remove:
        table.pop(service_key(service), None)
    return list(table.values())


def bind_changes(current, services, purge):
    """(add, remove) host addresses of the bind interface: declared service addresses, as /32 or /128."""
    wanted = {
        "%s/%d" % (s["address"], 128 if s["family"] == "ipv6" else 32)
        for s in services
        if s["state"] == "present" and s["address"]
    }
    gone = {
        "%s/%d" % (s["address"], 128 if s["family"] == "ipv6" else 32)
        for s in services
        if s["state"] == "absent" and s["address"]
    }
    add = sorted(wanted - set(current))
    remove = sorted(a for a in current if (a in gone and a not in wanted) or (purge and a not in wanted))
    return add, remove


# --------------------------------------------------------------------------- applying


class IpvsManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.check_mode = module.check_mode
        try:
            self.netns = netns_path(self.params["netns"])
        except NetnsError as exc:
            module.fail_json(msg=str(exc))

    def run(self):
        services, errors = normalize_services(self.params["services"])
        if self.params["drain_timeout"] < 0:
            errors.append("drain_timeout=%s is negative. Fix: use 0 or seconds." % self.params["drain_timeout"])
        if errors:
            self.module.fail_json(msg="\n".join(errors), errors=errors)
        # Without ip_vs at all, _open says so; a missing scheduler is only worth naming on a kernel with IPVS.
        missing = missing_schedulers(services, kernel_has_module) if kernel_has_module("ip_vs") else []
        if missing:
            self.module.fail_json(
                msg="scheduler %s: this kernel has no %s. Fix: use another scheduler, or a kernel that has it."
                % (", ".join(missing), ", ".join("ip_vs_%s" % m for m in missing))
            )
        kernel = self._open()
        live = kernel.services() if kernel else []
        plan = plan_changes(live, services, self.params["purge"])
        result = dict(changed=not plan.empty(), changes=plan.changes(), summary=plan.summary(), drained=[])
        if self.module._diff:
            result["diff"] = dict(
                before="\n".join(render_rules(live)) + "\n",
                after="\n".join(render_rules(predicted_table(live, plan))) + "\n",
            )
        if self.check_mode:
            result["drained"] = [
                self._drain_report(s, rs, 0.0, rs.get("active_connections", 0), False) for s, rs in plan.drain
            ]
        elif not plan.empty():
            self._apply(kernel, plan.apply)
            result["drained"] = self._drain(kernel, plan)
        if kernel:
            kernel.close()
        if self.params["bind_interface"]:
            result["addresses"] = self._bind(services)
            addresses = result["addresses"]
            result["changed"] |= bool(addresses["added"] or addresses["removed"] or addresses["created"])
        return result

    def _open(self):
        """The kernel client; loads ip_vs when it is missing. None only in check mode with ip_vs not yet loaded."""
        try:
            return IpvsKernel(self.netns)
        except IpvsUnavailable:
            pass
        except NetnsError as exc:
            self.module.fail_json(msg=str(exc))
        command = ["modprobe", "--dry-run", "ip_vs"] if self.check_mode else ["modprobe", "ip_vs"]
        rc, _out, err = self.module.run_command(command, environ_update=dict(LC_ALL="C"))
        if rc != 0:
            self.module.fail_json(
                msg="this host's kernel (%s) has no IPVS: the ip_vs module is not loaded and `modprobe ip_vs` failed: %s. "
                "Virtual services cannot exist here. Fix: run this on a kernel built with CONFIG_IP_VS (every Debian and "
                "Ubuntu kernel is; a container uses its host's kernel, so load ip_vs on that host)."
                % (os.uname().release, err.strip() or "rc=%d" % rc)
            )
        if self.check_mode:
            return None
        return IpvsKernel(self.netns)

    def _apply(self, kernel, operations):
        failures = kernel.apply(operations)
        if failures:
            self._fail_refused(failures, len(operations))

    def _fail_refused(self, failures, total):
        lines = []
        for op, code in failures:
            lines.append("%s: %s" % (render_operation(op), os.strerror(code)))
        self.module.fail_json(
            msg="the kernel refused %d of %d IPVS changes (the others were applied; a re-run applies the rest once "
            "the cause is fixed): %s" % (len(failures), total, "; ".join(lines[:20])),
            refused=lines,
        )

    def _drain(self, kernel, plan):
        if not plan.drain and not plan.remove:
            return []
        timeout = self.params["drain_timeout"]
        started = time.monotonic()
        if timeout > 0:
            quiesce = [(CMD_SET_DEST, service, dict(rs, weight=0)) for service, rs in plan.drain if rs["weight"] != 0]
            self._apply(kernel, quiesce)
        pending = {(service_key(s), real_server_key(rs)): (s, rs) for s, rs in plan.drain}
        reports = []
        while pending:
            active = self._active_connections(kernel, [s for s, _rs in pending.values()])
            waited = round(time.monotonic() - started, 1)
            timed_out = waited >= timeout
            done = [k for k in pending if active.get(k, 0) == 0 or timed_out]
            deletes = []
            for key in done:
                service, rs = pending.pop(key)
                reports.append(
                    self._drain_report(service, rs, waited, active.get(key, 0), timed_out and active.get(key, 0) > 0)
                )
                deletes.append((CMD_DEL_DEST, service, rs))
            self._apply(kernel, deletes)
            if pending:
                time.sleep(DRAIN_POLL)
        self._apply(kernel, [(CMD_DEL_SERVICE, service, None) for service in plan.remove])
        return reports

    @staticmethod
    def _active_connections(kernel, services):
        active = {}
        seen = set()
        for service in services:
            key = service_key(service)
            if key in seen:
                continue
            seen.add(key)
            try:
                for rs in kernel.real_servers(service):
                    active[(key, real_server_key(rs))] = rs["active_connections"]
            except IpvsError:
                pass  # the service is gone already: nothing left to wait for
        return active

    @staticmethod
    def _drain_report(service, real_server, waited, active, timed_out):
        return dict(
            service=service_key(service),
            real_server=real_server_key(real_server),
            waited=waited,
            active_connections=active,
            timed_out=timed_out,
        )

    # ----------------------------------------------------------------- bind interface

    def _ip(self, *args, data=None, check=True):
        with entered(self.netns):  # ip inherits the namespace
            rc, out, err = self.module.run_command(["ip", *args], data=data, environ_update=dict(LC_ALL="C"))
        if check and rc != 0:
            self.module.fail_json(msg="ip %s failed: %s" % (" ".join(args), err.strip()), rc=rc, stdout=out, stderr=err)
        return rc, out

    def _bind(self, services):
        name = self.params["bind_interface"]
        rc, out = self._ip("-j", "addr", "show", "dev", name, check=False)
        exists = rc == 0
        current = []
        if exists:
            for link in json.loads(out or "[]"):
                # The kernel gives an interface that is up a link-local IPv6 address of its own: not ours to manage.
                current += [
                    "%s/%s" % (a["local"], a["prefixlen"])
                    for a in link.get("addr_info", [])
                    if a.get("scope") != "link"
                ]
        add, remove = bind_changes(current, services, self.params["purge"])
        if not self.check_mode:
            commands = [] if exists else ["link add %s type dummy" % name, "link set %s up" % name]
            commands += ["addr add %s dev %s" % (a, name) for a in add]
            commands += ["addr del %s dev %s" % (a, name) for a in remove]
            if commands:
                self._ip("-batch", "-", data="\n".join(commands) + "\n")
        return dict(added=add, removed=remove, created=not exists)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    protocol=dict(type="str", choices=["tcp", "udp", "sctp"], default="tcp"),
                    address=dict(type="str"),
                    port=dict(type="int"),
                    fwmark=dict(type="int"),
                    family=dict(type="str", choices=["ipv4", "ipv6"], default="ipv4"),
                    scheduler=dict(type="str", default="wlc"),
                    scheduler_flags=dict(
                        type="list",
                        elements="str",
                        choices=["sh-fallback", "sh-port", "mh-fallback", "mh-port"],
                        default=[],
                    ),
                    persistence_timeout=dict(type="int", default=0),
                    persistence_netmask=dict(type="str"),
                    state=dict(type="str", choices=["present", "absent"], default="present"),
                    real_servers=dict(
                        type="list",
                        elements="dict",
                        default=[],
                        options=dict(
                            address=dict(type="str", required=True),
                            port=dict(type="int"),
                            weight=dict(type="int", default=1),
                            forwarding=dict(type="str", choices=["nat", "dr", "tunnel"], default="nat"),
                            u_threshold=dict(type="int", default=0),
                            l_threshold=dict(type="int", default=0),
                        ),
                    ),
                ),
            ),
            purge=dict(type="bool", default=False),
            drain_timeout=dict(type="int", default=30),
            netns=dict(type="str"),
            bind_interface=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    result = IpvsManager(module).run()
    # Ansible echoes the module's arguments back as `invocation`; a table of thousands of rules would be sent back
    # and scanned for secrets once more, for nothing: echo a count instead.
    args = dict(module.params, services="%d services" % len(module.params["services"]))
    module.exit_json(invocation=dict(module_args=args), **result)


if __name__ == "__main__":
    main()

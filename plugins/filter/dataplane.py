# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the kernel data plane: the fabric's addresses and peers, the edge balancers' virtual services,
and the verify report. Pure functions of inventory data and the preflight probe (swarm_info host facts).

The roles' variables are read per host from hostvars over the defaults in the roles' own defaults/main.yml, so
preflight (which runs no role) checks exactly what the roles will apply, from one source of defaults. Set them in
the inventory or with -e.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from pathlib import Path

import yaml

from ansible_collections.swarmplane.cluster.plugins.filter.services import swarm_ingress_ports
from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_advertise_address
from ansible_collections.swarmplane.cluster.plugins.module_utils.ipvs import SCHEDULERS

DOCUMENTATION = r"""
name: dataplane
short_description: Decisions of the fabric and edge_lb roles and of verify.yml
description:
  - C(fabric_plan) gives every fabric host its address (stable across runs and inventory order) and its peers.
  - C(edge_lb_plan) gives every load balancer its virtual services, one per ingress-published port.
  - C(dataplane_errors) checks both declarations before anything is changed (preflight).
  - C(verify_targets) lists the endpoints verify.yml probes; C(verify_report) turns the probe results and the
    nodes' routing mesh tables into a per-node report.
"""

ROLES = Path(__file__).resolve().parents[2] / "roles"
VNI_MAX = 16777215


@functools.cache
def role_defaults(role):
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {}


def role_settings(host_vars, role):
    """A role's variables as a host sees them: the role's defaults, overridden by what the inventory or -e sets."""
    settings = {name: host_vars.get(name, default) for name, default in role_defaults(role).items()}
    if isinstance(settings.get("edge_lb_ports"), dict):
        # Keys arrive as strings from JSON (-e '{"edge_lb_ports": {"8080": 80}}').
        settings["edge_lb_ports"] = {_number(k): _number(v) for k, v in settings["edge_lb_ports"].items()}
    return settings


def _number(value):
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _probe_host(host_vars):
    return (host_vars.get("swarm_probe") or {}).get("host") or {}


def _swarm_hosts(groups):
    return sorted(set(groups.get("managers") or []) | set(groups.get("workers") or []))


def fabric_members(groups):
    """The fabric spans the swarm's nodes and the load balancers."""
    return sorted(set(_swarm_hosts(groups)) | set(groups.get("loadbalancers") or []))


def _ipv4(value):
    """The IPv4 address in value (an address, or address/prefix), or None."""
    try:
        return str(ipaddress.IPv4Address(str(value).split("/", maxsplit=1)[0]))
    except ValueError:
        return None


def host_address(host_vars):
    """Where a host is reached: its swarm advertise address (explicit, or from the probe), else an IPv4 ansible_host.

    A host preflight could not reach has no probe, so a brief SSH failure falls back to ansible_host and does not
    take the host out of the fabric or the edge.
    """
    return swarm_advertise_address(host_vars) or _ipv4(host_vars.get("ansible_host") or "")


def _port_error(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        return "%s=%r is not a port. Fix: use 1-65535." % (name, value)
    return None


# --------------------------------------------------------------------------- fabric


def _underlay(host_vars):
    """(address, device) this host's VXLAN packets leave from; (None, None) when nothing says."""
    by_interface = _probe_host(host_vars).get("interface_ipv4") or {}
    interface = host_vars.get("fabric_underlay_interface")
    address = host_vars.get("fabric_underlay_addr") or (by_interface.get(str(interface)) if interface else None)
    address = address or host_address(host_vars)
    if not address:
        return None, None
    device = interface or next((name for name, addr in by_interface.items() if addr == address), None)
    return str(address), device


def _preferred_slot(host, size):
    return int(hashlib.sha256(host.encode()).hexdigest(), 16) % size


def _fabric_settings_errors(hosts, hostvars, settings):
    errors = []
    for name in ("fabric_subnet", "fabric_vni", "fabric_port"):
        values = {str(role_settings(hostvars[h], "fabric")[name]) for h in hosts}
        if len(values) > 1:
            errors.append(
                "%s differs between the fabric's hosts (%s): the fabric is one network. Fix: set it once, for all."
                % (name, ", ".join(sorted(values)))
            )
    vni = settings["fabric_vni"]
    if isinstance(vni, bool) or not isinstance(vni, int) or not 1 <= vni <= VNI_MAX:
        errors.append("fabric_vni=%r is not a VXLAN network identifier. Fix: use 1-%d." % (vni, VNI_MAX))
    errors += [e for e in [_port_error("fabric_port", settings["fabric_port"])] if e]
    mtu = settings["fabric_mtu"]
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not (mtu == 0 or 576 <= mtu <= 65535):
        errors.append("fabric_mtu=%r is not an MTU. Fix: use 0 (the underlay's minus 50) or 576-65535." % (mtu,))
    return errors


def fabric_plan(groups, hostvars):
    """dict(errors, warnings, settings, members={host: dict(address, local, device, peers)}).

    Addresses: a host's fabric_address if set; else the address it holds on the fabric interface now (so it keeps
    it whatever the inventory order or size); else a slot chosen by a hash of its name, the next free one on a
    collision. Peers: every other member's underlay address.
    """
    hosts = fabric_members(groups)
    settings = role_settings(hostvars[hosts[0]], "fabric") if hosts else role_defaults("fabric")
    plan = dict(errors=_fabric_settings_errors(hosts, hostvars, settings), warnings=[], settings=settings, members={})
    subnet = settings["fabric_subnet"]
    try:
        network = ipaddress.IPv4Network(str(subnet), strict=True)
    except ValueError as exc:
        plan["errors"].append(
            "fabric_subnet=%s is not an IPv4 network (%s). Fix: use a CIDR such as 10.77.0.0/24." % (subnet, exc)
        )
        return plan
    first = int(network.network_address) + 1
    size = network.num_addresses - 2 if network.prefixlen < 31 else 0  # host addresses: no network, no broadcast
    if size < len(hosts):
        plan["errors"].append(
            "fabric_subnet=%s has %d host addresses for %d fabric hosts (swarm nodes and load balancers). "
            "Fix: use a larger subnet (a /%d or larger holds them)."
            % (subnet, size, len(hosts), 32 - max(2, (len(hosts) + 1).bit_length()))
        )
        return plan
    addresses = _fabric_addresses(hosts, hostvars, settings["fabric_interface"], first, size, plan["errors"])
    underlays = {}
    for host in hosts:
        underlays[host] = _underlay(hostvars[host])
        if underlays[host][0] is None:
            plan["warnings"].append(
                "host %s: no underlay address is known (unreachable, and ansible_host is not an IPv4 address); it is "
                "left out of the fabric's peers this run. Fix: set fabric_underlay_addr for it." % host
            )
    # A full mesh: every member lists every other underlay address (the output itself grows as hosts squared).
    every_underlay = sorted({u[0] for u in underlays.values() if u[0]})
    for host in hosts:
        local, device = underlays[host]
        if local is not None and host in addresses:
            plan["members"][host] = dict(
                address="%s/%d" % (ipaddress.IPv4Address(addresses[host]), network.prefixlen),
                local=local,
                device=device,
                peers=[a for a in every_underlay if a != local],
            )
    return plan


def _fabric_addresses(hosts, hostvars, interface, first, size, errors):
    """{host: address as an integer}: fixed ones, then the ones held, then hashed slots."""
    taken, addresses = {}, {}

    def usable(address):
        return first <= address < first + size

    for host in hosts:
        explicit = hostvars[host].get("fabric_address")
        if not explicit:
            continue
        address = _ipv4(explicit)
        if address is None:
            errors.append(
                "host %s: fabric_address=%s is not an IPv4 address. Fix: use one of fabric_subnet." % (host, explicit)
            )
            continue
        address = int(ipaddress.IPv4Address(address))
        if not usable(address):
            errors.append(
                "host %s: fabric_address=%s is not a host address of fabric_subnet. Fix: use one inside it, or unset "
                "it to have one chosen." % (host, explicit)
            )
        elif address in taken:
            errors.append(
                "host %s: fabric_address=%s is also the fabric_address of %s. Fix: give each host its own."
                % (host, explicit, taken[address])
            )
        else:
            taken[address], addresses[host] = host, address
    for host in hosts:
        held = _ipv4((_probe_host(hostvars[host]).get("interface_ipv4") or {}).get(interface) or "")
        if host not in addresses and held and usable(int(ipaddress.IPv4Address(held))):
            address = int(ipaddress.IPv4Address(held))
            if address not in taken:
                taken[address], addresses[host] = host, address
    for host in hosts:
        if host not in addresses:
            slot = _preferred_slot(host, size)
            while first + slot in taken:
                slot = (slot + 1) % size
            taken[first + slot], addresses[host] = host, first + slot
    return addresses


# --------------------------------------------------------------------------- edge load balancer


def _node_address(host, hostvars, fabric):
    if fabric is not None:
        member = (fabric.get("members") or {}).get(host)
        return member["address"].split("/")[0] if member else None
    return host_address(hostvars[host])


def _own_addresses(host_vars, vip_interface):
    """A balancer's addresses, but the VIP it already holds on its VIP interface (from an earlier run)."""
    facts = _probe_host(host_vars)
    held = (facts.get("interface_ipv4") or {}).get(vip_interface)
    return [a for a in facts.get("all_ipv4_addresses") or [] if a != held]


def _edge_settings_errors(lb, settings, published):
    errors = []
    if settings["edge_lb_scheduler"] not in SCHEDULERS:
        errors.append(
            "host %s: edge_lb_scheduler=%s is not an IPVS scheduler. Fix: use one of %s."
            % (lb, settings["edge_lb_scheduler"], ", ".join(SCHEDULERS))
        )
    if settings["edge_lb_forwarding"] != "nat":
        errors.append(
            "host %s: edge_lb_forwarding=%s: the load balancers forward with NAT only (direct routing is not built "
            "yet). Fix: use edge_lb_forwarding: nat." % (lb, settings["edge_lb_forwarding"])
        )
    ports = settings["edge_lb_ports"] or {}
    if not isinstance(ports, dict):
        return errors + [
            "host %s: edge_lb_ports=%r is not a map. Fix: {published port: port on the VIP}." % (lb, ports)
        ]
    for source, port in ports.items():
        for name, value in (("edge_lb_ports key", source), ("edge_lb_ports[%s]" % source, port)):
            error = _port_error(name, value)
            if error:
                errors.append("host %s: %s" % (lb, error))
    seen = {}
    for name, protocol, port in published:
        edge_port = ports.get(port, port)
        other = seen.setdefault((protocol, edge_port), name)
        if other != name:
            errors.append(
                "host %s: services %s and %s would share port %s/%s on the VIP. Fix: map one elsewhere with "
                "edge_lb_ports." % (lb, other, name, edge_port, protocol)
            )
    return errors


def edge_lb_plan(groups, hostvars, services, fabric=None):
    """dict(errors, warnings, balancers={lb: dict(vip, services=[ipvs service declarations])}).

    One virtual service per ingress-published port, on each balancer's edge_lb_vip (at edge_lb_ports[published] when
    the map names it); real servers: every swarm node of the inventory on the published port, at its address, or at
    its fabric address with edge_lb_via_fabric (the fabric plan is computed here when none is given).
    """
    errors, warnings = [], []
    balancers = sorted(groups.get("loadbalancers") or [])
    nodes = _swarm_hosts(groups)
    published = swarm_ingress_ports(services)
    if balancers and not published:
        warnings.append(
            "the load balancers (%s) hold no virtual service: no service of swarm_services publishes a port in "
            "ingress mode." % ", ".join(balancers)
        )
    node_addresses = {a for n in nodes for a in _probe_host(hostvars[n]).get("all_ipv4_addresses") or []}
    vips, plan = {}, {}
    for lb in balancers:
        settings = role_settings(hostvars[lb], "edge_lb")
        lb_errors = _edge_settings_errors(lb, settings, published)
        via = fabric
        if settings["edge_lb_via_fabric"] and via is None:
            if not role_settings(hostvars[lb], "fabric")["fabric_subnet"]:
                lb_errors.append(
                    "host %s: edge_lb_via_fabric is true but there is no fabric. Fix: set fabric_subnet, or "
                    "edge_lb_via_fabric: false." % lb
                )
            else:
                via = fabric_plan(groups, hostvars)
        real_servers = []
        for node in nodes:
            address = _node_address(node, hostvars, via if settings["edge_lb_via_fabric"] else None)
            if address:
                real_servers.append(address)
            elif not settings["edge_lb_via_fabric"] or via is not None:
                warnings.append("host %s: node %s has no known address; it is not a real server this run." % (lb, node))
        vip, vip_error = _vip(lb, hostvars, settings, vips, node_addresses | set(real_servers))
        errors += lb_errors + ([vip_error] if vip_error else [])
        if vip is None or lb_errors:
            continue
        vips[vip] = lb
        ports = settings["edge_lb_ports"] or {}
        declared = []
        for name, protocol, port in published:
            edge_port = ports.get(port, port)
            if lb in nodes and any(p == edge_port and pr == protocol for _n, pr, p in published):
                errors.append(
                    "host %s is a load balancer and a swarm node: its VIP port %d/%s (service %s) is also published in "
                    "ingress mode, and the routing mesh on this node takes that port for every local address, the VIP "
                    "too. Fix: map it to a free port with edge_lb_ports ({%d: <port>}), or use a balancer that is not "
                    "a swarm node." % (lb, edge_port, protocol, name, port)
                )
            declared.append(
                dict(
                    protocol=protocol,
                    address=vip,
                    port=edge_port,
                    scheduler=settings["edge_lb_scheduler"],
                    real_servers=[
                        dict(address=address, port=port, forwarding=settings["edge_lb_forwarding"], weight=1)
                        for address in real_servers
                    ],
                )
            )
        plan[lb] = dict(vip=vip, services=declared)
    return dict(errors=errors, warnings=warnings, balancers=plan)


def _vip(lb, hostvars, settings, vips, taken):
    """(the balancer's VIP, None) or (None, the error that names it)."""
    vip = settings["edge_lb_vip"]
    if not vip:
        return None, (
            "host %s is in loadbalancers but edge_lb_vip is not set. Fix: give it the address clients connect to "
            "(a free IPv4 address of its network)." % lb
        )
    address = _ipv4(vip)
    if address is None:
        return None, "host %s: edge_lb_vip=%s is not an IPv4 address. Fix: use a free IPv4 address of its network." % (
            lb,
            vip,
        )
    if address in vips:
        return None, (
            "host %s: edge_lb_vip=%s is also the VIP of %s; two balancers cannot answer for one address (no VRRP "
            "here). Fix: give each balancer its own VIP." % (lb, vip, vips[address])
        )
    if address in taken or address in _own_addresses(hostvars[lb], settings["edge_lb_vip_interface"]):
        return None, "host %s: edge_lb_vip=%s is already an address of a host. Fix: use a free address." % (lb, vip)
    return address, None


def dataplane_errors(groups, hostvars, services):
    """Errors and warnings of the fabric and edge declarations, for preflight: dict(errors, warnings)."""
    errors, warnings = [], []
    fabric = None
    hosts = fabric_members(groups)
    if hosts and role_settings(hostvars[hosts[0]], "fabric")["fabric_subnet"]:
        fabric = fabric_plan(groups, hostvars)
        errors += fabric["errors"]
        warnings += fabric["warnings"]
    if groups.get("loadbalancers"):
        plan = edge_lb_plan(groups, hostvars, services, fabric=fabric)
        errors += plan["errors"]
        warnings += plan["warnings"]
    return dict(errors=errors, warnings=warnings)


# --------------------------------------------------------------------------- verify


def verify_targets(groups, hostvars, services):
    """Endpoints verify.yml probes: every ingress-published TCP port through every node, and through every VIP."""
    targets = []
    for name, protocol, port in swarm_ingress_ports(services):
        if protocol != "tcp":
            continue
        for node in _swarm_hosts(groups):
            address = host_address(hostvars[node]) or hostvars[node].get("ansible_host") or node
            targets.append(
                dict(
                    name="%s via %s" % (name, node),
                    host=address,
                    port=port,
                    meta=dict(service=name, port=port, node=node),
                )
            )
        for lb in sorted(groups.get("loadbalancers") or []):
            settings = role_settings(hostvars[lb], "edge_lb")
            vip = _ipv4(settings["edge_lb_vip"] or "")
            if vip:
                targets.append(
                    dict(
                        name="%s via %s VIP" % (name, lb),
                        host=vip,
                        port=(settings["edge_lb_ports"] or {}).get(port, port),
                        meta=dict(service=name, port=port, balancer=lb),
                    )
                )
    return targets


def _mesh_summary(mesh):
    if not mesh:
        return "routing mesh not read (the node was not reached)"
    if not mesh.get("available"):
        return "routing mesh: %s" % mesh.get("reason", "unavailable")
    marks = [s for s in mesh.get("services") or [] if s.get("fwmark")]
    if not marks:
        return "routing mesh: no virtual service in ingress_sbox (no ingress-published service has a task?)"
    return "routing mesh: " + "; ".join(
        "%s %s -> %s"
        % (s["key"], s["scheduler"], ", ".join(rs["address"] for rs in s["real_servers"]) or "no real server")
        for s in marks
    )


def verify_report(results, meshes=None):
    """dict(failed, lines): per service and port, who answered through which node or VIP, and why not."""
    meshes = meshes or {}
    lines, failed = [], []
    for result in results or []:
        meta = result.get("meta") or {}
        via = meta.get("node") or "%s VIP" % meta.get("balancer")
        answered = "%d/%d answered" % (result["answered"], result["requests"])
        replies = ", ".join("%s (%d)" % (reply or "(empty)", n) for reply, n in sorted(result["replies"].items()))
        line = "%s %s via %s (%s:%d): %s%s" % (
            meta.get("service"),
            meta.get("port"),
            via,
            result["host"],
            result["port"],
            answered,
            " by " + replies if replies else "",
        )
        if result["answered"] < result["requests"]:
            line += "; errors: %s" % "; ".join(result["errors"])
            if meta.get("node"):
                line += "; " + _mesh_summary(meshes.get(meta["node"]))
            failed.append(result["name"])
        lines.append(line)
    lines += ["%s: %s" % (node, _mesh_summary(mesh)) for node, mesh in sorted(meshes.items())]
    return dict(failed=failed, lines=lines)


class FilterModule:
    def filters(self):
        return {
            "fabric_members": fabric_members,
            "fabric_plan": fabric_plan,
            "edge_lb_plan": edge_lb_plan,
            "dataplane_errors": dataplane_errors,
            "verify_targets": verify_targets,
            "verify_report": verify_report,
        }

# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the kernel data plane: the fabric's addresses and peers, the edge balancers' virtual services,
and the verify report. Pure functions of inventory data and the preflight probe (swarm_info host facts)."""

from __future__ import annotations

import hashlib
import ipaddress

from ansible_collections.swarmplane.cluster.plugins.filter.services import swarm_present
from ansible_collections.swarmplane.cluster.plugins.filter.swarm import swarm_advertise_address

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

# Defaults the roles document in their defaults/main.yml (tests/unit/test_filter_dataplane.py checks they agree).
FABRIC_INTERFACE = "fabric0"
EDGE_LB_SCHEDULER = "rr"
EDGE_LB_FORWARDING = "nat"
EDGE_LB_VIP_INTERFACE = "swarmplane-vip"


def _probe_host(host_vars):
    return (host_vars.get("swarm_probe") or {}).get("host") or {}


def _swarm_hosts(groups):
    return sorted(set(groups.get("managers") or []) | set(groups.get("workers") or []))


def fabric_members(groups):
    """The fabric spans the swarm's nodes and the load balancers."""
    return sorted(set(_swarm_hosts(groups)) | set(groups.get("loadbalancers") or []))


# --------------------------------------------------------------------------- fabric


def _underlay(host, host_vars):
    """(address, device) this host's VXLAN packets leave from; (None, None) when the facts do not say."""
    facts = _probe_host(host_vars)
    by_interface = facts.get("interface_ipv4") or {}
    interface = host_vars.get("fabric_underlay_interface")
    address = host_vars.get("fabric_underlay_addr")
    if not address and interface:
        address = by_interface.get(str(interface))
    if not address and facts:
        address = swarm_advertise_address(host_vars)
    if not address:
        ansible_host = str(host_vars.get("ansible_host") or "")
        try:
            address = str(ipaddress.IPv4Address(ansible_host))
        except ValueError:
            return None, None
    device = interface or next((name for name, addr in by_interface.items() if addr == address), None)
    return str(address), device


def _preferred_slot(host, size):
    return int(hashlib.sha256(host.encode()).hexdigest(), 16) % size


def fabric_plan(groups, hostvars, subnet, interface=FABRIC_INTERFACE):
    """dict(errors, warnings, members={host: dict(address, local, device, peers)}).

    Addresses: a host's fabric_address if set; else the address it holds on the fabric interface now (so it keeps
    it whatever the inventory order or size); else a slot chosen by a hash of its name, the next free one on a
    collision. Peers: every other member's underlay address.
    """
    errors, warnings = [], []
    hosts = fabric_members(groups)
    try:
        network = ipaddress.IPv4Network(str(subnet), strict=True)
    except ValueError as exc:
        return dict(
            errors=[
                "fabric_subnet=%s is not an IPv4 network (%s). Fix: use a CIDR such as 10.77.0.0/24." % (subnet, exc)
            ],
            warnings=[],
            members={},
        )
    usable = list(network.hosts()) if network.prefixlen < 31 else []
    if len(usable) < len(hosts):
        needed = 32 - max(2, (len(hosts) + 1).bit_length())
        errors.append(
            "fabric_subnet=%s has %d host addresses for %d fabric hosts (swarm nodes and load balancers). "
            "Fix: use a larger subnet (a /%d or larger holds them)." % (subnet, len(usable), len(hosts), needed)
        )
        return dict(errors=errors, warnings=warnings, members={})
    taken, addresses = {}, {}
    for host in hosts:
        explicit = hostvars[host].get("fabric_address")
        if not explicit:
            continue
        try:
            address = ipaddress.IPv4Address(str(explicit).split("/")[0])
        except ValueError:
            errors.append(
                "host %s: fabric_address=%s is not an IPv4 address. Fix: use one of %s." % (host, explicit, subnet)
            )
            continue
        if address not in usable:
            errors.append(
                "host %s: fabric_address=%s is not a host address of fabric_subnet=%s. Fix: use one inside it, or unset "
                "it to have one chosen." % (host, explicit, subnet)
            )
        elif address in taken:
            errors.append(
                "host %s: fabric_address=%s is also the fabric_address of %s. Fix: give each host its own."
                % (host, explicit, taken[address])
            )
        else:
            taken[address] = host
            addresses[host] = address
    for host in hosts:
        if host in addresses:
            continue
        current = (_probe_host(hostvars[host]).get("interface_ipv4") or {}).get(interface)
        if current and ipaddress.IPv4Address(current) in usable and ipaddress.IPv4Address(current) not in taken:
            taken[ipaddress.IPv4Address(current)] = host
            addresses[host] = ipaddress.IPv4Address(current)
    for host in hosts:
        if host in addresses:
            continue
        slot = _preferred_slot(host, len(usable))
        while usable[slot] in taken:
            slot = (slot + 1) % len(usable)
        taken[usable[slot]] = host
        addresses[host] = usable[slot]
    underlays = {}
    for host in hosts:
        local, device = _underlay(host, hostvars[host])
        if local is None:
            warnings.append(
                "host %s: no underlay address is known (unreachable, and ansible_host is not an address); it is left out "
                "of the fabric's peers this run. Fix: set fabric_underlay_addr for it." % host
            )
        underlays[host] = (local, device)
    members = {}
    for host in hosts:
        local, device = underlays[host]
        if local is None:
            continue
        members[host] = dict(
            address="%s/%d" % (addresses[host], network.prefixlen),
            local=local,
            device=device,
            peers=sorted({u[0] for h, u in underlays.items() if h != host and u[0] and u[0] != local}),
        )
    return dict(errors=errors, warnings=warnings, members=members)


# --------------------------------------------------------------------------- edge load balancer


def ingress_ports(services):
    """[(service name, protocol, published port)] of every port published in ingress mode (the routing mesh)."""
    ports = []
    for service in swarm_present(services):
        for publish in service.get("publish") or []:
            if (publish.get("mode") or "ingress") == "ingress" and publish.get("published"):
                ports.append((service["name"], publish.get("protocol") or "tcp", int(publish["published"])))
    return ports


def _node_address(host, hostvars, fabric):
    if fabric is not None:
        member = (fabric.get("members") or {}).get(host)
        return member["address"].split("/")[0] if member else None
    return swarm_advertise_address(hostvars[host])


def _own_addresses(host_vars, vip_interface):
    """A balancer's addresses, but the VIP it already holds on its VIP interface (from an earlier run)."""
    facts = _probe_host(host_vars)
    held = (facts.get("interface_ipv4") or {}).get(vip_interface)
    return [a for a in facts.get("all_ipv4_addresses") or [] if a != held]


def edge_lb_plan(
    groups,
    hostvars,
    services,
    scheduler=EDGE_LB_SCHEDULER,
    forwarding=EDGE_LB_FORWARDING,
    ports=None,
    fabric=None,
    vip_interface=EDGE_LB_VIP_INTERFACE,
):
    """dict(errors, warnings, balancers={lb: dict(vip, services=[ipvs service declarations])}).

    One virtual service per ingress-published port, on each balancer's edge_lb_vip (at ports[published] when the map
    names it); real servers: every swarm node of the inventory on the published port, at its advertise address, or
    its fabric address when a fabric plan is given.
    """
    errors, warnings = [], []
    ports = {int(k): int(v) for k, v in (ports or {}).items()}
    balancers = sorted(groups.get("loadbalancers") or [])
    nodes = _swarm_hosts(groups)
    published = ingress_ports(services)
    if balancers and not published:
        warnings.append(
            "the load balancers (%s) hold no virtual service: no service of swarm_services publishes a port in "
            "ingress mode." % ", ".join(balancers)
        )
    if forwarding != "nat":
        errors.append(
            "edge_lb_forwarding=%s: the load balancers forward with NAT only (direct routing is not built yet). "
            "Fix: use edge_lb_forwarding: nat." % forwarding
        )
    real_servers = []
    for node in nodes:
        address = _node_address(node, hostvars, fabric)
        if address:
            real_servers.append((node, address))
        else:
            warnings.append("node %s has no known address; it is not a real server of the edge this run." % node)
    node_addresses = {a for _n, a in real_servers} | {
        a for n in nodes for a in _probe_host(hostvars[n]).get("all_ipv4_addresses") or []
    }
    vips = {}
    plan = {}
    for lb in balancers:
        vip = hostvars[lb].get("edge_lb_vip")
        try:
            vip = str(ipaddress.ip_address(str(vip).split("/")[0])) if vip else None
        except ValueError:
            errors.append(
                "host %s: edge_lb_vip=%s is not an IP address. Fix: use a free address of its network." % (lb, vip)
            )
            continue
        if not vip:
            errors.append(
                "host %s is in loadbalancers but edge_lb_vip is not set. Fix: give it the address clients connect to "
                "(a free address of its network)." % lb
            )
            continue
        if vip in vips:
            errors.append(
                "host %s: edge_lb_vip=%s is also the VIP of %s; two balancers cannot answer for one address (no VRRP "
                "here). Fix: give each balancer its own VIP." % (lb, vip, vips[vip])
            )
            continue
        vips[vip] = lb
        if vip in node_addresses or vip in _own_addresses(hostvars[lb], vip_interface):
            errors.append(
                "host %s: edge_lb_vip=%s is already an address of a host. Fix: use a free address." % (lb, vip)
            )
        is_node = lb in nodes
        declared = []
        for name, protocol, port in published:
            edge_port = ports.get(port, port)
            if is_node and any(p == edge_port and pr == protocol for _n, pr, p in published):
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
                    scheduler=scheduler,
                    real_servers=[
                        dict(address=address, port=port, forwarding=forwarding, weight=1)
                        for _node, address in real_servers
                    ],
                )
            )
        plan[lb] = dict(vip=vip, services=declared)
    return dict(errors=errors, warnings=warnings, balancers=plan)


def dataplane_errors(groups, hostvars, services, fabric_subnet="", fabric_interface=FABRIC_INTERFACE, edge=None):
    """Errors (and warnings) of the fabric and edge declarations, for preflight: dict(errors, warnings)."""
    errors, warnings = [], []
    fabric = None
    if fabric_subnet:
        fabric = fabric_plan(groups, hostvars, fabric_subnet, fabric_interface)
        errors += fabric["errors"]
        warnings += fabric["warnings"]
    if groups.get("loadbalancers"):
        edge = dict(edge or {})
        via_fabric = edge.pop("via_fabric", False)
        plan = edge_lb_plan(groups, hostvars, services, fabric=fabric if via_fabric else None, **edge)
        errors += plan["errors"]
        warnings += plan["warnings"]
    return dict(errors=errors, warnings=warnings)


# --------------------------------------------------------------------------- verify


def verify_targets(groups, hostvars, services, edge_ports=None):
    """Endpoints verify.yml probes: every ingress-published TCP port through every node, and through every VIP."""
    edge_ports = {int(k): int(v) for k, v in (edge_ports or {}).items()}
    targets = []
    for name, protocol, port in ingress_ports(services):
        if protocol != "tcp":
            continue
        for node in _swarm_hosts(groups):
            address = swarm_advertise_address(hostvars[node]) or hostvars[node].get("ansible_host") or node
            targets.append(
                dict(
                    name="%s via %s" % (name, node),
                    host=address,
                    port=port,
                    meta=dict(service=name, port=port, node=node),
                )
            )
        for lb in sorted(groups.get("loadbalancers") or []):
            vip = hostvars[lb].get("edge_lb_vip")
            if vip:
                vip = str(vip).split("/")[0]
                targets.append(
                    dict(
                        name="%s via %s VIP" % (name, lb),
                        host=vip,
                        port=edge_ports.get(port, port),
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
            "swarm_ingress_ports": ingress_ports,
            "verify_targets": verify_targets,
            "verify_report": verify_report,
        }

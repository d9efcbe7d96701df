# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the swarmplane plays decide with: inventory checks, the bootstrap manager, the join and
reconcile plans, and the node table. Pure functions of inventory data and probe results."""

from __future__ import annotations

DOCUMENTATION = r"""
name: swarm
short_description: Decisions of the swarmplane plays (preflight, bootstrap, plans, node table)
description:
  - C(swarm_preflight) checks the inventory against what the hosts reported and returns errors and warnings.
  - C(swarm_bootstrap_host) picks the manager the swarm is formed or driven from.
  - C(swarm_advertise_address) resolves a host's advertise address.
  - C(swarm_reconcile_plan) lists node changes (role, availability, labels) the inventory asks for.
  - C(swarm_node_table) renders nodes as C(docker node ls) does.
"""

SWARM_GROUPS = ("managers", "workers")


def _facts(host_vars):
    """The host's network facts: from the probe (swarm_info host_facts) when it has them, else Ansible's."""
    probe_host = (host_vars.get("swarm_probe") or {}).get("host")
    if probe_host:
        return probe_host
    return host_vars.get("ansible_facts") or {}


def _probe(host_vars):
    return host_vars.get("swarm_probe") or {}


def _unreachable(host_vars):
    return bool(_probe(host_vars).get("unreachable"))


def _strip_port(addr):
    addr = str(addr)
    if addr.startswith("["):
        return addr[1:].split("]", 1)[0]
    if addr.count(":") == 1:
        return addr.split(":", 1)[0]
    return addr


def swarm_advertise_address(host_vars):
    """swarm_advertise_addr, else the IPv4 of swarm_advertise_interface, else the default IPv4 (None if none)."""
    explicit = host_vars.get("swarm_advertise_addr")
    if explicit:
        return str(explicit)
    facts = _facts(host_vars)
    interface = host_vars.get("swarm_advertise_interface")
    if interface:
        if "interface_ipv4" in facts:
            return facts["interface_ipv4"].get(str(interface))
        return ((facts.get(str(interface).replace("-", "_")) or {}).get("ipv4") or {}).get("address")
    return (facts.get("default_ipv4") or {}).get("address")


def _host_addresses(facts):
    return set(facts.get("all_ipv4_addresses") or []) | set(facts.get("all_ipv6_addresses") or [])


def _where(host, host_vars):
    addr = host_vars.get("ansible_host", host)
    port = host_vars.get("ansible_port")
    return "%s:%s" % (addr, port) if port else str(addr)


def swarm_inventory_errors(groups):
    """Errors in the inventory's groups alone (no host contacted yet)."""
    errors = []
    managers = list(groups.get("managers") or [])
    workers = list(groups.get("workers") or [])
    if not managers:
        errors.append(
            "inventory group 'managers' is empty: a swarm needs at least one manager. "
            "Fix: put a host under managers (see inventories/sample/hosts.yml)."
        )
    for host in sorted(set(managers) & set(workers)):
        errors.append(
            "host %s is in both 'managers' and 'workers': a node has one role. "
            "Fix: remove it from one of the two groups." % host
        )
    return errors


def _host_errors(host, host_vars):
    probe = _probe(host_vars)
    if probe.get("failed"):
        return ["host %s: reading its engine failed: %s" % (host, probe.get("msg", "no message"))]
    if probe.get("nodes_error"):
        return [
            "host %s is a manager that cannot list the swarm's nodes: %s. If the swarm lost its quorum (too many managers "
            "gone), bring managers back, or recover from this one with `docker swarm init --force-new-cluster`."
            % (host, probe["nodes_error"])
        ]
    errors = []
    facts = _facts(host_vars)
    addresses = _host_addresses(facts)
    explicit = host_vars.get("swarm_advertise_addr")
    interface = host_vars.get("swarm_advertise_interface")
    if explicit:
        if _strip_port(explicit) not in addresses:
            errors.append(
                "host %s: swarm_advertise_addr=%s is not an address of this host (it has: %s). "
                "Fix: set swarm_advertise_addr to one of them, or unset it to use the default IPv4."
                % (host, explicit, ", ".join(sorted(addresses)) or "none")
            )
    elif interface:
        interfaces = facts.get("interfaces") or []
        if str(interface) not in interfaces:
            errors.append(
                "host %s: swarm_advertise_interface=%s does not exist (interfaces: %s). "
                "Fix: name one of them, or unset it to use the default IPv4."
                % (host, interface, ", ".join(sorted(interfaces)))
            )
        elif not swarm_advertise_address(host_vars):
            errors.append(
                "host %s: swarm_advertise_interface=%s has no IPv4 address. Fix: set swarm_advertise_addr."
                % (host, interface)
            )
    elif not swarm_advertise_address(host_vars):
        errors.append(
            "host %s has no default IPv4 route, so no address to advertise. "
            "Fix: set swarm_advertise_addr or swarm_advertise_interface for it." % host
        )
    options = host_vars.get("docker_engine_daemon_options") or {}
    if options.get("live-restore"):
        errors.append(
            "host %s: docker_engine_daemon_options sets live-restore: true, which swarm mode rejects. "
            "Fix: remove live-restore (or set it to false)." % host
        )
    probe = _probe(host_vars)
    if probe.get("swarm_state") in ("pending", "error"):
        errors.append(
            "host %s: its engine is in swarm state '%s'%s. Fix: make it leave "
            "(ansible -m swarmplane.cluster.swarm -a 'state=absent force=true' %s), then re-run."
            % (host, probe["swarm_state"], " (%s)" % probe["swarm_error"] if probe.get("swarm_error") else "", host)
        )
    if probe.get("swarm_state") == "locked":
        errors.append(
            "host %s: its swarm is locked (autolock). Fix: `docker swarm unlock` on it with the unlock key." % host
        )
    return errors


def swarm_live_managers(managers, hostvars, play_hosts):
    """Reachable managers of the inventory that are active managers of a swarm."""
    live = []
    for host in managers:
        if host not in play_hosts or _unreachable(hostvars[host]):
            continue
        probe = _probe(hostvars[host])
        if probe.get("in_swarm") and probe.get("is_manager"):
            live.append(host)
    return live


def swarm_bootstrap_host(managers, hostvars, play_hosts):
    """The manager to drive the swarm from: a live manager (the leader if reachable), else the first reachable one."""
    live = swarm_live_managers(managers, hostvars, play_hosts)
    for host in live:
        probe = _probe(hostvars[host])
        if probe.get("leader") and probe.get("leader") == probe.get("hostname"):
            return host
    if live:
        return live[0]
    reachable = [h for h in managers if h in play_hosts and not _unreachable(hostvars[h])]
    return reachable[0] if reachable else None


def swarm_preflight(groups, hostvars, play_hosts):
    """Check the inventory against what every host reported. Returns dict(errors=[...], warnings=[...])."""
    errors = swarm_inventory_errors(groups)
    warnings = []
    managers = list(groups.get("managers") or [])
    workers = list(groups.get("workers") or [])
    hosts = [h for h in managers + workers if h in play_hosts]
    live = swarm_live_managers(managers, hostvars, play_hosts)
    unreachable = [h for h in hosts if _unreachable(hostvars[h])]
    for host in unreachable:
        message = "host %s (%s) is unreachable: %s" % (
            host,
            _where(host, hostvars[host]),
            (_probe(hostvars[host]).get("msg") or "").replace("Task failed: ", "").strip(),
        )
        if host in managers and not live:
            errors.append(
                message + ". No swarm exists yet, so swarmplane will not form one without this manager. "
                "Fix: correct ansible_host/ansible_port or SSH access for it, or remove it from 'managers'."
            )
        else:
            warnings.append(message + "; it is skipped in this run (the rest of the cluster is handled).")
    for host in hosts:
        if host not in unreachable:
            errors.extend(_host_errors(host, hostvars[host]))
    clusters = {}
    for host in live:
        clusters.setdefault(_probe(hostvars[host]).get("cluster_id"), []).append(host)
    if len(clusters) > 1:
        errors.append(
            "managers are in different swarms: %s. swarmplane will not merge swarms. "
            "Fix: make the hosts of one swarm leave it (swarm state=absent force=true), or split the inventory."
            % "; ".join("%s in %s" % (", ".join(hs), cid) for cid, hs in sorted(clusters.items()))
        )
    elif not any(_probe(hostvars[h]).get("nodes_error") for h in live):
        # With no live manager every host already in a swarm is in someone else's.
        known = {n.get("id") for n in _probe(hostvars[live[0]]).get("nodes") or []} if live else set()
        for host in hosts:
            if host in unreachable or host in live:
                continue
            probe = _probe(hostvars[host])
            if probe.get("in_swarm") and probe.get("node_id") not in known:
                errors.append(
                    "host %s is in a swarm that no reachable manager of this inventory manages (its managers: %s). "
                    "Fix: make it leave that swarm (swarm state=absent force=true), or add that swarm's managers "
                    "to 'managers', then re-run."
                    % (host, ", ".join(m.get("addr", "?") for m in probe.get("remote_managers") or []) or "unknown")
                )
    if len(managers) % 2 == 0 and managers:
        warnings.append(
            "%d managers tolerate %d failed manager(s), as %d would: use an odd number of managers."
            % (len(managers), (len(managers) - 1) // 2, len(managers) - 1)
        )
    return dict(errors=errors, warnings=warnings)


def swarm_hosts_to_join(hosts, hostvars):
    """Hosts (of the given list) whose engine is not an active member of a swarm."""
    return [h for h in hosts if not _probe(hostvars[h]).get("in_swarm")]


def _wanted_availability(host, host_vars, managers):
    explicit = host_vars.get("swarm_node_availability")
    if explicit:
        return explicit
    if host in managers:
        return host_vars.get("swarm_manager_availability")
    return host_vars.get("swarm_worker_availability")


def swarm_join_availability(host, host_vars, managers):
    """Availability a host joins with (None: the engine's default, active)."""
    return _wanted_availability(host, host_vars, managers)


def swarm_reconcile_plan(nodes, hosts, hostvars, managers, node_ids):
    """Node changes the inventory asks for: a list of dict(node, host, role, availability, labels), only where they differ.

    nodes: the live node list (swarm_info rows); node_ids: inventory host -> node ID.
    Availability and labels are enforced only when declared; the role always follows the groups.
    """
    by_id = {n["id"]: n for n in nodes}
    plan = []
    for host in hosts:
        node = by_id.get(node_ids.get(host) or "")
        if node is None:
            continue
        host_vars = hostvars[host]
        change = {}
        role = "manager" if host in managers else "worker"
        if node.get("role") != role:
            change["role"] = role
        availability = _wanted_availability(host, host_vars, managers)
        if availability and str(node.get("availability", "")).lower() != availability:
            change["availability"] = availability
        labels = {str(k): str(v) for k, v in (host_vars.get("swarm_node_labels") or {}).items()}
        current = node.get("labels") or {}
        if any(current.get(k) != v for k, v in labels.items()):
            change["labels"] = labels
        if change:
            plan.append(dict(change, node=node["id"], host=host))
    # Promote before demoting, so the manager count never dips on the way.
    plan.sort(key=lambda c: 0 if c.get("role") == "manager" else 1)
    return plan


def swarm_stale_nodes(nodes, hosts, node_ids):
    """Worker entries left behind by inventory hosts that joined again under a new node ID.

    An entry is stale when another node ID has the same hostname and address as the host's current node:
    the same machine, which can never come back under the old ID. Right after the re-join the manager may
    still list the old entry as Ready, so the status is not what decides. Two machines that share a
    hostname but not an address are left alone.
    """
    by_id = {n.get("id"): n for n in nodes or []}
    stale = []
    for host in hosts:
        current = by_id.get(node_ids.get(host))
        if current is None:
            continue
        for node in nodes or []:
            if (
                node.get("id") != current["id"]
                and node.get("hostname") == current.get("hostname")
                and node.get("address") == current.get("address")
                and node.get("role") == "worker"
            ):
                stale.append(dict(node=node["id"], host=host))
    return stale


def swarm_node_table(nodes, self_id=None):
    """Nodes as `docker node ls` prints them (the current node marked with *)."""
    headers = ("ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION", "ADDRESS")
    rows = []
    for node in nodes or []:
        node_id = str(node.get("id") or "")
        marker = " *" if self_id and node_id == self_id else ""
        rows.append(
            (
                node_id + marker,
                str(node.get("hostname") or ""),
                str(node.get("status") or ""),
                str(node.get("availability") or ""),
                str(node.get("manager_status") or ""),
                str(node.get("engine_version") or ""),
                str(node.get("address") or ""),
            )
        )
    widths = [max(len(r[i]) for r in rows + [headers]) for i in range(len(headers))]
    lines = ["   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in [headers] + rows]
    return "\n".join(lines)


class FilterModule:
    def filters(self):
        return {
            "swarm_preflight": swarm_preflight,
            "swarm_inventory_errors": swarm_inventory_errors,
            "swarm_bootstrap_host": swarm_bootstrap_host,
            "swarm_live_managers": swarm_live_managers,
            "swarm_advertise_address": swarm_advertise_address,
            "swarm_hosts_to_join": swarm_hosts_to_join,
            "swarm_join_availability": swarm_join_availability,
            "swarm_reconcile_plan": swarm_reconcile_plan,
            "swarm_stale_nodes": swarm_stale_nodes,
            "swarm_node_table": swarm_node_table,
        }

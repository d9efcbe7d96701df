# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the swarmplane plays decide with: inventory checks, the bootstrap manager, the join and
reconcile plans, quorum arithmetic for demotions and engine restarts, the firewall's rules, and the node
table. Pure functions of inventory data and probe results."""

from __future__ import annotations

import ipaddress
import re
import shlex

DOCUMENTATION = r"""
name: swarm
short_description: Decisions of the swarmplane plays (preflight, bootstrap, plans, node table)
description:
  - C(swarm_probe_hosts) is the host pattern preflight probes (the swarm, and the load balancers when there are).
  - C(swarm_preflight) checks the inventory against what the hosts reported and returns errors and warnings.
  - C(swarm_bootstrap_host) picks the manager the swarm is formed or driven from.
  - C(swarm_advertise_address) resolves a host's advertise address.
  - C(swarm_node_ids) maps each host to its node ID, from this run's init or join or from the probe.
  - C(swarm_reconcile_plan) lists node changes (role, availability, labels) the inventory asks for.
  - C(swarm_restart_order) and C(swarm_restart_errors) order engine restarts and refuse those that would cost the
    swarm its quorum or leave a manager locked.
  - C(swarm_member_addresses) lists the addresses of the inventory's swarm hosts (the firewall's sources), and
    C(swarm_ufw_commands) / C(swarm_firewalld_commands) what to run so that only they reach the swarm's ports.
  - C(swarm_node_table) renders nodes as C(docker node ls) does.
"""

SWARM_GROUPS = ("managers", "workers")
# Groups every host of a swarm inventory is in anyway: not worth naming in an error.
IMPLICIT_GROUPS = ("all", "swarm", "ungrouped")
# The variable that lets one run demote several managers (one after another).
BULK_DEMOTION_VARIABLE = "swarm_allow_bulk_demotion"
FIREWALL_COMMENT = "swarmplane"


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


def swarm_probe_hosts(groups):
    """The host pattern preflight probes: the swarm's hosts, and the load balancers when the inventory has them."""
    return "swarm:loadbalancers" if "loadbalancers" in groups else "swarm"


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
    for host in sorted(set(groups.get("swarm") or []) - set(managers) - set(workers)):
        its_groups = sorted(g for g, members in groups.items() if host in (members or []) and g not in IMPLICIT_GROUPS)
        errors.append(
            "host %s is in 'swarm' but in neither 'managers' nor 'workers' (its groups: %s), so its role is unknown. "
            "Fix: put it under managers or workers; a misspelt group name (such as 'manager:') makes a group of its own."
            % (host, ", ".join(its_groups) or "swarm only")
        )
    return errors


def _host_errors(host, host_vars):
    probe = _probe(host_vars)
    if probe.get("failed"):
        message = "host %s: %s" % (host, str(probe.get("msg") or "reading its engine failed").rstrip("."))
        if "Fix:" not in message:
            message += ". Fix: see why its engine fails there (`docker info`, the engine's log), then re-run"
        return [
            message + ". swarmplane leaves an engine that is there but fails alone (no reinstall, no restart); "
            "if it is only slow to answer, raise swarm_probe_timeout (%s s now)."
            % host_vars.get("swarm_probe_timeout", 60)
        ]
    if probe.get("nodes_error"):
        return [_nodes_error_message(host, probe["nodes_error"])]
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
    if probe.get("swarm_state") == "locked" and not host_vars.get("swarm_unlock_key"):
        errors.append(
            "host %s: its swarm is locked (autolock): its engine restarted and waits for the unlock key, and "
            "swarm_unlock_key is not set. Fix: give the key as swarm_unlock_key (for example from the vault file "
            "swarm_unlock_key_vault_file wrote: -e @<file> --vault-id <id>), or run `docker swarm unlock` on it, "
            "then re-run." % host
        )
    return errors


def _nodes_error_message(host, text):
    message = "host %s is a manager that cannot list the swarm's nodes: %s." % (host, str(text).rstrip("."))
    if "leader" in text.lower() or "quorum" in text.lower():
        return message + (
            " The swarm has no leader: too few managers are reachable for a quorum. Fix: bring managers back "
            "(start their engines, unlock locked ones), or recover from this one with "
            "`docker swarm init --force-new-cluster`, then re-run."
        )
    return message + " Fix: see why its engine fails (`docker node ls` and the engine's log there), then re-run."


def _vault_errors(host_vars):
    """The settings that keep the unlock key in a vault file must name a password source Ansible can read unattended."""
    if not host_vars.get("swarm_unlock_key_vault_file"):
        return []
    vault_id = str(host_vars.get("swarm_unlock_key_vault_id") or "")
    if not vault_id:
        return [
            "swarm_unlock_key_vault_file=%s is set but swarm_unlock_key_vault_id is not, so the key cannot be "
            "encrypted. Fix: set swarm_unlock_key_vault_id to the vault ID that encrypts it, as label@password-file "
            "(or a password file or script)." % host_vars["swarm_unlock_key_vault_file"]
        ]
    if vault_id.rpartition("@")[2] == "prompt":
        return [
            "swarm_unlock_key_vault_id=%s asks for a prompt, which a run cannot answer. Fix: name a password file "
            "or script instead (label@/path/to/password-file)." % vault_id
        ]
    return []


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


def leader_first(live, hostvars):
    """Of live managers, the leader when it is among them, else the first (None for none)."""
    for host in live:
        probe = _probe(hostvars[host])
        if probe.get("leader") and probe.get("leader") == probe.get("hostname"):
            return host
    return live[0] if live else None


def swarm_bootstrap_host(managers, hostvars, play_hosts):
    """The manager to drive the swarm from: a live manager (the leader if reachable), else the first reachable one."""
    live = swarm_live_managers(managers, hostvars, play_hosts)
    if live:
        return leader_first(live, hostvars)
    reachable = [h for h in managers if h in play_hosts and not _unreachable(hostvars[h])]
    return reachable[0] if reachable else None


def _lookup_answer(result):
    """Why one manager asked by the manager lookup of a limited run cannot drive it."""
    if result.get("unreachable"):
        return "unreachable (%s)" % (result.get("msg") or "").replace("Task failed: ", "").strip()
    if result.get("failed"):
        return "failed: %s" % (result.get("msg") or "").strip()
    if result.get("docker_available") is False:
        return "its engine is not running"
    if not result.get("in_swarm"):
        return "not in a swarm"
    return "a worker, not a manager"


def _no_manager_error(hosts, managers, lookup):
    asked = {r.get("item"): _lookup_answer(r) for r in lookup or [] if r.get("item") and not r.get("skipped")}
    answers = "; ".join("%s: %s" % (m, asked.get(m, "not asked")) for m in managers) or "the group 'managers' is empty"
    return (
        "this run's hosts (%s) hold no manager, and no manager outside them answered as a live swarm manager (%s). "
        "Hosts join through a live manager. Nothing was changed. Fix: run cluster.yml without --limit to form the "
        "swarm first, bring a manager back, or add a live manager to --limit." % (", ".join(hosts), answers)
    )


def swarm_preflight(groups, hostvars, play_hosts, lookup=None):
    """Check the inventory against what every host reported. Returns dict(errors=[...], warnings=[...]).

    play_hosts: the hosts probed (the run's hosts, plus a live manager found outside a --limit); lookup: the
    results of that manager lookup, when there was one.
    """
    errors = swarm_inventory_errors(groups)
    warnings = []
    managers = list(groups.get("managers") or [])
    workers = list(groups.get("workers") or [])
    probed = set(play_hosts)
    hosts = [h for h in managers + workers if h in probed]
    if managers and hosts and not set(hosts) & set(managers):
        errors.append(_no_manager_error(hosts, managers, lookup))
    live = swarm_live_managers(managers, hostvars, play_hosts)
    unreachable = [h for h in hosts if _unreachable(hostvars[h])]
    down = set(unreachable)
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
        if host not in down:
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
        skipped = down | set(live)
        for host in hosts:
            if host in skipped:
                continue
            probe = _probe(hostvars[host])
            if probe.get("in_swarm") and probe.get("node_id") not in known:
                errors.append(
                    "host %s is in a swarm that no reachable manager of this inventory manages (its managers: %s). "
                    "Fix: make it leave that swarm (swarm state=absent force=true), or add that swarm's managers "
                    "to 'managers', then re-run."
                    % (host, ", ".join(m.get("addr", "?") for m in probe.get("remote_managers") or []) or "unknown")
                )
    if live:
        bootstrap = swarm_bootstrap_host(managers, hostvars, play_hosts)
        reachable = [h for h in hosts if h not in down]
        errors.extend(_membership_errors(groups, hostvars, reachable, hostvars[bootstrap]))
    if hosts:
        errors.extend(_vault_errors(hostvars[hosts[0]]))
    if len(managers) % 2 == 0 and managers:
        warnings.append(
            "%d managers tolerate %d failed manager(s), as %d would: use an odd number of managers."
            % (len(managers), (len(managers) - 1) // 2, len(managers) - 1)
        )
    return dict(errors=errors, warnings=warnings)


# --------------------------------------------------------------------------- quorum arithmetic


def _tolerates(managers):
    """How many managers a raft of this size can lose and keep its quorum."""
    return max(0, (managers - 1) // 2)


def _quorum(managers):
    return managers // 2 + 1


def quorum_arithmetic(count, reachable, down, change, count_after, reachable_after):
    """The arithmetic of a membership change refused for the quorum, as its message says it: the managers now (down:
    the names of those not reachable), and what `change` would leave."""
    return (
        "it has %d managers, %d reachable%s; %s would leave %d managers of which %d reachable, and %d managers need %d "
        "reachable (a majority)"
        % (
            count,
            reachable,
            " (unreachable: %s)" % ", ".join(down) if down else "",
            change,
            count_after,
            reachable_after,
            count_after,
            _quorum(count_after),
        )
    )


def _is_reachable_manager(row):
    return row.get("manager_status") in ("Leader", "Reachable")


def _manager_rows(nodes):
    return [n for n in nodes or [] if n.get("role") == "manager"]


def _node_of(host_vars, by_id, by_address):
    """The host's node: by the ID its engine reports, or, when its engine is not running (this run starts it),
    or it is locked, by its advertise address."""
    probe = _probe(host_vars)
    if probe.get("node_id"):
        return by_id.get(probe["node_id"])
    if probe.get("docker_available") is False or probe.get("swarm_state") == "locked":
        address = swarm_advertise_address(host_vars)
        return by_address.get(_strip_port(address)) if address else None
    return None


def _role_changes(managers, hostvars, hosts, nodes):
    """What this run does to the managers: (promoted, demoted, joining, returning).

    promoted/demoted: (host, node) whose node becomes or stops being a manager; joining: hosts that join as new
    managers; returning: manager nodes of hosts whose engine this run starts, or that it unlocks (the key is given),
    which are back before any demotion.
    """
    by_id = {n.get("id"): n for n in nodes}
    by_address = {str(n.get("address")): n for n in nodes if n.get("address")}
    promoted, demoted, joining, returning = [], [], [], []
    for host in hosts:
        probe = _probe(hostvars[host])
        node = _node_of(hostvars[host], by_id, by_address)
        wanted = "manager" if host in managers else "worker"
        if node is None:
            if wanted == "manager" and not probe.get("in_swarm") and probe.get("swarm_state") != "locked":
                joining.append(host)
            continue
        unlocks = probe.get("swarm_state") == "locked" and hostvars[host].get("swarm_unlock_key")
        if node.get("role") == "manager" and (probe.get("docker_available") is False or unlocks):
            returning.append(node)
        if node.get("role") == "worker" and wanted == "manager":
            promoted.append((host, node))
        elif node.get("role") == "manager" and wanted == "worker":
            demoted.append((host, node))
    return promoted, demoted, joining, returning


def _membership_errors(groups, hostvars, hosts, bootstrap_vars):
    """Refuse a run whose demotions would cost the quorum, or that demotes several managers without being told to."""
    nodes = _probe(bootstrap_vars).get("nodes") or []
    managers = list(groups.get("managers") or [])
    promoted, demoted, joining, returning = _role_changes(managers, hostvars, hosts, nodes)
    if not demoted:
        return []
    rows = _manager_rows(nodes)
    # Reachable now, or back once this run has started its engine.
    up = {r.get("id") for r in rows if _is_reachable_manager(r)} | {n.get("id") for n in returning}
    count, reachable = len(rows), len(up)
    count_after = count + len(promoted) + len(joining) - len(demoted)
    reachable_after = (
        reachable
        + sum(1 for _h, n in promoted if n.get("status") == "Ready")
        + len(joining)
        - sum(1 for _h, n in demoted if n.get("id") in up)
    )
    names = ", ".join(h for h, _n in demoted)
    if reachable_after < _quorum(count_after):
        down = [r.get("hostname") or r.get("id") for r in rows if r.get("id") not in up]
        return [
            "this run would cost the swarm its quorum: %s. Nothing was changed. Fix: bring %s back first (start its "
            "engine, unlock it), or keep %s under 'managers', then re-run."
            % (
                quorum_arithmetic(count, reachable, down, "demoting %s" % names, count_after, reachable_after),
                ", ".join(down) or "the unreachable managers",
                names,
            )
        ]
    if len(demoted) > 1 and not bootstrap_vars.get(BULK_DEMOTION_VARIABLE):
        return [
            "this run would demote %d managers at once: %s (under 'workers' in the inventory, managers in the swarm). "
            "The swarm has %d managers and tolerates %d unavailable; after this run it would have %d, tolerating %d. "
            "A misplaced group line demotes managers by accident, so swarmplane demotes one manager per run unless "
            "told otherwise. Nothing was changed. Fix: if this is not meant, put them back under 'managers'; to demote "
            "them, move one per run, or set %s: true to demote them one after another in this run."
            % (
                len(demoted),
                names,
                count,
                _tolerates(count),
                count_after,
                _tolerates(count_after),
                BULK_DEMOTION_VARIABLE,
            )
        ]
    return []


def swarm_hosts_to_join(hosts, hostvars):
    """Hosts (of the given list) whose engine is not an active member of a swarm."""
    return [h for h in hosts if not _probe(hostvars[h]).get("in_swarm")]


def swarm_node_ids(hosts, hostvars):
    """host -> node ID: what this run's init or join returned, else what the probe found ('' when neither)."""
    ids = {}
    for host in hosts:
        host_vars = hostvars[host]
        returned = [
            (host_vars.get(key) or {}).get("node_id") for key in ("swarm_bootstrap_result", "swarm_join_result")
        ]
        ids[host] = next((i for i in returned if i), None) or _probe(host_vars).get("node_id") or ""
    return ids


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


NO_HOST = "(a join that did not finish)"


def _never_registered(node):
    return (
        not node.get("hostname")
        and not node.get("address")
        and node.get("status") != "Ready"
        and not node.get("manager_status")
    )


def swarm_stale_nodes(nodes, hosts, node_ids):
    """Entries left behind by inventory hosts that joined again under a new node ID: [{node, host, role}].

    An entry is stale when another node ID has the same hostname and address as the host's current node:
    the same machine, which can never come back under the old ID. Right after the re-join the manager may
    still list the old entry as Ready, so the status is not what decides. Two machines that share a
    hostname but not an address are left alone. An old manager entry (a manager that left with --force without
    being demoted) still counts in the raft: its role says it must be demoted before it is removed. An old manager
    entry the raft lists as reachable is taken for stale only once its node is Down: the raft may call it reachable
    because the machine's new manager answers at the same address, but a node that stopped sending heartbeats is gone.

    Also stale: the entry a manager's join leaves when its engine fails after the swarm's CA registered it (a listen
    address already in use): no hostname, no address, never Ready, not in the raft. Not in the raft, it has nothing
    to demote; its host is unknown.
    """
    by_id = {n.get("id"): n for n in nodes or []}
    by_machine = {}  # (hostname, address) -> the nodes listed for it, in list order
    for node in nodes or []:
        by_machine.setdefault((node.get("hostname"), node.get("address")), []).append(node)
    stale = []
    for host in hosts:
        current = by_id.get(node_ids.get(host))
        if current is None:
            continue
        for node in by_machine.get((current.get("hostname"), current.get("address")), []):
            if node.get("id") != current["id"] and (node.get("status") == "Down" or not _is_reachable_manager(node)):
                stale.append(dict(node=node["id"], host=host, role=node.get("role") or "worker"))
    for node in nodes or []:
        if _never_registered(node):
            stale.append(dict(node=node["id"], host=NO_HOST, role="worker"))
    return stale


# --------------------------------------------------------------------------- engine restarts


def swarm_restart_order(hosts, hostvars, pending_fact=None):
    """Hosts whose engine restarts (those whose host variable pending_fact is true, when it is given), in the order
    that disturbs the swarm least: workers, then managers, the leader last."""
    if pending_fact:
        hosts = [h for h in hosts if hostvars[h].get(pending_fact)]

    def rank(host):
        probe = _probe(hostvars[host])
        if not probe.get("is_manager"):
            return 0
        return 2 if probe.get("leader") and probe.get("leader") == probe.get("hostname") else 1

    return sorted(hosts, key=rank)


def swarm_restart_errors(hosts, hostvars, unlock_key_given=False):
    """Why restarting the engines of these hosts, one at a time, would cost the swarm its quorum or leave a manager
    locked (no key to unlock it). Reads the node list and autolock from the managers' probes."""
    managers = [h for h in hosts if _probe(hostvars[h]).get("is_manager")]
    if not managers:
        return []
    probe = _probe(hostvars[managers[0]])
    names = ", ".join(managers)
    errors = []
    if probe.get("autolock") and not unlock_key_given:
        errors.append(
            "the engines of the managers %s would restart (a changed docker_engine_daemon_options or new packages), and "
            "the swarm has autolock on: a restarted manager stays locked until it gets the unlock key, and "
            "swarm_unlock_key is not set. Nothing was changed. Fix: give the key as swarm_unlock_key (for example "
            "-e @<vault file> --vault-id <id>, the file swarm_unlock_key_vault_file writes), then re-run." % names
        )
    rows = _manager_rows(probe.get("nodes"))
    down = [r.get("hostname") or r.get("id") for r in rows if not _is_reachable_manager(r)]
    tolerates = _tolerates(len(rows))
    if tolerates and len(down) + 1 > tolerates:
        errors.append(
            "restarting the engine of a manager (%s) takes it out of the raft until it is back: the swarm has %d "
            "managers and tolerates %d unavailable, and %s %s unreachable already, so one more would cost the quorum. "
            "Nothing was restarted. Fix: bring %s back first (start its engine, unlock it), then re-run."
            % (names, len(rows), tolerates, ", ".join(down), "is" if len(down) == 1 else "are", ", ".join(down))
        )
    return errors


def swarm_restart_warnings(hosts, hostvars):
    """What restarting these hosts' engines costs without being refused: a swarm of 2 managers (or any even raft
    that tolerates no loss) has no quorum while one of them restarts."""
    managers = [h for h in hosts if _probe(hostvars[h]).get("is_manager")]
    if not managers:
        return []
    rows = _manager_rows(_probe(hostvars[managers[0]]).get("nodes"))
    if len(rows) < 2 or _tolerates(len(rows)):
        return []
    return [
        "restarting the engine of the managers %s, one at a time: the swarm has %d managers and tolerates none "
        "unavailable, so while each restarts the swarm has no quorum (no scheduling, no service or node changes) "
        "until it is back. Fix, to restart without that: run an odd number of managers (3 tolerate 1)."
        % (", ".join(managers), len(rows))
    ]


# --------------------------------------------------------------------------- firewall


def _ip(text):
    try:
        return str(ipaddress.ip_address(str(text)))
    except ValueError:
        return None


class _NodeRowAddresses:
    """The addresses the swarm itself lists for its nodes (Status.Addr), by node ID and by hostname, from every
    manager's probe; indexed once, on first use, so that hosts without an address of their own cost a lookup each
    rather than a walk over every host's probe."""

    def __init__(self, hostvars):
        self.hostvars = hostvars
        self.index = None

    def _build(self):
        index = {}
        for other in self.hostvars.values():
            for row in _probe(other).get("nodes") or []:
                address = _ip(row.get("address"))
                if address and address != "0.0.0.0":
                    index.setdefault(("id", row.get("id")), address)
                    index.setdefault(("hostname", row.get("hostname")), address)
        return index

    def of(self, host, host_vars):
        """The node whose id is the host's node_id, else whose hostname is the host's name (or its facts')."""
        if self.index is None:
            self.index = self._build()
        node_id = _probe(host_vars).get("node_id")
        if node_id:
            return self.index.get(("id", node_id))
        names = [str(host), str(_facts(host_vars).get("hostname") or "")]
        return next((self.index[("hostname", n)] for n in names if n and ("hostname", n) in self.index), None)


def _member_addresses(host, host_vars, rows):
    """(addresses, why): the addresses swarm traffic of this host comes from, best source first: its advertise
    address (swarm_advertise_addr, else the probe's node address, else swarm_advertise_interface's or the default
    IPv4 from facts), else the address the swarm lists for its node, else ansible_host when it is an address; plus
    its data path address. why says, when none was found, why."""
    candidates = [
        lambda: _ip(_strip_port(host_vars.get("swarm_advertise_addr") or "")),
        lambda: _ip(_probe(host_vars).get("node_addr") or ""),
        lambda: _ip(_strip_port(swarm_advertise_address(host_vars) or "")),
        lambda: rows.of(host, host_vars),
        lambda: _ip(host_vars.get("ansible_host", "")),
    ]
    found = []
    for candidate in candidates:
        address = candidate()
        if address:
            found.append(address)
            break
    data_path = host_vars.get("swarm_data_path_addr") or ""
    data_path = _ip(data_path) or (_facts(host_vars).get("interface_ipv4") or {}).get(str(data_path))
    if data_path and data_path not in found:
        found.append(data_path)
    if found:
        return found, None
    if _unreachable(host_vars):
        why = "unreachable in this run (no facts, no probe)"
    elif not _facts(host_vars) and not _probe(host_vars):
        why = "not contacted in this run (no facts, no probe)"
    else:
        why = "no swarm_advertise_addr, and its facts show no default IPv4"
    where = host_vars.get("ansible_host")
    if where:
        why += ", and its ansible_host (%s) is a name, not an address" % where
    return [], why


def _members(groups):
    """managers then workers, each host once, in inventory order."""
    return list(dict.fromkeys(list(groups.get("managers") or []) + list(groups.get("workers") or [])))


def swarm_member_addresses(groups, hostvars):
    """The addresses the inventory's swarm hosts reach each other from (see _member_addresses for the sources, best
    first). Hosts whose address is not known are not in the list: swarm_unresolved_members names them, and the
    firewall then deletes no rule (a member down in this run keeps its access for when it returns)."""
    addresses = {}  # an ordered set
    rows = _NodeRowAddresses(hostvars)
    for host in _members(groups):
        found, _why = _member_addresses(host, hostvars[host], rows)
        addresses.update(dict.fromkeys(found))
    return list(addresses)


def swarm_unresolved_members(groups, hostvars):
    """'host: why' for each swarm host of the inventory whose address none of the sources gives."""
    unresolved = []
    rows = _NodeRowAddresses(hostvars)
    for host in _members(groups):
        found, why = _member_addresses(host, hostvars[host], rows)
        if not found:
            unresolved.append("%s: %s" % (host, why))
    return unresolved


def _ufw_rules(ports, sources):
    rules = []
    for source in sources:
        for port in ports:
            number, _sep, proto = str(port).partition("/")
            rules.append(
                "allow from %s to any port %s proto %s comment '%s'" % (source, number, proto, FIREWALL_COMMENT)
            )
        rules.append("allow from %s proto esp comment '%s'" % (source, FIREWALL_COMMENT))
    return rules


def swarm_ufw_commands(added, ports, sources, legacy_ports=(), keep=False):
    """ufw argument lists that make the swarm's ports and ESP reachable from `sources` only.

    added: the output of `ufw show added` (rules as ufw commands, in ufw's own spelling, which the wanted rules
    use too). Rules of swarmplane carry the comment 'swarmplane'; those no longer wanted are deleted, and so are
    the any-source rules earlier versions added (legacy_ports, and ESP from anywhere). New rules come first, so
    members never lose access on the way. keep: add only, delete nothing (some member's address is unknown in this
    run, so a rule that looks stale may be that member's).
    """
    current = [line[len("ufw ") :].strip() for line in str(added).splitlines() if line.startswith("ufw ")]
    wanted = _ufw_rules(ports, sources)
    legacy = ["allow %s" % p for p in legacy_ports] + ["allow to any proto esp"]
    commands = [shlex.split(rule) for rule in wanted if rule not in current]
    if keep:
        return commands
    for rule in current:
        stale = rule.endswith(" comment '%s'" % FIREWALL_COMMENT) and rule not in wanted
        if stale or rule in legacy:
            commands.append(["delete"] + shlex.split(rule))
    return commands


def _rich_rule(source, port):
    """A firewalld rich rule, in the form `firewall-cmd --list-rich-rules` prints, letting `source` reach `port`
    (P/PROTO, or "esp")."""
    family = "ipv6" if ":" in source else "ipv4"
    if port == "esp":
        element = 'protocol value="esp"'
    else:
        number, _sep, proto = port.partition("/")
        element = 'port port="%s" protocol="%s"' % (number, proto)
    return 'rule family="%s" source address="%s" %s accept' % (family, source, element)


def _rich_rule_key(rule):
    """(source, port) of a rich rule that accepts one source on one port or ESP; None for any other rule."""
    source = re.search(r'source address="([^"]+)"', rule)
    port = re.search(r'port port="(\d+)" protocol="(\w+)"', rule)
    esp = re.search(r'protocol value="esp"', rule)
    if not source or not rule.rstrip().endswith(" accept") or " NOT " in rule.upper() or not (port or esp):
        return None
    return (source.group(1), "%s/%s" % port.groups() if port else "esp")


def swarm_firewalld_commands(state, ports, sources, legacy_ports=(), keep=False):
    """firewall-cmd argument lists that make the swarm's ports and ESP reachable from `sources` only, with rich
    rules in the default zone (one per source and port, and per source for ESP).

    Rich rules, not a zone of sources: a source bound to a zone has all its traffic judged by that zone alone, so
    the members would lose SSH and every other port to each other. Rules of the swarm's ports (`ports`,
    `legacy_ports`) and ESP for sources no longer listed are removed, and so are the ports and ESP earlier versions
    opened to any source in the default zone; new rules come first, so members never lose access on the way.
    keep: add only, remove nothing (some member's address is unknown in this run).

    state: lines "rich RULE" (`--list-rich-rules`), "default-port P/PROTO" (`--list-ports`) and
    "default-protocol NAME" (`--list-protocols`), all of the default zone, permanent.
    """
    rich, open_ports, open_protocols = [], [], []
    for line in str(state).splitlines():
        key, _sep, value = line.strip().partition(" ")
        {"rich": rich, "default-port": open_ports, "default-protocol": open_protocols}.get(key, []).append(value)
    current = {}
    for rule in rich:
        key = _rich_rule_key(rule)
        if key:
            current.setdefault(key, []).append(rule)
    swarm_ports = set(ports) | set(legacy_ports) | {"esp"}
    wanted = [(source, port) for source in sources for port in list(ports) + ["esp"]]
    commands = [["--permanent", "--add-rich-rule=%s" % _rich_rule(*key)] for key in wanted if key not in current]
    if keep:
        return commands
    for key, rules in current.items():
        if key[1] in swarm_ports and key not in wanted:
            commands += [["--permanent", "--remove-rich-rule=%s" % rule] for rule in rules]
    commands += [["--permanent", "--remove-port=%s" % p] for p in legacy_ports if p in open_ports]
    if "esp" in open_protocols:
        commands.append(["--permanent", "--remove-protocol=esp"])
    return commands


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
            "swarm_probe_hosts": swarm_probe_hosts,
            "swarm_bootstrap_host": swarm_bootstrap_host,
            "swarm_live_managers": swarm_live_managers,
            "swarm_advertise_address": swarm_advertise_address,
            "swarm_hosts_to_join": swarm_hosts_to_join,
            "swarm_node_ids": swarm_node_ids,
            "swarm_join_availability": swarm_join_availability,
            "swarm_reconcile_plan": swarm_reconcile_plan,
            "swarm_stale_nodes": swarm_stale_nodes,
            "swarm_restart_order": swarm_restart_order,
            "swarm_restart_errors": swarm_restart_errors,
            "swarm_restart_warnings": swarm_restart_warnings,
            "swarm_member_addresses": swarm_member_addresses,
            "swarm_unresolved_members": swarm_unresolved_members,
            "swarm_ufw_commands": swarm_ufw_commands,
            "swarm_firewalld_commands": swarm_firewalld_commands,
            "swarm_node_table": swarm_node_table,
        }

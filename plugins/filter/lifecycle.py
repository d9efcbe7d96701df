# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the node lifecycle plays decide with (remove-node.yml, reset.yml, scale.yml, token rotation, strict
mode). Pure functions of inventory data and probe results."""

from __future__ import annotations

from ansible_collections.swarmplane.cluster.plugins.filter.swarm import (
    _is_reachable_manager,
    _manager_rows,
    _probe,
    _quorum,
    _strip_port,
    _unreachable,
    leader_first,
    quorum_arithmetic,
    swarm_advertise_address,
    swarm_live_managers,
)

DOCUMENTATION = r"""
name: lifecycle
short_description: Decisions of the swarmplane node lifecycle plays (remove, reset, scale, rotation)
description:
  - C(swarm_node_names) reads the C(node) extra variable (comma-separated names, or a list).
  - C(swarm_removal_plan) checks a removal against the inventory and the live swarm (hosts known, quorum kept,
    unreachable hosts allowed) and lists the steps per node.
  - C(swarm_reset_plan) orders a whole-swarm reset (workers, then managers, the driving manager last).
  - C(swarm_rotate_kinds) turns C(swarm_rotate_tokens) into the token kinds to rotate, or raises a clear error.
  - C(swarm_unreachable_hosts) lists the hosts preflight found unreachable (strict mode).
  - C(swarm_scale_report) says what a scale run did to each of its hosts.
"""

ROTATE_CHOICES = {"": [], "worker": ["worker"], "manager": ["manager"], "both": ["worker", "manager"]}


def swarm_node_names(node):
    """`-e node=a,b` (or a YAML list) -> ['a', 'b']; blanks and repeats dropped, order kept."""
    if node is None:
        return []
    items = node if isinstance(node, (list, tuple)) else str(node).split(",")
    names = []
    for item in items:
        name = str(item).strip()
        if name and name not in names:
            names.append(name)
    return names


def _why_unreachable(host_vars):
    return (_probe(host_vars).get("msg") or "").replace("Task failed: ", "").strip() or "no answer"


def _find_node(host, host_vars, nodes):
    """The live node of an inventory host: by the node ID its engine reports, else by hostname and address
    (a host that is down); several matches prefer the one that is not Down."""
    probe = _probe(host_vars)
    by_id = {n.get("id"): n for n in nodes}
    if probe.get("node_id") in by_id:
        return by_id[probe["node_id"]]
    if probe.get("docker_available") and not probe.get("in_swarm") and probe.get("swarm_state") != "locked":
        return None
    names = {host, str((probe.get("host") or {}).get("hostname") or "")} - {""}
    addresses = {_strip_port(a) for a in (host_vars.get("ansible_host"), swarm_advertise_address(host_vars)) if a}
    matches = [n for n in nodes if n.get("hostname") in names or _strip_port(n.get("address") or "") in addresses]
    matches.sort(key=lambda n: n.get("status") == "Down")
    return matches[0] if matches else None


def _members(groups):
    managers = list(groups.get("managers") or [])
    return managers + [h for h in groups.get("workers") or [] if h not in managers]


def swarm_removal_name_errors(names, groups):
    """Errors in the hosts named for removal, from the inventory alone (no host contacted)."""
    members = _members(groups)
    if not names:
        return [
            "remove-node.yml needs the hosts to remove: -e node=<inventory name>[,<name>...] (hosts of the groups "
            "'managers' and 'workers'). Nothing was changed."
        ]
    unknown = [n for n in names if n not in members]
    if unknown:
        return [
            "node=%s: %s %s not a host of this inventory's groups 'managers' or 'workers' (its hosts: %s). Nothing "
            "was changed. Fix: name inventory hosts, comma-separated, as `ansible-inventory --graph` lists them."
            % (",".join(names), ", ".join(unknown), "is" if len(unknown) == 1 else "are", ", ".join(members) or "none")
        ]
    return []


def swarm_removal_plan(names, groups, hostvars, probed, allow_unreachable=False):
    """Check a removal and list its steps. Returns dict(errors, warnings, manager, steps, absent).

    probed: the hosts the play probed. manager: the live manager the removal is driven from (not one being removed);
    steps: per node to remove, dict(host, node, hostname, role, reachable, demote, leave); absent: hosts already
    outside the swarm. Nothing is changed when errors is not empty.
    """
    managers = list(groups.get("managers") or [])
    errors, warnings, steps, absent = swarm_removal_name_errors(names, groups), [], [], []
    if errors:
        return dict(errors=errors, warnings=warnings, manager=None, steps=[], absent=[])
    manager = leader_first([h for h in swarm_live_managers(managers, hostvars, probed) if h not in names], hostvars)
    if manager is None:
        live = swarm_live_managers(managers, hostvars, probed)
        errors.append(
            "no live manager is left to drive the removal: %s. Nothing was changed. Fix: %s"
            % (
                "the only live managers (%s) are the ones to remove" % ", ".join(live)
                if live
                else "no manager of the inventory answered as a swarm manager",
                "a swarm cannot remove its last manager; to end the whole swarm run reset.yml"
                if live
                else "bring a manager back (start its engine, unlock it), then re-run",
            )
        )
        return dict(errors=errors, warnings=warnings, manager=None, steps=[], absent=[])
    nodes = _probe(hostvars[manager]).get("nodes") or []
    for host in names:
        host_vars = hostvars[host]
        reachable = not _unreachable(host_vars)
        node = _find_node(host, host_vars, nodes)
        if node is None:
            absent.append(host)
            continue
        if not reachable and not allow_unreachable:
            errors.append(
                "host %s is unreachable (%s): it cannot drain its own tasks or leave the swarm. Nothing was changed. "
                "Fix: bring it back, or, if it is gone for good, re-run with -e allow_unreachable=true to remove its "
                "node (node %s) without it leaving; if it ever comes back, run `docker swarm leave --force` there."
                % (host, _why_unreachable(host_vars), node.get("id"))
            )
            continue
        steps.append(
            dict(
                host=host,
                node=node.get("id"),
                hostname=node.get("hostname"),
                role=node.get("role"),
                reachable=reachable,
                demote=node.get("role") == "manager",
                leave=reachable and bool(_probe(host_vars).get("in_swarm")),
            )
        )
    errors.extend(_quorum_errors(nodes, [s for s in steps if s["demote"]]))
    return dict(errors=errors, warnings=warnings, manager=manager, steps=steps, absent=absent)


def _quorum_errors(nodes, leaving):
    """Refuse removing managers when the managers left would not hold a quorum; the arithmetic in the message."""
    if not leaving:
        return []
    rows = _manager_rows(nodes)
    count, reachable = len(rows), sum(1 for r in rows if _is_reachable_manager(r))
    ids = {s["node"] for s in leaving}
    count_after = count - len(ids)
    reachable_after = reachable - sum(1 for r in rows if r.get("id") in ids and _is_reachable_manager(r))
    names = ", ".join(s["host"] for s in leaving)
    if count_after < 1:
        return [
            "removing %s would remove the swarm's last manager (it has %d). Nothing was changed. Fix: a swarm needs a "
            "manager: promote another node first (put it under 'managers' and run cluster.yml), or end the whole "
            "swarm with reset.yml." % (names, count)
        ]
    if reachable_after < _quorum(count_after):
        down = [r.get("hostname") or r.get("id") for r in rows if not _is_reachable_manager(r)]
        change = "removing %s" % ("it" if len(leaving) == 1 else "them")
        return [
            "removing %s would cost the swarm its quorum: %s. Nothing was changed. Fix: bring the unreachable managers "
            "back first, or remove fewer managers in one run."
            % (names, quorum_arithmetic(count, reachable, down, change, count_after, reachable_after))
        ]
    return []


def swarm_reset_plan(hosts, hostvars, managers):
    """The order a whole-swarm reset leaves in: dict(workers, managers, last, unreachable).

    workers leave first (together); the other managers are demoted by `last` one at a time and leave; `last`, the
    live manager driving the reset (the leader when reachable), leaves last with force, which ends the swarm.
    """
    reachable = [h for h in hosts if not _unreachable(hostvars[h])]
    in_swarm = [
        h
        for h in reachable
        if _probe(hostvars[h]).get("in_swarm") or _probe(hostvars[h]).get("swarm_state") == "locked"
    ]
    last = leader_first(swarm_live_managers(managers, hostvars, hosts), hostvars)
    node_managers = [h for h in in_swarm if _probe(hostvars[h]).get("is_manager") or h in managers]
    return dict(
        workers=[h for h in in_swarm if h not in node_managers],
        managers=[h for h in node_managers if h != last],
        last=last,
        unreachable=[h for h in hosts if _unreachable(hostvars[h])],
    )


def swarm_rotate_kinds(value):
    """swarm_rotate_tokens (worker, manager, both, or empty) -> the token kinds to rotate."""
    key = str(value or "").strip().lower()
    if key not in ROTATE_CHOICES:
        raise ValueError(
            "swarm_rotate_tokens=%s is not a kind of join token. Nothing was changed. Fix: -e swarm_rotate_tokens="
            "worker, manager or both (or leave it unset)." % value
        )
    return ROTATE_CHOICES[key]


def swarm_rotate_errors(value):
    """[] when swarm_rotate_tokens is valid, else the message of swarm_rotate_kinds."""
    try:
        swarm_rotate_kinds(value)
    except ValueError as exc:
        return [str(exc)]
    return []


def swarm_unreachable_hosts(hosts, hostvars):
    """'host (why)' for each host whose preflight probe found it unreachable."""
    return [
        "%s (%s)" % (h, _why_unreachable(hostvars[h]))
        for h in hosts
        if h in hostvars and "swarm_probe" in hostvars[h] and _unreachable(hostvars[h])
    ]


def swarm_scale_report(hosts, hostvars, joined):
    """What a scale run did per host: joined now, or already a node (a no-op that says so)."""
    lines = []
    for host in hosts:
        probe = _probe(hostvars[host])
        if host in joined:
            lines.append("%s joined the swarm." % host)
        elif probe.get("in_swarm"):
            lines.append(
                "%s was already a node of the swarm (%s): nothing to join."
                % (host, "manager" if probe.get("is_manager") else "worker")
            )
    return lines


class FilterModule:
    def filters(self):
        return {
            "swarm_node_names": swarm_node_names,
            "swarm_removal_name_errors": swarm_removal_name_errors,
            "swarm_removal_plan": swarm_removal_plan,
            "swarm_reset_plan": swarm_reset_plan,
            "swarm_rotate_kinds": swarm_rotate_kinds,
            "swarm_rotate_errors": swarm_rotate_errors,
            "swarm_unreachable_hosts": swarm_unreachable_hosts,
            "swarm_scale_report": swarm_scale_report,
        }

# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the engine and swarm plays have left to do, from the preflight probe alone.

A run where every host reports nothing to do skips those plays: the probe's round trip is then the only module run
per host. Every reason listed here is something the docker_engine or swarm role would act on; when in doubt a reason
is given, so the roles run and decide as they always did.
"""

from __future__ import annotations

from ansible_collections.swarmplane.cluster.plugins.filter.swarm import (
    _probe,
    _unreachable,
    swarm_bootstrap_host,
    swarm_hosts_to_join,
    swarm_reconcile_plan,
    swarm_stale_nodes,
)

DOCUMENTATION = r"""
name: pending
short_description: What the engine and swarm plays have left to do, from the preflight probe
description:
  - C(swarm_pending_work) tells what the engine and swarm plays have to do among a run's hosts, as two lists of
    reasons. C(engine), what the docker_engine role would do on each host (engine down, locked manager, kernel drift,
    daemon.json, upgrades, firewall, from the host's C(docker_engine_wanted); nodes an interrupted restart left
    drained). C(swarm), joins, swarm settings, token rotation, role, availability and label changes, stale entries,
    nodes not Ready.
  - playbooks/nodes.yml runs the engine play only when C(engine) has a reason, and the swarm play when either has.
"""

DAEMON_JSON_OWNERSHIP = {"owner": "root", "group": "root", "mode": "0644"}


def _daemon_json_work(probe, wanted):
    path = wanted.get("daemon_json_path")
    state = (probe.get("files") or {}).get(path)
    if state is None:
        return ["%s was not probed" % path]
    if not state.get("exists"):
        return ["%s does not exist yet" % path]
    if state.get("checksum") != wanted["daemon_json_sha1"]:
        return ["%s differs from docker_engine_daemon_options" % path]
    if any(state.get(key) != value for key, value in DAEMON_JSON_OWNERSHIP.items()):
        return ["%s is not owned by root:root with mode 0644" % path]
    return []


def engine_pending_work(probe, wanted):
    """What the docker_engine role has to do on one host: a list of reasons, empty when nothing.

    probe: the host's swarm_probe; wanted: its docker_engine_wanted, the settings as the role reads them
    (daemon_json_sha1: of the rendered file, '' when no daemon options are declared; daemon_json_path, live_restore,
    upgrade, firewall, prepare_always). No docker_engine_wanted (the engine play's work.yml did not run) is work.
    """
    probe = probe or {}
    if wanted is None:
        return ["docker_engine_wanted is not set"]
    if not probe.get("docker_available"):
        return ["the engine does not answer (%s)" % (probe.get("docker_error") or "not probed")]
    work = []
    if probe.get("swarm_state") == "locked":
        work.append("its manager is locked (autolock)")
    if wanted.get("prepare_always"):
        work.append("docker_engine_prepare_always is true")
    elif probe.get("kernel_drift") is None:
        work.append("its kernel settings were not probed")
    elif probe["kernel_drift"]:
        work.append("kernel settings differ: %s" % "; ".join(probe["kernel_drift"]))
    if wanted.get("live_restore"):
        work.append("docker_engine_daemon_options sets live-restore (refused)")
    if wanted.get("upgrade"):
        work.append("docker_engine_upgrade is true")
    if wanted.get("firewall"):
        work.append("docker_engine_firewall_manage is true")
    if wanted.get("daemon_json_sha1"):
        work += _daemon_json_work(probe, wanted)
    return work


def _node_work(nodes, hosts, hostvars, managers):
    node_ids = {h: _probe(hostvars[h]).get("node_id") for h in hosts}
    work = ["%s: its node ID is unknown" % h for h in hosts if not node_ids[h]]
    by_id = {n.get("id"): n for n in nodes}
    for host in hosts:
        node = by_id.get(node_ids[host]) if node_ids[host] else None
        if node_ids[host] and node is None:
            work.append("%s: its node %s is not in the node list" % (host, node_ids[host]))
        elif node is not None and node.get("status") != "Ready":
            work.append("%s: its node is %s" % (host, node.get("status")))
    for change in swarm_reconcile_plan(nodes, hosts, hostvars, managers, node_ids):
        asked = ["%s %s" % (key, change[key]) for key in ("role", "availability") if key in change]
        if "labels" in change:
            asked.append("labels %s" % ",".join("%s=%s" % item for item in sorted(change["labels"].items())))
        asked = ", ".join(asked)
        work.append("%s: %s" % (change["host"], asked))
    for entry in swarm_stale_nodes(nodes, hosts, node_ids):
        work.append("%s: a stale entry (node %s)" % (entry["host"], entry["node"]))
    return work


def swarm_pending_work(hosts, hostvars, managers, wanted):
    """What the engine and swarm plays have to do among `hosts` (this run's reachable swarm hosts), as
    dict(engine=reasons, swarm=reasons). The engine play runs when `engine` has a reason, the swarm play when either
    has one (it follows what the engine play did); both are skipped when both are empty.

    wanted: outside_managers (live managers preflight found outside --limit), settings_declared, rotate_tokens,
    unlock_key_vault_file, restart_label.
    """
    outside = [h for h in wanted.get("outside_managers") or [] if h not in hosts]
    hosts = [h for h in hosts if not _unreachable(hostvars[h])]
    engine, swarm = [], []
    for host in hosts:
        reasons = engine_pending_work(_probe(hostvars[host]), hostvars[host].get("docker_engine_wanted"))
        engine += ["%s: %s" % (host, reason) for reason in reasons]
    swarm += ["%s: not in the swarm" % h for h in swarm_hosts_to_join(hosts, hostvars)]
    if wanted.get("settings_declared"):
        swarm.append("swarm settings are declared")
    if wanted.get("rotate_tokens"):
        swarm.append("swarm_rotate_tokens=%s" % wanted["rotate_tokens"])
    if wanted.get("unlock_key_vault_file"):
        swarm.append("swarm_unlock_key_vault_file is set")
    bootstrap = swarm_bootstrap_host(managers, hostvars, hosts + outside)
    probe = _probe(hostvars[bootstrap]) if bootstrap else {}
    nodes = probe.get("nodes") if probe.get("is_manager") and not probe.get("nodes_error") else None
    # Giving a drained node back its availability is the engine role's (it drained the node for a restart).
    restart_label = wanted.get("restart_label") or ""
    for node in nodes or []:
        if restart_label in (node.get("labels") or {}):
            engine.append("%s: left drained by an interrupted restart" % node.get("hostname"))
    if not engine and not swarm:
        swarm = ["no node list from a live manager"] if nodes is None else _node_work(nodes, hosts, hostvars, managers)
    return dict(engine=engine, swarm=swarm)


class FilterModule:
    def filters(self):
        return {
            "swarm_pending_work": swarm_pending_work,
        }

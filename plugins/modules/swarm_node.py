#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm_node
short_description: Labels, availability, role and removal of a Docker Swarm node, from a manager
version_added: "0.1.0"
description:
  - Runs on a swarm manager and changes one node (C(docker node update), C(docker node promote/demote),
    C(docker node rm)).
  - Reads the node's live spec, changes only what differs, and shows the difference in diff mode.
  - Refuses to demote or remove the last manager, and to demote a manager when the managers left would be too
    few reachable ones for a quorum (the message gives the arithmetic).
  - A promotion or demotion returns once the raft has taken it in (the node reachable as a manager, or no
    longer a raft member), within O(timeout) seconds, so that the next one starts from a settled swarm.
  - With O(availability=drain) and O(drain_wait=true), returns once the node's tasks have left it and the replicated
    services that had tasks there run them elsewhere again; tasks that cannot move (placement constraints that pin
    them to this node, host-mode published ports with no free node, C(max_replicas_per_node), resources) fail the
    module as soon as the engine says so, naming each task and the engine's reason. The node then stays drained.
  - Removal of a node that left (or of a dead one) goes in two steps for a manager, as the docker CLI does - first
    O(role=worker) (refused when the managers left would lack a quorum; an unreachable manager can be demoted), then
    O(state=absent) (with O(force=true) for a node that is not Down yet).
options:
  node:
    description:
      - Node ID or hostname. A hostname that matches several nodes (a stale C(Down) entry left by a host
        that joined again) resolves to the one that is not down; still ambiguous is an error.
    type: str
    required: true
  state:
    description: V(present) applies the settings; V(absent) removes the node from the swarm.
    type: str
    choices: [present, absent]
    default: present
  labels:
    description: Node labels to set.
    type: dict
  labels_state:
    description: V(merge) adds O(labels) to the existing ones; V(replace) makes them the only labels.
    type: str
    choices: [merge, replace]
    default: merge
  labels_to_remove:
    description: Label keys to remove.
    type: list
    elements: str
  availability:
    description: Whether the node takes tasks (V(active)), keeps but gets no new ones (V(pause)), or has its tasks moved away (V(drain)).
    type: str
    choices: [active, pause, drain]
  role:
    description: Promote to V(manager) or demote to V(worker).
    type: str
    choices: [manager, worker]
  force:
    description: With V(absent), remove a node that is not down (C(docker node rm --force)).
    type: bool
    default: false
  drain_wait:
    description:
      - With O(availability=drain), wait until no task that the engine wants running (desired state running or
        ready) is on the node any more, its containers stopped (unless the node is down), and every replicated
        service that had tasks there runs as many tasks elsewhere as it ran before (at most its replicas).
      - A task of a global service stops and does not move; it is waited for to stop, not to run elsewhere.
      - Fails, leaving the node drained, as soon as a replacement task of those services is pending with the
        scheduler's error (C(no suitable node ...)), or at O(drain_timeout); RV(stuck_tasks) lists each task with
        the engine's reason. Undo with O(availability=active).
      - Also applies when the node was drained already and tasks are still on their way off it; a drained node
        with no task left returns at once, unchanged.
      - In check mode nothing waits; RV(moved_tasks) and RV(stopped_tasks) say what would leave the node, and
        RV(stuck_tasks) the tasks no other Ready, active node's labels, role or hostname allow (the placement
        constraints alone - ports and resources are judged only by the engine).
    type: bool
    default: false
  drain_timeout:
    description: Seconds O(drain_wait) and O(wait_services) wait at most.
    type: int
    default: 300
  wait_services:
    description:
      - Names (or IDs) of services to wait for after the change, up to O(drain_timeout) seconds - until every task
        of each that the engine wants running runs (tasks assigned to a node that is not Ready and active are not
        counted, they wait for that node), and a replicated one runs its replicas.
      - Fails as soon as one of their tasks is pending with the scheduler's error, naming it (RV(stuck_tasks)).
      - Meant for the services RV(moved_tasks) and RV(stopped_tasks) of a drain returned, once the node is active
        again (a rolling restart). Services that no longer exist are skipped.
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
  diff_mode:
    support: full
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
- name: Keep tasks off a manager
  swarmplane.cluster.swarm_node:
    node: manager-1
    availability: drain

- name: Label a node for placement constraints
  swarmplane.cluster.swarm_node:
    node: worker-3
    labels:
      zone: b

- name: Promote a worker
  swarmplane.cluster.swarm_node:
    node: worker-1
    role: manager

- name: Drain a node and wait until its tasks run elsewhere (fails naming the tasks that cannot move)
  swarmplane.cluster.swarm_node:
    node: worker-2
    availability: drain
    drain_wait: true
    drain_timeout: 600
  delegate_to: manager-1
  register: drained

- name: Take the node back and wait until the services it ran are converged
  swarmplane.cluster.swarm_node:
    node: worker-2
    availability: active
    wait_services: "{{ (drained.moved_tasks | list) + (drained.stopped_tasks | list) }}"
  delegate_to: manager-1

- name: Remove a manager whose host is gone - demote it first, then remove it
  swarmplane.cluster.swarm_node:
    node: manager-3
    role: worker
  delegate_to: manager-1

- name: ... then remove it (force, in case it still shows Ready)
  swarmplane.cluster.swarm_node:
    node: manager-3
    state: absent
    force: true
  delegate_to: manager-1
"""

RETURN = r"""
node:
  description: The node after the run (before, in check mode), as swarm_info lists nodes.
  returned: when the node exists
  type: dict
changes:
  description: The fields that changed, with before and after.
  returned: always
  type: dict
moved_tasks:
  description:
    - Replicated services whose tasks left the node, with how many (in check mode - would leave it).
  returned: with drain_wait
  type: dict
  sample: {"web": 2, "api": 1}
stopped_tasks:
  description: Global services whose task on the node stopped (in check mode - would stop); they do not move.
  returned: with drain_wait
  type: dict
  sample: {"node-exporter": 1}
stuck_tasks:
  description:
    - Tasks that could not move (in check mode - that no other node's placement allows), each with C(service),
      C(task) (C(service.slot), or C(service.node) for a global service), C(id), C(state) and C(reason) (the
      engine's error or message). On failure, also the tasks still on the node.
  returned: with drain_wait or wait_services, when there are any
  type: list
  elements: dict
  sample: [{"service": "db", "task": "db.1", "id": "kx0...", "state": "pending",
            "reason": "no suitable node (scheduling constraints not satisfied on 4 nodes)"}]
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    ENGINE_ARGUMENT_SPEC,
    Deadline,
    EngineClient,
    EngineError,
    NotYet,
    SwarmDecisionError,
    count_managers,
    local_node_state,
    node_row,
    node_spec_changes,
    wait_for,
)
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import constraint_matches

# Desired states of a task the engine wants on its node; observed states of a container still there.
WANTED_RUNNING = ("running", "ready")
STILL_RUNNING = ("starting", "running")
# Observed states of a task that ended badly; the orchestrator starts another in its slot.
FAILED = ("failed", "rejected")
# Seconds between two looks at the tasks while waiting.
POLL_INTERVAL = 1.0


def find_node(nodes, wanted):
    """The node `wanted` names, resolved as the docker CLI does: exact ID, then hostname, then unique ID prefix.

    Several nodes with one hostname (a stale Down entry left by a host that joined again) resolve to the
    one that is not down. Raises SwarmDecisionError when the name stays ambiguous.
    """
    exact = [n for n in nodes if n["ID"] == wanted]
    if exact:
        return exact[0]
    named = [n for n in nodes if (n.get("Description") or {}).get("Hostname") == wanted]
    if len(named) > 1:
        named = [n for n in named if (n.get("Status") or {}).get("State") != "down"] or named
    if len(named) > 1:
        raise SwarmDecisionError(
            "%d nodes are named %s (%s): give the node ID instead"
            % (len(named), wanted, ", ".join(n["ID"] for n in named))
        )
    if named:
        return named[0]
    prefixed = [n for n in nodes if n["ID"].startswith(wanted)]
    if len(prefixed) > 1:
        raise SwarmDecisionError(
            "the ID prefix %s matches %d nodes (%s): give more of the ID"
            % (wanted, len(prefixed), ", ".join(n["ID"] for n in prefixed))
        )
    return prefixed[0] if prefixed else None


def _reachable(node):
    return ((node.get("ManagerStatus") or {}).get("Reachability")) == "reachable"


def demotion_quorum_error(nodes, node):
    """Why demoting `node` now would cost the swarm its quorum (None when it would not).

    The raft's members are the nodes with a manager status; a quorum is a majority of them, reachable.
    """
    members = [n for n in nodes if n.get("ManagerStatus")]
    if node["ID"] not in {n["ID"] for n in members} or len(members) < 2:
        return None
    left = len(members) - 1
    reachable_left = sum(1 for n in members if _reachable(n) and n["ID"] != node["ID"])
    needed = left // 2 + 1
    if reachable_left >= needed:
        return None
    down = [(n.get("Description") or {}).get("Hostname") or n["ID"] for n in members if not _reachable(n)]
    return (
        "demoting it would leave %d managers of which %d reachable (unreachable: %s), and %d managers need %d "
        "reachable for a quorum. Fix: bring %s back first, or demote and remove them before this one"
        % (left, reachable_left, ", ".join(down) or "none", left, needed, ", ".join(down) or "the unreachable managers")
    )


def role_settled(node, role):
    """Whether the raft has taken in a role change: a manager reachable in it, a worker no longer a member."""
    if role == "worker":
        return not node.get("ManagerStatus")
    return _reachable(node)


# --------------------------------------------------------------------------- pure logic: draining


def service_mode(service):
    """'replicated', 'global' or 'job' (replicated or global job: runs to completion, never moved)."""
    mode = (service.get("Spec") or {}).get("Mode") or {}
    if "Global" in mode:
        return "global"
    if "Replicated" in mode:
        return "replicated"
    return "job"


def _replicas(service):
    return ((service.get("Spec") or {}).get("Mode") or {}).get("Replicated", {}).get("Replicas") or 0


def _state(task):
    return (task.get("Status") or {}).get("State")


def _wanted(task):
    return task.get("DesiredState") in WANTED_RUNNING


def _running(task):
    return _wanted(task) and _state(task) == "running"


def usable_node_ids(nodes):
    """IDs of the nodes that take new tasks: Ready and availability active."""
    return {
        n["ID"]
        for n in nodes
        if (n.get("Status") or {}).get("State") == "ready" and (n.get("Spec") or {}).get("Availability") == "active"
    }


def sits_on(task, node_id, observed=True):
    """Whether a task is on the node still: the engine wants it running there, or (when the node reports its
    tasks: `observed`) its container has not stopped yet."""
    if task.get("NodeID") != node_id:
        return False
    return _wanted(task) or (observed and _state(task) in STILL_RUNNING)


def describe_task(task, service_name, hostnames):
    """A task as the failure messages and stuck_tasks show it: service.slot (service.node for a global task)."""
    status = task.get("Status") or {}
    where = task.get("Slot") or hostnames.get(task.get("NodeID")) or task.get("NodeID") or "unassigned"
    return dict(
        service=service_name,
        task="%s.%s" % (service_name, where),
        id=task.get("ID"),
        state=status.get("State"),
        node=hostnames.get(task.get("NodeID")) or task.get("NodeID") or None,
        reason=status.get("Err") or status.get("Message") or "",
    )


def unschedulable(task, usable_ids):
    """Whether the scheduler says a task the engine wants running has nowhere to go: pending with its error
    (`no suitable node ...`). A task assigned to a node that is not Ready and active (paused, drained, down) waits
    for that node and does not count."""
    if not _wanted(task) or _state(task) != "pending" or not (task.get("Status") or {}).get("Err"):
        return False
    return not task.get("NodeID") or task["NodeID"] in usable_ids


def drain_baseline(node_id, services, tasks, observed=True):
    """The services with tasks on the node, before it is drained: {service ID: dict(name, mode, on_node, slots,
    target)}. A replicated service's target is what it runs (or runs on the node) now, at most its replicas: the
    drain waits for that many tasks elsewhere, not for more than it ran."""
    by_id = {s["ID"]: s for s in services}
    affected = {}
    for task in tasks:
        service = by_id.get(task.get("ServiceID"))
        if service is None or not sits_on(task, node_id, observed):
            continue
        entry = affected.setdefault(
            service["ID"], dict(name=service["Spec"]["Name"], mode=service_mode(service), on_node=0, slots=set())
        )
        entry["on_node"] += 1
        if task.get("Slot"):
            entry["slots"].add(task["Slot"])
    for service_id, entry in affected.items():
        if entry["mode"] == "replicated":
            running = {
                t.get("Slot")
                for t in tasks
                if t.get("ServiceID") == service_id and _running(t) and t.get("NodeID") != node_id
            }
            entry["target"] = min(_replicas(by_id[service_id]), len(running | entry["slots"]))
    return affected


def drain_status(node_id, services, tasks, baseline, nodes, observed=True):
    """How far a drain is: dict(remaining=[tasks still on the node], short=[replicated services that run fewer tasks
    elsewhere than their target: service, running, wanted, tasks], stuck=[replacement tasks the scheduler has no node
    for]); tasks as describe_task shows them."""
    by_id = {s["ID"]: s for s in services}
    hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname") or n["ID"] for n in nodes}
    usable = usable_node_ids(nodes) - {node_id}

    def name_of(task):
        service = by_id.get(task.get("ServiceID"))
        return service["Spec"]["Name"] if service else task.get("ServiceID")

    remaining = [describe_task(t, name_of(t), hostnames) for t in tasks if sits_on(t, node_id, observed)]
    short, stuck = [], []
    for service_id, entry in sorted(baseline.items(), key=lambda item: item[1]["name"]):
        if entry["mode"] != "replicated" or service_id not in by_id:
            continue
        mine = [t for t in tasks if t.get("ServiceID") == service_id and _wanted(t) and t.get("NodeID") != node_id]
        stuck += [
            describe_task(t, entry["name"], hostnames)
            for t in mine
            if unschedulable(t, usable) and (not entry["slots"] or t.get("Slot") in entry["slots"])
        ]
        running = [t for t in mine if _state(t) == "running"]
        if len(running) < entry["target"]:
            waiting = [t for t in mine if _state(t) != "running"]
            # a slot the engine keeps retrying (an image that fails, a rejected task): its last failure says why
            covered = {t.get("Slot") for t in running + waiting}
            failures = {}
            for task in tasks:
                slot = task.get("Slot")
                mine_failed = task.get("ServiceID") == service_id and _state(task) in FAILED
                if mine_failed and slot in entry["slots"] - covered and _newer(task, failures.get(slot)):
                    failures[slot] = task
            short.append(
                dict(
                    service=entry["name"],
                    running=len(running),
                    wanted=entry["target"],
                    tasks=[describe_task(t, entry["name"], hostnames) for t in waiting]
                    + [describe_task(failures[slot], entry["name"], hostnames) for slot in sorted(failures)],
                )
            )
    return dict(remaining=remaining, short=short, stuck=stuck)


def _newer(task, other):
    def when(t):
        return (t.get("UpdatedAt") or t.get("CreatedAt") or "", t.get("ID") or "")

    return other is None or when(task) > when(other)


def predicted_stuck(node, nodes, services, baseline, tasks):
    """Tasks a drain of `node` could not move, judged from the placement alone (constraints and max replicas per
    node against the other Ready, active nodes); ports and resources only the engine judges."""
    by_id = {s["ID"]: s for s in services}
    hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname") or n["ID"] for n in nodes}
    others = [n for n in nodes if n["ID"] in usable_node_ids(nodes) - {node["ID"]}]
    stuck = []
    for service_id, entry in sorted(baseline.items(), key=lambda item: item[1]["name"]):
        if entry["mode"] != "replicated" or service_id not in by_id:
            continue
        placement = (by_id[service_id]["Spec"].get("TaskTemplate") or {}).get("Placement") or {}
        constraints = placement.get("Constraints") or []
        fits = [n for n in others if all(constraint_matches(c, n) for c in constraints)]
        capacity = len(fits) * placement["MaxReplicas"] if placement.get("MaxReplicas") else None
        if fits and (capacity is None or capacity >= entry["target"]):
            continue
        if not fits:
            reason = "no other Ready, active node matches its placement constraints (%s)" % (
                ", ".join(constraints) or "none: no other Ready, active node"
            )
            count = entry["on_node"]
        else:
            reason = "max_replicas_per_node %d on the %d other nodes its placement allows leaves room for %d of %d" % (
                placement["MaxReplicas"],
                len(fits),
                capacity,
                entry["target"],
            )
            count = min(entry["on_node"], entry["target"] - capacity)
        on_node = [t for t in tasks if t.get("ServiceID") == service_id and sits_on(t, node["ID"])]
        for task in sorted(on_node, key=lambda t: t.get("Slot") or 0)[:count]:
            stuck.append(dict(describe_task(task, entry["name"], hostnames), reason=reason))
    return stuck


def services_status(services, tasks, wanted, nodes, node_id=None):
    """Which of the `wanted` services (names or IDs) are not converged: dict(pending=[service: why], stuck=[tasks]).

    Converged: every task the engine wants running runs (tasks assigned to a node that is not Ready and active are
    not counted: they wait for that node), a replicated service runs its replicas, and a global service has a running
    task on `node_id` when that node is Ready and active. Jobs are not waited for."""
    hostnames = {n["ID"]: (n.get("Description") or {}).get("Hostname") or n["ID"] for n in nodes}
    usable = usable_node_ids(nodes)
    selected = [s for s in services if s["Spec"]["Name"] in wanted or s["ID"] in wanted]
    pending, stuck = [], []
    for service in sorted(selected, key=lambda s: s["Spec"]["Name"]):
        name, mode = service["Spec"]["Name"], service_mode(service)
        if mode == "job":
            continue
        mine = [t for t in tasks if t.get("ServiceID") == service["ID"] and _wanted(t)]
        counted = [t for t in mine if not t.get("NodeID") or t["NodeID"] in usable]
        waiting = [t for t in counted if _state(t) != "running"]
        stuck += [describe_task(t, name, hostnames) for t in waiting if unschedulable(t, usable)]
        running = sum(1 for t in mine if _state(t) == "running")
        why = []
        if mode == "replicated" and running < _replicas(service):
            why.append("%d of %d replicas run" % (running, _replicas(service)))
        if waiting:
            why.append(
                "%s %s"
                % (
                    ", ".join(describe_task(t, name, hostnames)["task"] for t in waiting),
                    "is not running yet" if len(waiting) == 1 else "are not running yet",
                )
            )
        if (
            mode == "global"
            and node_id in usable
            and not any(t.get("NodeID") == node_id and _state(t) == "running" for t in mine)
        ):
            why.append("no task running on %s yet" % hostnames.get(node_id, node_id))
        if why:
            pending.append("%s: %s" % (name, "; ".join(why)))
    return dict(pending=pending, stuck=stuck)


def _task_lines(tasks):
    return "; ".join(
        "%s (task %s%s) %s%s"
        % (
            t["task"],
            t["id"],
            " on %s" % t["node"] if t.get("node") else "",
            t.get("state") or "unknown",
            ": %s" % t["reason"] if t.get("reason") else "",
        )
        for t in tasks
    )


def drain_failure(hostname, status, seconds=None):
    """The message of a drain that cannot finish: what is stuck and why (the engine's words), what stays, the way
    back. `seconds` set: the wait ran out of time."""
    parts = []
    if status["stuck"]:
        parts.append(
            "%d task%s cannot move, the scheduler has no node for %s: %s"
            % (
                len(status["stuck"]),
                "" if len(status["stuck"]) == 1 else "s",
                "it" if len(status["stuck"]) == 1 else "them",
                _task_lines(status["stuck"]),
            )
        )
    if seconds is not None:
        if status["remaining"]:
            parts.append("still on the node after %s s: %s" % (seconds, _task_lines(status["remaining"])))
        for short in status["short"]:
            parts.append(
                "service %s runs %d of its %d tasks elsewhere after %s s%s"
                % (
                    short["service"],
                    short["running"],
                    short["wanted"],
                    seconds,
                    " (%s)" % _task_lines(short["tasks"]) if short["tasks"] else "",
                )
            )
    return (
        "node %s is drained, but %s. The node stays drained (availability drain); tasks that could not move are not "
        "running. Fix: let those services run on other nodes (placement constraints, max_replicas_per_node, "
        "host-mode published ports, resources), or give them more time (drain_timeout); to undo the drain, set "
        "availability: active on %s." % (hostname, "; ".join(parts), hostname)
    )


# --------------------------------------------------------------------------- the module


class NodeManager:
    def __init__(self, module, client=None, clock=time.monotonic, sleep=time.sleep):
        self.module = module
        self.params = module.params
        self.clock = clock
        self.sleep = sleep
        self.client = client or EngineClient(module)
        self.local = self.client.require_manager("swarm_node")
        self.nodes = self.client.nodes()

    def run(self):
        try:
            node = find_node(self.nodes, self.params["node"])
            if self.params["state"] == "absent":
                return self._absent(node)
            if node is None:
                raise SwarmDecisionError("no node %s in this swarm" % self.params["node"])
            return self._present(node)
        except SwarmDecisionError as exc:
            self.client.fail("node %s: %s" % (self.params["node"], exc))

    def _present(self, node):
        drain_wait = bool(self.params.get("drain_wait"))
        if drain_wait and self.params["availability"] != "drain":
            raise SwarmDecisionError("drain_wait applies to availability: drain, not %s" % self.params["availability"])
        changes, new_spec = node_spec_changes(
            node.get("Spec"),
            labels=self.params["labels"],
            labels_mode=self.params["labels_state"],
            labels_to_remove=self.params["labels_to_remove"],
            availability=self.params["availability"],
            role=self.params["role"],
        )
        role = changes.get("role", {}).get("after")
        if role == "worker":
            if count_managers(self.nodes, exclude_id=node["ID"]) == 0:
                raise SwarmDecisionError(
                    "it is the last manager: demoting it would leave the swarm without a control plane"
                )
            quorum_error = demotion_quorum_error(self.nodes, node)
            if quorum_error:
                raise SwarmDecisionError(quorum_error)
        result = dict(changed=bool(changes), changes=changes)
        baseline = None
        if drain_wait:
            observed = (node.get("Status") or {}).get("State") == "ready"
            services, tasks = self._services_and_tasks(node["ID"])
            services, tasks = self._services_and_tasks(
                node["ID"], {t["ServiceID"] for t in tasks if sits_on(t, node["ID"], observed)}, services=services
            )
            baseline = drain_baseline(node["ID"], services, tasks, observed)
            result["moved_tasks"] = {e["name"]: e["on_node"] for e in baseline.values() if e["mode"] == "replicated"}
            result["stopped_tasks"] = {e["name"]: e["on_node"] for e in baseline.values() if e["mode"] != "replicated"}
            if self.module.check_mode:
                stuck = predicted_stuck(node, self.nodes, services, baseline, tasks)
                if stuck:
                    result["stuck_tasks"] = stuck
        if changes and not self.module.check_mode:
            self.client.call(
                "updating the node",
                self.client.api.update_node,
                node["ID"],
                node["Version"]["Index"],
                new_spec,
            )
            node = self._wait_for_role(node, role) if role else self.client.inspect_node(node["ID"]) or node
        result["node"] = node_row(node)
        if baseline and not self.module.check_mode:
            self._wait_for_drain(node, baseline, result)
        if self.params.get("wait_services") and not self.module.check_mode:
            self._wait_for_services(node, result)
        result["diff"] = dict(
            before={k: v["before"] for k, v in changes.items()},
            after={k: v["after"] for k, v in changes.items()},
        )
        return result

    # ----------------------------------------------------------------- waits

    def _services_and_tasks(self, node_id, service_ids=(), attempt=None, services=None):
        """The swarm's services (unless given), and the tasks on the node and of the given services (each once)."""
        call = attempt or self.client.call
        if services is None:
            services = call("listing the services (docker service ls)", self.client.api.services)
        tasks = {}
        for task in call("listing the node's tasks (docker node ps)", self.client.api.tasks, filters={"node": node_id}):
            tasks[task["ID"]] = task
        for service_id in sorted(service_ids):
            listed = call(
                "listing the tasks of service %s (docker service ps)" % service_id,
                self.client.api.tasks,
                filters={"service": service_id},
            )
            for task in listed:
                tasks[task["ID"]] = task
        return services, list(tasks.values())

    def _look(self, deadline, node_id, select):
        """One bounded look at the swarm inside a wait: (nodes, services, tasks), the tasks those on the node and
        those of the services select(services) returns the IDs of; an engine error is a NotYet."""
        self.client.bounded_by(deadline)
        try:
            nodes = self.client.attempt("listing the nodes (docker node ls)", self.client.api.nodes)
            services = self.client.attempt("listing the services (docker service ls)", self.client.api.services)
            dummy, tasks = self._services_and_tasks(
                node_id, select(services), attempt=self.client.attempt, services=services
            )
        except EngineError as exc:  # a leader election answers nothing for a moment
            raise NotYet(str(exc)) from None
        return nodes, services, tasks

    def _wait_for_drain(self, node, baseline, result):
        """Wait until the node's tasks are gone and the replicated ones run elsewhere; fail naming what cannot move."""
        seconds = self.params["drain_timeout"]
        deadline = Deadline(seconds, self.clock)
        hostname = result["node"]["hostname"] or node["ID"]
        observed = result["node"]["status"] == "Ready"
        last = {}

        def attempt():
            nodes, services, tasks = self._look(deadline, node["ID"], lambda services: set(baseline))
            status = drain_status(node["ID"], services, tasks, baseline, nodes, observed)
            last["status"] = status
            if status["stuck"]:
                return status
            if status["remaining"] or status["short"]:
                raise NotYet(
                    "%d tasks on the node, %d services short" % (len(status["remaining"]), len(status["short"]))
                )
            return status

        try:
            status = wait_for(attempt, deadline, interval=POLL_INTERVAL, sleep=self.sleep)
            timed_out = None
        except NotYet as exc:
            status = last.get("status")
            if status is None:  # the engine never answered within the wait
                self._fail(
                    result,
                    "node %s is drained, but its tasks could not be read within %s s: %s. The node "
                    "stays drained; to undo, set availability: active on %s." % (hostname, seconds, exc, hostname),
                )
            timed_out = seconds
        finally:
            self.client.unbounded()
        if status["stuck"] or timed_out is not None:
            stuck = list(status["stuck"])
            if timed_out is not None:  # what the wait still waited for
                stuck += [t for t in status["remaining"] if t not in stuck]
                stuck += [t for short in status["short"] for t in short["tasks"] if t not in stuck]
            result["stuck_tasks"] = stuck
            self._fail(result, drain_failure(hostname, status, timed_out))

    def _wait_for_services(self, node, result):
        """Wait until the services of wait_services are converged; fail naming the tasks the scheduler cannot place."""
        seconds = self.params["drain_timeout"]
        deadline = Deadline(seconds, self.clock)
        wanted = set(self.params["wait_services"])
        last = {}

        def attempt():
            nodes, services, tasks = self._look(
                deadline,
                node["ID"],
                lambda services: {s["ID"] for s in services if s["Spec"]["Name"] in wanted or s["ID"] in wanted},
            )
            status = services_status(services, tasks, wanted, nodes, node["ID"])
            last["status"] = status
            if status["stuck"]:
                return status
            if status["pending"]:
                raise NotYet("; ".join(status["pending"]))
            return status

        try:
            status = wait_for(attempt, deadline, interval=POLL_INTERVAL, sleep=self.sleep)
        except NotYet as exc:
            result["stuck_tasks"] = (last.get("status") or {}).get("stuck", [])
            self._fail(
                result,
                "the services %s are not converged after %s s (drain_timeout): %s. Fix: see why with `docker service "
                "ps` on a manager, then re-run." % (", ".join(sorted(wanted)), seconds, exc),
            )
        finally:
            self.client.unbounded()
        if status["stuck"]:
            result["stuck_tasks"] = status["stuck"]
            self._fail(
                result,
                "the services %s cannot converge: the scheduler has no node for %s. Fix: let those services run on "
                "the nodes there are (placement constraints, max_replicas_per_node, host-mode published ports, "
                "resources), then re-run." % (", ".join(sorted(wanted)), _task_lines(status["stuck"])),
            )

    def _fail(self, result, msg):
        self.module.fail_json(msg=msg, **{k: v for k, v in result.items() if k != "diff"})

    def _wait_for_role(self, node, role):
        """The node once the raft has taken in its new role; fails after `timeout` seconds."""
        deadline = Deadline(self.params["timeout"], self.clock)
        demoting_self = role == "worker" and node["ID"] == self.local.get("node_id")

        def attempt():
            self.client.bounded_by(deadline)
            try:
                if demoting_self:  # this engine stops answering as a manager once the raft let it go
                    if local_node_state(self.client.attempt("reading the engine state", self.client.api.info))[
                        "is_manager"
                    ]:
                        raise NotYet("this engine is still a manager")
                    return dict(node, Spec=dict(node.get("Spec") or {}, Role="worker"), ManagerStatus=None)
                current = self.client.attempt("reading the node", self.client.node_or_none, node["ID"])
            except EngineError as exc:  # a leader election after demoting the leader answers nothing for a moment
                raise NotYet(str(exc)) from None
            if current is None or not role_settled(current, role):
                raise NotYet("its manager status is %s" % ((current or {}).get("ManagerStatus") or "none"))
            return current

        try:
            return wait_for(attempt, deadline, interval=0.5, sleep=self.sleep)
        except NotYet as exc:
            self.client.fail(
                "node %s: the swarm accepted the change to %s but the raft did not take it in within %s s (%s). "
                "Fix: check the managers (`docker node ls`), then re-run."
                % (self.params["node"], role, self.params["timeout"], exc)
            )
        finally:
            self.client.unbounded()

    def _absent(self, node):
        if node is None:
            return dict(changed=False, changes={}, diff=dict(before={}, after={}))
        row = node_row(node)
        # --force-new-cluster leaves the old managers with their role but out of the raft (no ManagerStatus): they
        # cannot be demoted, and the engine removes them as it does workers.
        if row["role"] == "manager" and node.get("ManagerStatus"):
            raise SwarmDecisionError(
                "it is a manager: demote it first (role: worker), so the raft quorum shrinks cleanly"
            )
        if row["status"] != "Down" and not self.params["force"]:
            raise SwarmDecisionError(
                "it is %s, not Down: make it leave first (swarm state=absent on that host), or set force: true"
                % row["status"]
            )
        if not self.module.check_mode:
            self.client.call("docker node rm", self.client.api.remove_node, node["ID"], force=self.params["force"])
        return dict(
            changed=True,
            changes=dict(state=dict(before="present", after="absent")),
            node=row,
            diff=dict(
                before=dict(node=row["hostname"], state="present"), after=dict(node=row["hostname"], state="absent")
            ),
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            labels=dict(type="dict"),
            labels_state=dict(type="str", default="merge", choices=["merge", "replace"]),
            labels_to_remove=dict(type="list", elements="str"),
            availability=dict(type="str", choices=["active", "pause", "drain"]),
            role=dict(type="str", choices=["manager", "worker"]),
            force=dict(type="bool", default=False),
            drain_wait=dict(type="bool", default=False),
            drain_timeout=dict(type="int", default=300),
            wait_services=dict(type="list", elements="str", default=[]),
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    module.exit_json(**NodeManager(module).run())


if __name__ == "__main__":
    main()

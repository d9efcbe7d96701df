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
extends_documentation_fragment:
  - swarmplane.cluster.engine
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
author:
  - swarmplane contributors
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    ENGINE_ARGUMENT_SPEC,
    Deadline,
    EngineClient,
    EngineError,
    NotYet,
    SwarmDecisionError,
    count_managers,
    node_row,
    node_spec_changes,
    wait_for,
)


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


class NodeManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = EngineClient(module)
        self.client.require_manager("swarm_node")
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
        if changes and not self.module.check_mode:
            self.client.call(
                "updating the node",
                self.client.api.update_node,
                node["ID"],
                node["Version"]["Index"],
                new_spec,
            )
            node = self._wait_for_role(node, role) if role else self.client.inspect_node(node["ID"]) or node
        return dict(
            changed=bool(changes),
            changes=changes,
            node=node_row(node),
            diff=dict(
                before={k: v["before"] for k, v in changes.items()},
                after={k: v["after"] for k, v in changes.items()},
            ),
        )

    def _wait_for_role(self, node, role):
        """The node once the raft has taken in its new role; fails after `timeout` seconds."""
        deadline = Deadline(self.params["timeout"])

        def attempt():
            self.client.bounded_by(deadline)
            try:
                current = self.client.attempt("reading the node", self.client.node_or_none, node["ID"])
            except EngineError as exc:  # a leader election after demoting the leader answers nothing for a moment
                raise NotYet(str(exc)) from None
            if current is None or not role_settled(current, role):
                raise NotYet("its manager status is %s" % ((current or {}).get("ManagerStatus") or "none"))
            return current

        try:
            return wait_for(attempt, deadline, interval=0.5)
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
        if row["role"] == "manager":
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
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    module.exit_json(**NodeManager(module).run())


if __name__ == "__main__":
    main()

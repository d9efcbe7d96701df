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
  - With O(join_tokens=true) on a manager, returns the join tokens. Tokens are secrets, so register such a
    result with C(no_log=true).
  - With O(fail_on_unavailable=false) a host without an engine or without the Docker SDK is reported
    (RV(docker_available=false)) instead of failing, so a play can probe hosts before preparing them.
options:
  nodes:
    description: On a manager, list the swarm's nodes.
    type: bool
    default: true
  join_tokens:
    description: On a manager, return the worker and manager join tokens.
    type: bool
    default: false
  fail_on_unavailable:
    description: Fail when the engine or the Docker SDK is missing; when false, report it instead.
    type: bool
    default: true
  docker_host:
    description: The engine's socket or URL.
    type: str
    default: unix:///var/run/docker.sock
  timeout:
    description: Seconds to wait for an engine API call.
    type: int
    default: 60
attributes:
  check_mode:
    support: full
    details: Read-only; runs the same in check mode.
  diff_mode:
    support: none
requirements:
  - Docker SDK for Python >= 4.0 on the target (Debian/Ubuntu package python3-docker)
author:
  - swarmplane contributors
"""

EXAMPLES = r"""
- name: Read the swarm state of every host
  swarmplane.cluster.swarm_info:
    fail_on_unavailable: false
  register: swarm_probe

- name: Read the join tokens from a live manager
  swarmplane.cluster.swarm_info:
    join_tokens: true
  register: swarm_tokens
  no_log: true
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
remote_managers:
  description: Managers this node knows, with node_id and addr.
  returned: always
  type: list
  elements: dict
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    ENGINE_ARGUMENT_SPEC,
    EngineClient,
    EngineUnavailable,
    local_node_state,
    node_row,
)


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
    if module.params["nodes"]:
        rows = sorted(
            (node_row(n) for n in client.nodes()), key=lambda r: (r["role"] != "manager", r["hostname"] or "")
        )
        result["nodes"] = rows
        result["leader"] = next((r["hostname"] for r in rows if r["manager_status"] == "Leader"), "")
    if module.params["join_tokens"]:
        tokens = client.inspect_swarm().get("JoinTokens") or {}
        result["join_tokens"] = dict(worker=tokens.get("Worker"), manager=tokens.get("Manager"))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="bool", default=True),
            join_tokens=dict(type="bool", default=False, no_log=False),
            fail_on_unavailable=dict(type="bool", default=True),
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    try:
        client = EngineClient(module, soft=not module.params["fail_on_unavailable"])
        # The client connects lazily for some SDK versions: make one call while still "soft".
        client.api.ping()
    except EngineUnavailable as exc:
        module.exit_json(**unavailable_result(str(exc)))
    except Exception as exc:  # the engine socket is absent or refuses
        if module.params["fail_on_unavailable"]:
            module.fail_json(msg="cannot reach the Docker engine at %s: %s" % (module.params["docker_host"], exc))
        module.exit_json(**unavailable_result("no Docker engine answers at %s" % module.params["docker_host"]))
    module.exit_json(**read_swarm(module, client))


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm_service
short_description: Create, update, scale and remove a Docker Swarm service, and wait until it converges
version_added: "0.1.0"
description:
  - Runs on a swarm manager (C(docker service create/update/scale/rm)).
  - Options left unset keep their live values on update (never reset to defaults); a new service gets the
    docker CLI's defaults (update parallelism 1, failure action pause), not the Docker SDK's.
  - Reads the live spec, sends a spec only when something differs, and returns the difference (check and diff mode).
  - With O(wait=true) waits until every desired task runs; a failed update is rolled back when
    O(rollback_on_failure=true), and a new service whose tasks cannot start is removed again, so a failed run
    leaves what was there before.
  - Changing O(mode) between replicated and global needs the service removed and created again; the diff says
    so (RV(rebuilt)).
options:
  name:
    description: Service name.
    type: str
    required: true
  state:
    description: V(present) creates or updates; V(absent) removes.
    type: str
    choices: [present, absent]
    default: present
  image:
    description: Image (tag or digest). Required to create a service.
    type: str
  command:
    description: Replaces the image's entrypoint.
    type: list
    elements: str
  args:
    description: Arguments of the command.
    type: list
    elements: str
  mode:
    description: V(replicated) (O(replicas) tasks) or V(global) (one task per node).
    type: str
    choices: [replicated, global]
  replicas:
    description: Number of tasks of a replicated service.
    type: int
  publish:
    description: Published ports.
    type: list
    elements: dict
    suboptions:
      target:
        description: Port inside the container.
        type: int
        required: true
      published:
        description: Port on the nodes. Unset, the swarm picks one (ingress mode).
        type: int
      protocol:
        description: Protocol.
        type: str
        choices: [tcp, udp]
        default: tcp
      mode:
        description:
          - V(ingress) publishes on every node through the routing mesh (needs IPVS in the kernel);
            V(host) publishes on the nodes that run a task.
        type: str
        choices: [ingress, host]
        default: ingress
  networks:
    description: Networks to attach, as names or as dicts with name and aliases.
    type: list
    elements: raw
  env:
    description: Environment, as a dict or a list of C(KEY=value).
    type: raw
  labels:
    description: Service labels.
    type: dict
  container_labels:
    description: Labels of the task containers.
    type: dict
  constraints:
    description: Placement constraints, for example C(node.role==worker).
    type: list
    elements: str
  placement_preferences:
    description: Spread preferences, as dicts with a C(spread) label.
    type: list
    elements: dict
  max_replicas_per_node:
    description: At most this many tasks of the service on one node.
    type: int
  limits:
    description: Resource limits, a dict with C(cpus) (number) and C(memory) (bytes or like C(64M)).
    type: dict
  reservations:
    description: Resource reservations, a dict with C(cpus) and C(memory).
    type: dict
  restart_policy:
    description: Dict with C(condition) (none, on-failure, any), C(delay), C(max_attempts), C(window).
    type: dict
  update_config:
    description:
      - Dict with C(parallelism), C(delay), C(failure_action) (pause, continue, rollback), C(monitor),
        C(max_failure_ratio), C(order) (stop-first, start-first). Keys left out keep their live values.
    type: dict
  rollback_config:
    description: Same keys as O(update_config), for rollbacks.
    type: dict
  healthcheck:
    description: Dict with C(test) (string for a shell command, or a list), C(interval), C(timeout), C(retries), C(start_period).
    type: dict
  mounts:
    description: Mounts, as dicts with C(source), C(target), C(type) (volume, bind, tmpfs) and C(readonly).
    type: list
    elements: dict
  secrets:
    description: Secrets, as dicts with C(source) (the secret's name), C(target), C(uid), C(gid), C(mode).
    type: list
    elements: dict
  configs:
    description: Configs, as dicts with C(source), C(target), C(uid), C(gid), C(mode).
    type: list
    elements: dict
  endpoint_mode:
    description: V(vip) (a virtual IP, needs IPVS) or V(dnsrr) (DNS round robin).
    type: str
    choices: [vip, dnsrr]
  hostname:
    description: Container host name (Go template allowed, like C({{.Task.Name}})).
    type: str
  user:
    description: User the container runs as.
    type: str
  workdir:
    description: Working directory of the container.
    type: str
  stop_grace_period:
    description: Time (seconds or like C(10s)) between SIGTERM and SIGKILL.
    type: raw
  wait:
    description: Wait until every desired task runs (or a failure is certain).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for convergence.
    type: int
    default: 120
  rollback_on_failure:
    description: Roll a failed update back to the previous spec (the run still fails and says so).
    type: bool
    default: true
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
- name: The tutorial's web service, two replicas on port 80
  swarmplane.cluster.swarm_service:
    name: myweb
    image: registry.example.com/web:1.4
    replicas: 2
    publish:
      - target: 80
        published: 80

- name: Scale it (every other setting stays as it is)
  swarmplane.cluster.swarm_service:
    name: myweb
    replicas: 4

- name: Remove it
  swarmplane.cluster.swarm_service:
    name: myweb
    state: absent
"""

RETURN = r"""
service:
  description: Name, ID, mode, replicas and image of the service after the run.
  returned: when the service exists
  type: dict
changes:
  description: Spec fields that differ (dotted paths of the engine's spec), with before and after.
  returned: always
  type: dict
rebuilt:
  description: Whether the service was (or would be) removed and created again to change its mode.
  returned: always
  type: bool
tasks:
  description: Running tasks and the node each runs on.
  returned: when wait=true and the service exists
  type: list
  elements: dict
running:
  description: Number of running tasks after the wait.
  returned: when wait=true and the service exists
  type: int
rolled_back:
  description: Whether a failed update was rolled back.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    ENGINE_ARGUMENT_SPEC,
    EngineClient,
)
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_manager import (
    SERVICE_OPTIONS,
    ServiceError,
    ServiceManager,
)


def main():
    module = AnsibleModule(argument_spec=dict(SERVICE_OPTIONS, **ENGINE_ARGUMENT_SPEC), supports_check_mode=True)
    if module.params["mode"] == "global" and module.params["replicas"] is not None:
        module.fail_json(msg="service %s: replicas cannot be set for a global service" % module.params["name"])
    client = EngineClient(module)
    client.require_manager("service %s: swarm_service" % module.params["name"])
    try:
        module.exit_json(**ServiceManager(module, client, module.params).run())
    except ServiceError as exc:
        module.fail_json(msg=str(exc), **exc.details)


if __name__ == "__main__":
    main()

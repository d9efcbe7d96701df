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
  - With O(wait=true) waits until every desired task runs. A failed run leaves what was there before and says
    what it did (RV(outcome)) - a failed update rolled back (by the module, or by the engine with
    C(update_config.failure_action=rollback)), a new service removed again, a failed rebuild undone by creating
    the previous service again from its saved spec - or, when that is impossible, exactly what is left and how
    to restore it.
  - Changing O(mode) between replicated and global needs the service removed and created again; the diff says
    so (RV(rebuilt)), and the result reports the outage (RV(outage)).
  - The values of O(env) are never shown (results, diffs, errors, the module's invocation).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - swarmplane.cluster.service
  - swarmplane.cluster.engine
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
    details: Reports the whole plan; a network, secret or config named in O(planned) counts as created.
  diff_mode:
    support: full
author:
  - swarmplane contributors (@swarmplane)
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

- name: One task on every worker (the service is removed and created again; undone if the new one fails)
  swarmplane.cluster.swarm_service:
    name: myweb
    mode: global
    constraints: [node.role==worker]

- name: Remove it
  swarmplane.cluster.swarm_service:
    name: myweb
    state: absent
"""

RETURN = r"""
outcome:
  description:
    - What the run did to the service. C(unchanged); C(would change) (check mode); C(changed); C(rolled back)
      (the change failed and what was there before runs again, or a new service was removed again);
      C(failed) (the change failed and could not be fully undone; C(msg) says what is left); C(gone) (the
      change failed and the service was removed outside the run before it could be rolled back).
  returned: always
  type: str
service:
  description: Name, ID, mode, replicas and image of the service after the run.
  returned: when the service exists
  type: dict
changes:
  description: Spec fields that differ (dotted paths of the engine's spec), with before and after; env values hidden.
  returned: always
  type: dict
rebuilt:
  description: Whether the service was (or would be) removed and created again to change its mode.
  returned: always
  type: bool
outage:
  description: Seconds from the removal of the service for a rebuild until the new one ran.
  returned: when a rebuild was waited for
  type: float
tasks:
  description: Running tasks and the node each runs on (after the wait, when there was one).
  returned: when the service exists
  type: list
  elements: dict
running:
  description: Number of running tasks (after the wait, when there was one).
  returned: when the service exists
  type: int
wanted:
  description: Number of tasks the service wants (its replicas, or its eligible nodes when global).
  returned: when wait=true and a change was waited for
  type: int
rolled_back:
  description: Whether a failed change was undone and the previous spec runs again.
  returned: always
  type: bool
saved_spec:
  description:
    - Where the spec of the service a rebuild removed is kept on the manager (readable by root only), when the
      rebuild was not waited for (O(wait=false)), so whether the new service runs is unknown.
    - "To create the previous service again from it: remove the new one, then C(curl --unix-socket
      /var/run/docker.sock -H 'Content-Type: application/json' --data @FILE http://localhost/services/create)."
  returned: when a rebuild was sent with wait=false
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import ENGINE_ARGUMENT_SPEC
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_manager import (
    PLANNED_OPTION,
    SERVICE_OPTIONS,
    EngineCallError,
    ServiceEngineClient,
    ServiceError,
    ServiceManager,
)
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import masked_params


def main():
    module = AnsibleModule(
        argument_spec=dict(SERVICE_OPTIONS, **PLANNED_OPTION, **ENGINE_ARGUMENT_SPEC), supports_check_mode=True
    )
    name = module.params["name"]
    # Returned instead of Ansible's own copy of the arguments, which would show the env values.
    invocation = dict(module_args=masked_params(module.params))
    if module.params["mode"] == "global" and module.params["replicas"] is not None:
        module.fail_json(
            msg="service %s: replicas cannot be set for a global service. Fix: drop replicas, or set mode: replicated."
            % name,
            invocation=invocation,
        )
    client = ServiceEngineClient(module)
    manager = ServiceManager(module, client, module.params, planned=module.params["planned"])
    try:
        client.require_manager("swarm_service")
        result = manager.run(client.call("listing services", client.api.services))
    except ServiceError as exc:
        module.fail_json(msg=str(exc), invocation=invocation, **dict(manager.result, **exc.details))
    except EngineCallError as exc:
        module.fail_json(msg="service %s: %s" % (name, exc), invocation=invocation, **manager.result)
    module.exit_json(invocation=invocation, **result)


if __name__ == "__main__":
    main()

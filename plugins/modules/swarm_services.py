#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm_services
short_description: Apply a list of Docker Swarm services in one run, all checked before any is changed
version_added: "0.1.0"
description:
  - Takes a list of services, each with the options of M(swarmplane.cluster.swarm_service), and applies them from
    one manager in one module run (what services.yml uses; one run instead of one per service).
  - Plans every service first (live spec, unknown networks, secrets and configs, published ports used by other
    services); if any has an error, none is changed and every error is reported.
  - Then sends the changes in list order and waits for all changed services together. A service that does not
    converge is rolled back (or removed, if it was new) and the run fails naming it; the others keep their
    result.
options:
  services:
    description: The services, each a dict of M(swarmplane.cluster.swarm_service) options (name, image, replicas, ...).
    type: list
    elements: dict
    required: true
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
- name: Apply the declared services
  swarmplane.cluster.swarm_services:
    services:
      - name: myweb
        image: registry.example.com/web:1.4
        replicas: 2
        publish: [{target: 80, published: 80}]
      - name: old
        state: absent
"""

RETURN = r"""
services:
  description: One result per service, in list order, with the keys swarm_service returns (name added).
  returned: always
  type: list
  elements: dict
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


def apply_all(module, client):
    # Planning reads one snapshot of the services; applying and waiting read live state again.
    shared = dict(services=client.call("listing services", client.api.services))
    managers = [ServiceManager(module, client, params, shared) for params in module.params["services"]]
    errors = []
    for manager in managers:
        try:
            manager.plan()
        except ServiceError as exc:
            errors.append(str(exc))
    del shared["services"]
    if errors:
        module.fail_json(msg="nothing was changed: " + " | ".join(errors), errors=errors)
    if not module.check_mode:
        for manager in managers:
            manager.execute()
        for manager in managers:
            try:
                manager.settle()
            except ServiceError as exc:
                errors.append(str(exc))
                manager.result["failed"] = True
                manager.result["msg"] = str(exc)
    results = [dict(m.result, name=m.params["name"]) for m in managers]
    diff = dict(
        before={r["name"]: r.get("diff", {}).get("before") for r in results if r["changed"]},
        after={r["name"]: r.get("diff", {}).get("after") for r in results if r["changed"]},
    )
    outcome = dict(changed=any(r["changed"] for r in results), services=results, diff=diff)
    if errors:
        module.fail_json(msg=" | ".join(errors), **outcome)
    return outcome


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(type="list", elements="dict", required=True, options=SERVICE_OPTIONS),
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    for params in module.params["services"]:
        if params["mode"] == "global" and params["replicas"] is not None:
            module.fail_json(msg="service %s: replicas cannot be set for a global service" % params["name"])
    client = EngineClient(module)
    client.require_manager("swarm_services")
    module.exit_json(**apply_all(module, client))


if __name__ == "__main__":
    main()

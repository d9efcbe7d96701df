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
    services, rebuilds that cannot work); if any has an error, none is changed and every error is reported.
  - Then sends the changes in list order and waits for all changed services together. If the engine refuses a
    change, no later service is sent (their C(outcome) of each entry of RV(services) is C(not applied)); the services sent
    before it are still waited for, and rolled back if they fail.
  - A service that does not converge is undone as M(swarmplane.cluster.swarm_service) does (an update rolled
    back, a new service removed, a rebuild undone); the run fails naming every service that failed, and
    reports the outcome of each. C(changed) is true when anything was sent to the engine.
  - The values of C(env) are never shown (results, diffs, errors, the module's invocation).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - swarmplane.cluster.service.batch
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
  description:
    - One result per service, in list order, with the keys swarm_service returns and its C(name).
    - C(outcome) is C(unchanged), C(would change) (check mode), C(changed), C(rolled back) (the change failed
      and what was there before runs again), C(failed) (C(msg) says what is left), C(gone) (the change failed
      and the service was removed outside the run before it could be rolled back), or C(not applied) (an
      earlier service's change was refused by the engine, so the run stopped before this one).
  returned: always
  type: list
  elements: dict
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


def plan_all(managers, services):
    """Errors of every service's plan (each message names its service); nothing is changed."""
    errors = []
    for manager in managers:
        try:
            manager.plan(services)
        except ServiceError as exc:
            errors.append(str(exc))
    return errors


def send_in_order(managers):
    """Send the planned changes in list order, up to the first the engine refuses. Returns (the managers whose
    change was sent, the error); the ones after the refused one are marked not applied."""
    for index, manager in enumerate(managers):
        try:
            manager.execute()
        except ServiceError as exc:
            manager.result["msg"] = str(exc)
            for later in managers[index + 1 :]:
                later.result.update(
                    outcome="not applied",
                    changed=False,
                    msg="service %s: not applied: the run stopped at service %s, which failed"
                    % (later.name, manager.name),
                )
            return managers[:index], str(exc)
    return managers, None


def settle_all(managers):
    """Wait for every sent service; a failure is undone (or reported) by its manager. Returns the errors."""
    errors = []
    for manager in managers:
        try:
            manager.settle()
        except ServiceError as exc:
            manager.result["msg"] = str(exc)
            errors.append(str(exc))
        except EngineCallError as exc:
            manager.result.update(outcome="failed", msg="service %s: %s" % (manager.name, exc))
            errors.append(manager.result["msg"])
    return errors


def outcome_line(results):
    """'Outcome: web changed, db rolled back, cache not applied.'"""
    return "Outcome: " + ", ".join("%s %s" % (r["name"], r["outcome"]) for r in results) + "."


def apply_all(module, client, clock=None):
    """Plan, send and settle every service. Returns (result, error message or None)."""
    params = module.params
    managers = [
        ServiceManager(module, client, service, planned=params["planned"], clock=clock)
        for service in params["services"]
    ]
    errors = plan_all(managers, client.call("listing services", client.api.services))
    if errors:
        return dict(changed=False, errors=errors), "nothing was changed: " + " | ".join(errors)
    if not module.check_mode:
        sent, refused = send_in_order(managers)
        errors = ([refused] if refused else []) + settle_all(sent)
    results = [m.result for m in managers]
    changed = [r for r in results if r["changed"]]
    result = dict(
        changed=bool(changed),
        services=results,
        diff=dict(
            before={r["name"]: r.get("diff", {}).get("before") for r in changed},
            after={r["name"]: r.get("diff", {}).get("after") for r in changed},
        ),
    )
    if not errors:
        return result, None
    not_applied = [r["name"] for r in results if r["outcome"] == "not applied"]
    if not_applied:
        errors.append("not applied (the run stopped before them): %s" % ", ".join(not_applied))
    return result, " | ".join(errors) + " | " + outcome_line(results)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(type="list", elements="dict", required=True, options=SERVICE_OPTIONS),
            **PLANNED_OPTION,
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    # Returned instead of Ansible's own copy of the arguments, which would show the env values.
    invocation = dict(module_args=dict(module.params, services=[masked_params(s) for s in module.params["services"]]))
    for params in module.params["services"]:
        if params["mode"] == "global" and params["replicas"] is not None:
            module.fail_json(
                msg="service %s: replicas cannot be set for a global service. Fix: drop replicas, or set "
                "mode: replicated." % params["name"],
                invocation=invocation,
            )
    client = ServiceEngineClient(module)
    try:
        client.require_manager("swarm_services")
        result, error = apply_all(module, client)
    except EngineCallError as exc:
        module.fail_json(msg="nothing was changed: %s" % exc, invocation=invocation)
    if error:
        module.fail_json(msg=error, invocation=invocation, **result)
    module.exit_json(invocation=invocation, **result)


if __name__ == "__main__":
    main()

# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the services path of the swarm role: checking the declaration, splitting it into what to
apply and what to remove, turning a declared service into swarm_service arguments, the placement table."""

from __future__ import annotations

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import validate_service_list

DOCUMENTATION = r"""
name: services
short_description: Decisions of the services path of the swarm role
description:
  - C(swarm_service_errors) checks swarm_services (and swarm_scale) before anything is applied.
  - C(swarm_present) and C(swarm_absent) split a declared list by state.
  - C(swarm_service_args) turns a declared service into swarmplane.cluster.swarm_service arguments, with secret
    and config names resolved to their current versions.
  - C(swarm_planned_objects) lists what the network, secret and config tasks of a check-mode run would create
    (the C(planned) option of swarmplane.cluster.swarm_services).
  - C(swarm_ingress_services) and C(swarm_hosts_without_ipvs) find routing-mesh ports on hosts without IPVS.
  - C(swarm_placement_table) lists which node runs which task.
"""

# Keys of a declared service that are not swarm_service options.
DECLARATION_ONLY = ("state",)


def swarm_present(items):
    return [i for i in items or [] if i.get("state", "present") != "absent"]


def swarm_absent(items):
    return [i for i in items or [] if i.get("state", "present") == "absent"]


def swarm_service_errors(services, networks=None, scale=None):
    errors = validate_service_list(services)
    declared = {s.get("name") for s in services or []}
    for name, replicas in (scale or {}).items():
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            errors.append("swarm_scale: %s=%r is not a whole number >= 0." % (name, replicas))
        if declared and name not in declared:
            errors.append(
                "swarm_scale: %s is not in swarm_services. Fix: scale a declared service, or declare it." % name
            )
    removed = {n.get("name") for n in swarm_absent(networks)}
    for service in swarm_present(services):
        for network in service.get("networks") or []:
            name = network if isinstance(network, str) else (network or {}).get("name")
            if name in removed:
                errors.append(
                    "service %s uses network %s, which swarm_networks removes (state: absent). Fix: detach it or keep the network."
                    % (service.get("name"), name)
                )
    return errors


def _versions(results):
    """Logical name -> current object name, from the registered loop results of swarm_secret / swarm_config."""
    names = {}
    for result in results or []:
        item = result.get("item") or {}
        if item.get("name") and result.get("name"):
            names[item["name"]] = result["name"]
    return names


def _references(refs, versions):
    resolved = []
    for ref in refs or []:
        ref = dict(ref) if isinstance(ref, dict) else dict(source=ref)
        logical = ref["source"]
        ref.setdefault("target", logical)  # the file keeps the logical name across rotations
        ref["source"] = versions.get(logical, logical)
        resolved.append(ref)
    return resolved


def swarm_service_args(service, secret_results=None, config_results=None, wait_timeout=None):
    args = {k: v for k, v in service.items() if k not in DECLARATION_ONLY}
    if "secrets" in args:
        args["secrets"] = _references(args["secrets"], _versions(secret_results))
    if "configs" in args:
        args["configs"] = _references(args["configs"], _versions(config_results))
    if wait_timeout and "wait_timeout" not in args:
        args["wait_timeout"] = int(wait_timeout)
    return args


def swarm_planned_objects(network_results=None, secret_results=None, config_results=None):
    """The networks, secrets and configs that the tasks before swarm_services would create (in check mode, so
    they do not exist yet), by swarm name, from the registered loop results of swarm_network, swarm_secret and
    swarm_config. A created object has no ID in check mode."""

    def created(results):
        return [r for r in results or [] if r.get("changed") and not r.get("failed")]

    return dict(
        networks=sorted(
            (r.get("item") or {}).get("name")
            for r in created(network_results)
            if not (r.get("network") or {}).get("id") and (r.get("item") or {}).get("name")
        ),
        secrets=sorted(r["name"] for r in created(secret_results) if r.get("name") and not r.get("id")),
        configs=sorted(r["name"] for r in created(config_results) if r.get("name") and not r.get("id")),
    )


def swarm_removal(name):
    return dict(name=name, state="absent")


def swarm_scale_args(scale, wait_timeout=None):
    """swarm_scale ({name: replicas}) -> swarm_services entries that set the replica count and nothing else."""
    return [
        dict(name=name, replicas=replicas, **({"wait_timeout": int(wait_timeout)} if wait_timeout else {}))
        for name, replicas in sorted((scale or {}).items())
    ]


def _ingress(publish):
    return (publish.get("mode") or "ingress") == "ingress"


def swarm_ingress_services(services):
    """Services with a port in the routing mesh (ingress mode), published on a given port or on one the swarm picks."""
    return [s["name"] for s in swarm_present(services) if any(_ingress(p) for p in s.get("publish") or [])]


def swarm_ingress_ports(services):
    """[(service name, protocol, published port)] of every ingress port published on a given port."""
    return [
        (service["name"], publish.get("protocol") or "tcp", int(publish["published"]))
        for service in swarm_present(services)
        for publish in service.get("publish") or []
        if _ingress(publish) and publish.get("published")
    ]


def swarm_hosts_without_ipvs(hosts, hostvars):
    missing = []
    for host in hosts:
        facts = (hostvars[host].get("swarm_probe") or {}).get("host") or {}
        if facts and not facts.get("ipvs"):
            missing.append(host)
    return missing


def swarm_hosts_without_esp(hosts, hostvars):
    missing = []
    for host in hosts:
        facts = (hostvars[host].get("swarm_probe") or {}).get("host") or {}
        if facts and not facts.get("esp"):
            missing.append(host)
    return missing


def swarm_placement_table(results):
    """One line per service of swarm_services' results: where its tasks run, or (check mode, where nothing was
    read after a change) what the plan is for it."""
    lines = []
    for result in results or []:
        service = (
            result.get("name") or (result.get("service") or {}).get("name") or (result.get("item") or {}).get("name")
        )
        if "running" not in result and "tasks" not in result:
            lines.append("%s: %s" % (service, result.get("outcome") or "unknown"))
            continue
        tasks = result.get("tasks") or []
        where = ", ".join("%s.%s on %s" % (service, t.get("slot") or t.get("id", "")[:6], t.get("node")) for t in tasks)
        lines.append(
            "%s: %s running%s" % (service, result.get("running", len(tasks)), " (%s)" % where if where else "")
        )
    return "\n".join(lines)


class FilterModule:
    def filters(self):
        return {
            "swarm_present": swarm_present,
            "swarm_absent": swarm_absent,
            "swarm_service_errors": swarm_service_errors,
            "swarm_service_args": swarm_service_args,
            "swarm_planned_objects": swarm_planned_objects,
            "swarm_removal": swarm_removal,
            "swarm_scale_args": swarm_scale_args,
            "swarm_ingress_services": swarm_ingress_services,
            "swarm_ingress_ports": swarm_ingress_ports,
            "swarm_hosts_without_ipvs": swarm_hosts_without_ipvs,
            "swarm_hosts_without_esp": swarm_hosts_without_esp,
            "swarm_placement_table": swarm_placement_table,
        }

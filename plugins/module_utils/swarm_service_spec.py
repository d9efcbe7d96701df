# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of swarm services: the wanted service spec from module options, on top of the live spec
(options left unset keep their live values) or of the docker CLI's defaults for a new service, and the
difference between two specs. No engine, no Ansible: unit-tested directly."""

from __future__ import annotations

import copy
import re

NS = 1_000_000_000


# Pure logic too, kept here and not in swarm_common: filter plugins import this module on the controller, where
# swarm_common's Docker SDK import would cost every task that uses a filter a tenth of a second.
def get_path(spec, path):
    """The value at a path of keys in nested dicts; None where the path ends early."""
    for key in path:
        if not isinstance(spec, dict):
            return None
        spec = spec.get(key)
    return spec


# What `docker service create` sets when the user says nothing (the SDK would send parallelism 0 = all at
# once and failure action continue).
CLI_UPDATE_DEFAULTS = dict(Parallelism=1, FailureAction="pause", Monitor=5 * NS, MaxFailureRatio=0, Order="stop-first")
CLI_DEFAULT_SPEC = dict(
    Labels={},
    TaskTemplate=dict(
        ContainerSpec=dict(StopGracePeriod=10 * NS),
        RestartPolicy=dict(Condition="any", Delay=5 * NS, MaxAttempts=0),
        Placement={},
        Resources=dict(Limits={}, Reservations={}),
    ),
    Mode=dict(Replicated=dict(Replicas=1)),
    UpdateConfig=dict(CLI_UPDATE_DEFAULTS),
    RollbackConfig=dict(CLI_UPDATE_DEFAULTS),
    EndpointSpec=dict(Mode="vip"),
)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_DURATION_UNITS = dict(ns=1, us=1_000, ms=1_000_000, s=NS, m=60 * NS, h=3600 * NS)
_SIZE_UNITS = dict(b=1, k=1024, m=1024**2, g=1024**3, t=1024**4)


class ServiceSpecError(ValueError):
    """An option value that cannot be turned into a spec; the message names the option."""


def duration_ns(value, option):
    """Seconds (int/float) or a Go duration string ('1m30s', '500ms') -> nanoseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * NS)
    text = str(value).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return int(float(text) * NS)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ServiceSpecError("%s: %r is not a duration (seconds, or like 10s, 1m30s, 500ms)" % (option, value))
    return int(sum(float(n) * _DURATION_UNITS[u] for n, u in parts))


def size_bytes(value, option):
    """Bytes (int) or a size like '64M', '1g', '512k' (binary units, as the docker CLI reads them)."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmgt])?i?b?", str(value).strip().lower())
    if not match:
        raise ServiceSpecError("%s: %r is not a size (bytes, or like 64M, 1G)" % (option, value))
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2) or "b"])


def nano_cpus(value, option):
    if value is None:
        return None
    try:
        return int(float(value) * NS)
    except (TypeError, ValueError):
        raise ServiceSpecError("%s: %r is not a number of CPUs" % (option, value)) from None


def image_matches(live_image, wanted):
    """A live image pinned by digest ('web:v1@sha256:...') matches 'web:v1' unless a digest was asked for."""
    if live_image == wanted or "@" in wanted:
        return live_image == wanted
    live_name = (live_image or "").split("@", 1)[0]
    if ":" not in wanted.rsplit("/", 1)[-1]:
        wanted += ":latest"  # the docker CLI pins an untagged image as name:latest@sha256:...
    return live_name == wanted


def env_list(env):
    """env (a dict, a list of KEY=value, or a string holding a dict as JSON or k=v pairs, as given on the
    command line) -> KEY=value entries. Any other string is refused without showing it: it may hold values."""
    if env is None:
        return None
    if isinstance(env, str):
        from ansible.module_utils.common.validation import check_type_dict

        try:
            env = check_type_dict(env)
        except (TypeError, ValueError):
            raise ServiceSpecError(
                "env: a string that is not a dict (its text is not shown: it may hold values); give a dict "
                "(KEY: value) or a list of KEY=value"
            ) from None
    if isinstance(env, dict):
        return ["%s=%s" % (k, "" if v is None else v) for k, v in sorted(env.items())]
    if not isinstance(env, (list, tuple)):
        raise ServiceSpecError("env: give a dict (KEY: value) or a list of KEY=value, not a %s" % type(env).__name__)
    return [str(e) for e in env]


def port_configs(publish):
    configs = []
    for index, port in enumerate(publish):
        target = port.get("target")
        if not isinstance(target, int) or not 1 <= target <= 65535:
            raise ServiceSpecError("publish[%d].target: %r is not a port (1-65535)" % (index, target))
        entry = dict(
            Protocol=port.get("protocol") or "tcp", TargetPort=target, PublishMode=port.get("mode") or "ingress"
        )
        if port.get("published") is not None:
            if not 1 <= int(port["published"]) <= 65535:
                raise ServiceSpecError("publish[%d].published: %r is not a port (1-65535)" % (index, port["published"]))
            entry["PublishedPort"] = int(port["published"])
        configs.append(entry)
    return sorted(configs, key=lambda p: (p["TargetPort"], p["Protocol"], p.get("PublishedPort", 0)))


def update_config(options, name):
    """UpdateConfig/RollbackConfig fields from the module's snake_case dict (only those given)."""
    if options is None:
        return None
    fields = {}
    mapping = dict(
        parallelism=("Parallelism", int),
        failure_action=("FailureAction", str),
        order=("Order", str),
        max_failure_ratio=("MaxFailureRatio", float),
    )
    for key, (api, kind) in mapping.items():
        if options.get(key) is not None:
            fields[api] = kind(options[key])
    for key, api in (("delay", "Delay"), ("monitor", "Monitor")):
        if options.get(key) is not None:
            fields[api] = duration_ns(options[key], "%s.%s" % (name, key))
    return fields


def wanted_spec(params, live_spec, resolved):
    """The full service spec to send: the live spec (or the CLI defaults for a new service) with every
    option the user set applied. `resolved` maps network names to IDs and secret/config names to IDs."""
    spec = copy.deepcopy(live_spec) if live_spec else copy.deepcopy(CLI_DEFAULT_SPEC)
    spec["Name"] = params["name"]
    if params.get("labels") is not None:
        spec["Labels"] = {str(k): str(v) for k, v in params["labels"].items()}
    task = spec.setdefault("TaskTemplate", {})
    set_container(task.setdefault("ContainerSpec", {}), params, resolved, keep_image=bool(live_spec))
    set_placement(task.setdefault("Placement", {}), params)
    set_resources(task, params)
    set_networks(spec, params, resolved["networks"])
    set_mode(spec, params)
    set_update_configs(spec, params)
    set_endpoint(spec.setdefault("EndpointSpec", {}), params)
    return spec


def set_container(container, params, resolved, keep_image):
    """ContainerSpec: image, command, environment, labels, health check, mounts, secrets and configs.
    keep_image: a live image pinned by digest stays when the same tag is asked for."""
    image = params.get("image")
    if image and not (keep_image and image_matches(container.get("Image"), image)):
        container["Image"] = image
    for option, api in (
        ("command", "Command"),
        ("args", "Args"),
        ("hostname", "Hostname"),
        ("user", "User"),
        ("workdir", "Dir"),
    ):
        if params.get(option) is not None:
            container[api] = params[option]
    if params.get("env") is not None:
        container["Env"] = env_list(params["env"])
    if params.get("container_labels") is not None:
        container["Labels"] = {str(k): str(v) for k, v in params["container_labels"].items()}
    if params.get("stop_grace_period") is not None:
        container["StopGracePeriod"] = duration_ns(params["stop_grace_period"], "stop_grace_period")
    if params.get("healthcheck") is not None:
        container["Healthcheck"] = healthcheck(params["healthcheck"])
    if params.get("mounts") is not None:
        container["Mounts"] = [mount(m, i) for i, m in enumerate(params["mounts"])]
    for option, api, id_key, name_key in (
        ("secrets", "Secrets", "SecretID", "SecretName"),
        ("configs", "Configs", "ConfigID", "ConfigName"),
    ):
        if params.get(option) is not None:
            container[api] = [
                reference(ref, resolved[option][ref["source"]], id_key, name_key) for ref in params[option]
            ]


def set_placement(placement, params):
    """Placement: constraints, spread preferences, replicas per node."""
    if params.get("constraints") is not None:
        for index, constraint in enumerate(params["constraints"]):
            if "==" not in constraint and "!=" not in constraint:
                raise ServiceSpecError(
                    "constraints[%d]: %r is not a constraint (like node.role==worker or node.labels.zone!=eu)"
                    % (index, constraint)
                )
        placement["Constraints"] = list(params["constraints"])
    if params.get("placement_preferences") is not None:
        placement["Preferences"] = [
            dict(Spread=dict(SpreadDescriptor=p["spread"])) for p in params["placement_preferences"]
        ]
    if params.get("max_replicas_per_node") is not None:
        placement["MaxReplicas"] = params["max_replicas_per_node"]


def set_resources(task, params):
    """Resources (limits, reservations) and the restart policy; keys not given keep their live values."""
    resources = task.setdefault("Resources", {})
    for option, api in (("limits", "Limits"), ("reservations", "Reservations")):
        if params.get(option) is not None:
            values = params[option]
            block = {}
            if values.get("cpus") is not None:
                block["NanoCPUs"] = nano_cpus(values["cpus"], "%s.cpus" % option)
            if values.get("memory") is not None:
                block["MemoryBytes"] = size_bytes(values["memory"], "%s.memory" % option)
            resources[api] = dict(resources.get(api) or {}, **block)
    if params.get("restart_policy") is not None:
        policy = params["restart_policy"]
        restart = task.setdefault("RestartPolicy", {})
        if policy.get("condition") is not None:
            restart["Condition"] = policy["condition"]
        for key, api in (("delay", "Delay"), ("window", "Window")):
            if policy.get(key) is not None:
                restart[api] = duration_ns(policy[key], "restart_policy.%s" % key)
        if policy.get("max_attempts") is not None:
            restart["MaxAttempts"] = policy["max_attempts"]


def set_networks(spec, params, ids):
    if params.get("networks") is not None:
        spec["TaskTemplate"]["Networks"] = sorted(
            (attachment(n, ids) for n in params["networks"]), key=lambda a: a["Target"]
        )
        spec.pop("Networks", None)  # the deprecated place; the engine moves it to TaskTemplate


def set_mode(spec, params):
    """Mode: global, or replicated with the given count (else the live count, else 1)."""
    if params.get("mode") == "global":
        spec["Mode"] = dict(Global={})
    elif params.get("mode") == "replicated" or params.get("replicas") is not None:
        replicas = params.get("replicas")
        if replicas is None:
            replicas = (spec.get("Mode") or {}).get("Replicated", {}).get("Replicas", 1)
        spec["Mode"] = dict(Replicated=dict(Replicas=replicas))


def set_update_configs(spec, params):
    for option, api in (("update_config", "UpdateConfig"), ("rollback_config", "RollbackConfig")):
        fields = update_config(params.get(option), option)
        if fields:
            spec.setdefault(api, dict(CLI_UPDATE_DEFAULTS)).update(fields)


def set_endpoint(endpoint, params):
    if params.get("endpoint_mode") is not None:
        endpoint["Mode"] = params["endpoint_mode"]
    if params.get("publish") is not None:
        endpoint["Ports"] = port_configs(params["publish"])


def attachment(network, ids):
    if isinstance(network, str):
        network = dict(name=network)
    result = dict(Target=ids[network["name"]])
    if network.get("aliases"):
        result["Aliases"] = list(network["aliases"])
    return result


def reference(ref, object_id, id_key, name_key):
    return {
        id_key: object_id,
        name_key: ref["source"],
        "File": dict(
            Name=ref.get("target") or ref["source"],
            UID=str(ref.get("uid", "0")),
            GID=str(ref.get("gid", "0")),
            Mode=file_mode(ref.get("mode", 0o444)),
        ),
    }


def file_mode(mode):
    """0o440 or "0440" (a quoted mode, as YAML wants it) -> 288; a string is always octal."""
    return int(mode, 8) if isinstance(mode, str) else int(mode)


def mount(m, index):
    if not m.get("target"):
        raise ServiceSpecError("mounts[%d].target is required" % index)
    result = dict(Type=m.get("type") or "volume", Target=m["target"])
    if m.get("readonly"):
        result["ReadOnly"] = True  # the engine leaves a false ReadOnly out
    if m.get("source"):
        result["Source"] = m["source"]
    return result


def healthcheck(check):
    test = check.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    result = dict(Test=test or ["NONE"])
    for key, api in (("interval", "Interval"), ("timeout", "Timeout"), ("start_period", "StartPeriod")):
        if check.get(key) is not None:
            result[api] = duration_ns(check[key], "healthcheck.%s" % key)
    if check.get("retries") is not None:
        result["Retries"] = check["retries"]
    return result


def _normal(value):
    """Specs compare without empty containers the engine drops or adds on its own."""
    if isinstance(value, dict):
        normal = {k: _normal(v) for k, v in value.items()}
        return {k: v for k, v in normal.items() if v not in (None, {}, [], "")}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def spec_differences(before, after, path=""):
    """{dotted.path: {before, after}} for every leaf that differs between two specs."""
    before, after = _normal(before or {}), _normal(after or {})
    changes = {}
    for key in sorted(set(before) | set(after)):
        here = "%s.%s" % (path, key) if path else key
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes.update(spec_differences(old, new, here))
        elif old != new:
            changes[here] = dict(before=old, after=new)
    return changes


def mode_of(spec):
    return "global" if "Global" in ((spec or {}).get("Mode") or {}) else "replicated"


def validate_service_list(services):
    """Errors in a list of service definitions as a play declares them (before anything is applied)."""
    errors = []
    seen = {}
    published = {}
    for index, service in enumerate(services or []):
        name = service.get("name")
        where = "swarm_services[%d]" % index
        if not name:
            errors.append("%s has no name. Fix: give every service a name." % where)
            continue
        if name in seen:
            errors.append(
                "service %s is declared twice (swarm_services[%d] and [%d]). Fix: keep one." % (name, seen[name], index)
            )
        seen[name] = index
        replicas = service.get("replicas")
        if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0):
            errors.append("service %s: replicas=%r is not a whole number >= 0." % (name, replicas))
        for port_index, port in enumerate(service.get("publish") or []):
            for key in ("target", "published"):
                value = port.get(key)
                if value is None and key == "published":
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                    errors.append(
                        "service %s: publish[%d].%s=%r is not a port (1-65535)." % (name, port_index, key, value)
                    )
            if isinstance(port.get("published"), int) and service.get("state", "present") == "present":
                key = (port["published"], port.get("protocol") or "tcp")
                if key in published and published[key] != name:
                    errors.append(
                        "service %s: published port %d/%s is also published by service %s. Fix: use another port."
                        % (name, key[0], key[1], published[key])
                    )
                published[key] = name
    return errors


# --------------------------------------------------------------------------- rebuilds


def rebuild_reasons(live_spec, spec):
    """Why the engine cannot update the live service into `spec` in place (it has to be removed and created
    again): a list of short texts, empty when an update will do. The mode is the one field it refuses."""
    if live_spec and mode_of(live_spec) != mode_of(spec):
        return ["mode %s -> %s" % (mode_of(live_spec), mode_of(spec))]
    return []


def restorable_spec(service):
    """The spec that re-creates a live service as it is: its Spec, with the ports the swarm picked for
    ingress ports published without a number pinned, so that clients find them where they were."""
    spec = copy.deepcopy(service["Spec"])
    assigned = {
        (p.get("TargetPort"), p.get("Protocol", "tcp"), p.get("PublishMode", "ingress")): p.get("PublishedPort")
        for p in (service.get("Endpoint") or {}).get("Ports") or []
    }
    for port in (spec.get("EndpointSpec") or {}).get("Ports") or []:
        key = (port.get("TargetPort"), port.get("Protocol", "tcp"), port.get("PublishMode", "ingress"))
        if not port.get("PublishedPort") and assigned.get(key):
            port["PublishedPort"] = assigned[key]
    return spec


def describe_spec(spec, network_names=None):
    """A service spec in a few words for messages: mode, replicas, image, ports, networks (named by
    network_names, {ID: name}), secrets, configs."""
    container = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
    parts = [
        "%s%s of %s"
        % (
            mode_of(spec),
            ", %s replica%s" % (replicas, "" if replicas == 1 else "s") if replicas is not None else "",
            (container.get("Image") or "?").split("@", 1)[0],
        )
    ]
    ports = [
        "%s->%s/%s" % (p.get("PublishedPort", "auto"), p.get("TargetPort"), p.get("Protocol", "tcp"))
        for p in (spec.get("EndpointSpec") or {}).get("Ports") or []
    ]
    networks = [
        (network_names or {}).get(n.get("Target"), n.get("Target"))
        for n in (spec.get("TaskTemplate") or {}).get("Networks") or []
    ]
    for label, values in (
        ("ports", ports),
        ("networks", networks),
        ("secrets", [s.get("SecretName") for s in container.get("Secrets") or []]),
        ("configs", [c.get("ConfigName") for c in container.get("Configs") or []]),
    ):
        if values:
            parts.append("%s %s" % (label, ", ".join(str(v) for v in values)))
    return "; ".join(parts)


# --------------------------------------------------------------------------- nodes a service can run on

_ARCH_ALIASES = dict(x86_64="amd64", aarch64="arm64")


def _normal_arch(arch):
    return _ARCH_ALIASES.get(arch or "", arch or "")


def constraint_matches(constraint, node):
    """One placement constraint (`key==value` or `key!=value`) against a node (engine API object), with the
    engine's rules: keys and values compare without case, except label names; a missing value is ''."""
    for operator in ("==", "!="):
        if operator in constraint:
            key, dummy, value = (part.strip() for part in constraint.partition(operator))
            break
    else:
        return False
    description = node.get("Description") or {}
    platform = description.get("Platform") or {}
    lowered = key.lower()
    if lowered == "node.ip":
        return _ip_matches(value, (node.get("Status") or {}).get("Addr"), operator)
    if lowered == "node.id":
        actual = node.get("ID")
    elif lowered == "node.hostname":
        actual = description.get("Hostname")
    elif lowered == "node.role":
        actual = (node.get("Spec") or {}).get("Role")
    elif lowered == "node.platform.os":
        actual = platform.get("OS")
    elif lowered == "node.platform.arch":
        actual = platform.get("Architecture")
    elif lowered.startswith("node.labels.") and len(key) > len("node.labels."):
        actual = ((node.get("Spec") or {}).get("Labels") or {}).get(key[len("node.labels.") :])
    elif lowered.startswith("engine.labels.") and len(key) > len("engine.labels."):
        actual = ((description.get("Engine") or {}).get("Labels") or {}).get(key[len("engine.labels.") :])
    else:
        return False
    equal = (actual or "").lower() == value.lower()
    return equal if operator == "==" else not equal


def _ip_matches(value, address, operator):
    import ipaddress

    try:
        node_ip = ipaddress.ip_address(address or "")
    except ValueError:
        node_ip = None
    try:
        within = node_ip is not None and node_ip in ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False  # the engine rejects a malformed address or network
    return within if operator == "==" else not within


def platform_matches(platforms, node):
    """Whether a node's OS and architecture is one of the service's platforms (none listed: any)."""
    if not platforms:
        return True
    platform = (node.get("Description") or {}).get("Platform") or {}
    arch, os_name = _normal_arch(platform.get("Architecture")), platform.get("OS") or ""
    return any(
        (not p.get("Architecture") or _normal_arch(p["Architecture"]) == arch)
        and (not p.get("OS") or p["OS"] == os_name)
        for p in platforms
    )


def eligible_nodes(nodes, spec):
    """The nodes a task of the service can run on now: Ready, availability active, matching its placement
    constraints and platforms. For a global service, one task per such node is what it wants."""
    placement = ((spec or {}).get("TaskTemplate") or {}).get("Placement") or {}
    return [
        node
        for node in nodes or []
        if (node.get("Status") or {}).get("State") == "ready"
        and (node.get("Spec") or {}).get("Availability") == "active"
        and all(constraint_matches(c, node) for c in placement.get("Constraints") or [])
        and platform_matches(placement.get("Platforms"), node)
    ]


def placement_error(spec, nodes):
    """Why a replicated service's replicas can never all be placed on these nodes, or None.

    Counted on the nodes that match its constraints and platforms with availability active, whatever their state
    (a node that is down now may come back: that is for the wait to see); each such node takes at most
    max_replicas_per_node tasks, and one task when the service publishes a port in host mode.
    """
    if mode_of(spec) != "replicated":
        return None
    replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
    if not replicas:
        return None
    placement = (spec.get("TaskTemplate") or {}).get("Placement") or {}
    constraints = placement.get("Constraints") or []
    usable = [
        node
        for node in nodes or []
        if (node.get("Spec") or {}).get("Availability") == "active"
        and all(constraint_matches(c, node) for c in constraints)
        and platform_matches(placement.get("Platforms"), node)
    ]
    where = "availability active%s" % (", matching constraints %s" % constraints if constraints else "")
    if not usable:
        return "no node can run it (none of the %d nodes is %s)" % (len(nodes or []), where)
    limits = []
    if placement.get("MaxReplicas"):
        limits.append((placement["MaxReplicas"], "max_replicas_per_node: %d" % placement["MaxReplicas"]))
    host_ports = [
        "%s/%s" % (p["PublishedPort"], p.get("Protocol") or "tcp")
        for p in (spec.get("EndpointSpec") or {}).get("Ports") or []
        if p.get("PublishMode") == "host" and p.get("PublishedPort")
    ]
    if host_ports:
        limits.append((1, "port %s published in host mode" % ", ".join(host_ports)))
    if not limits:
        return None
    per_node = min(limit for limit, _why in limits)
    if per_node * len(usable) >= replicas:
        return None
    return "%d replicas cannot be placed: %d node(s) can run it (%s: %s), each at most %d task(s) (%s)" % (
        replicas,
        len(usable),
        where,
        ", ".join(sorted((n.get("Description") or {}).get("Hostname") or n.get("ID", "?") for n in usable)),
        per_node,
        "; ".join(why for _limit, why in limits),
    )


# --------------------------------------------------------------------------- secrets in output

ENV_PATH = "TaskTemplate.ContainerSpec.Env"
HIDDEN = "<hidden>"
HIDDEN_CHANGED = "<hidden, changed>"


def _env_pairs(entries):
    """KEY=value entries -> {KEY: value}; an entry without '=' (taken from the daemon) maps to None."""
    pairs = {}
    for entry in entries or []:
        key, sep, value = str(entry).partition("=")
        pairs[key] = value if sep else None
    return pairs


def masked_env(entries, compare_with=None):
    """An Env list with every value hidden and the key names kept; with compare_with (the other side of a
    diff), a value that differs from it says so."""
    other = _env_pairs(compare_with) if compare_with is not None else None
    masked = []
    for key, value in _env_pairs(entries).items():
        if value is None:
            masked.append(key)
        elif other is not None and key in other and other[key] != value:
            masked.append("%s=%s" % (key, HIDDEN_CHANGED))
        else:
            masked.append("%s=%s" % (key, HIDDEN))
    return masked


def masked_changes(changes):
    """The changes of a plan with the values of env hidden (before, and after marked where they differ),
    whether env is a change of its own or inside a larger one (a new service, a new container spec)."""
    masked = {}
    for path, change in changes.items():
        if path == ENV_PATH or ENV_PATH.startswith(path + "."):
            inner = ENV_PATH[len(path) + 1 :].split(".") if path != ENV_PATH else []
            before, after = get_path(change.get("before"), inner), get_path(change.get("after"), inner)
            change = dict(
                before=_with_env(change.get("before"), inner, masked_env(before) if before is not None else None),
                after=_with_env(
                    change.get("after"),
                    inner,
                    masked_env(after, compare_with=before or []) if after is not None else None,
                ),
            )
        masked[path] = change
    return masked


def _with_env(value, keys, env):
    """A copy of value with the list at keys replaced by env (value itself when keys is empty)."""
    if not keys:
        return env
    if not isinstance(value, dict) or keys[0] not in value:
        return value
    return dict(value, **{keys[0]: _with_env(value[keys[0]], keys[1:], env)})


def masked_params(params):
    """Service options as they may be shown (the module's invocation): env values hidden, names kept."""
    env = params.get("env")
    if env is None:
        return params
    try:
        entries = env_list(env)
    except ServiceSpecError:
        return dict(params, env=HIDDEN)
    hidden = {key: HIDDEN for key in env} if isinstance(env, dict) else masked_env(entries)
    return dict(params, env=hidden)

# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of swarm services: the wanted service spec from module options, on top of the live spec
(options left unset keep their live values) or of the docker CLI's defaults for a new service, and the
difference between two specs. No engine, no Ansible: unit-tested directly."""

from __future__ import annotations

import copy
import re

NS = 1_000_000_000

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
    if env is None:
        return None
    if isinstance(env, dict):
        return ["%s=%s" % (k, "" if v is None else v) for k, v in sorted(env.items())]
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
    task = spec.setdefault("TaskTemplate", {})
    container = task.setdefault("ContainerSpec", {})

    if params.get("image") and not (live_spec and image_matches(container.get("Image"), params["image"])):
        container["Image"] = params["image"]
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
    if params.get("labels") is not None:
        spec["Labels"] = {str(k): str(v) for k, v in params["labels"].items()}

    placement = task.setdefault("Placement", {})
    if params.get("constraints") is not None:
        placement["Constraints"] = list(params["constraints"])
    if params.get("placement_preferences") is not None:
        placement["Preferences"] = [
            dict(Spread=dict(SpreadDescriptor=p["spread"])) for p in params["placement_preferences"]
        ]
    if params.get("max_replicas_per_node") is not None:
        placement["MaxReplicas"] = params["max_replicas_per_node"]

    resources = task.setdefault("Resources", {})
    for option, api in (("limits", "Limits"), ("reservations", "Reservations")):
        if params.get(option) is not None:
            values = params[option]
            block = {}
            if values.get("cpus") is not None:
                block["NanoCPUs"] = nano_cpus(values["cpus"], "%s.cpus" % option)
            if values.get("memory") is not None:
                block["MemoryBytes"] = size_bytes(values["memory"], "%s.memory" % option)
            resources[api] = dict(resources.get(api) or {}, **block)  # what is not given keeps its live value
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

    if params.get("networks") is not None:
        task["Networks"] = sorted(
            (attachment(n, resolved["networks"]) for n in params["networks"]), key=lambda a: a["Target"]
        )
        spec.pop("Networks", None)  # the deprecated place; the engine moves it to TaskTemplate

    if params.get("mode") == "global":
        spec["Mode"] = dict(Global={})
    elif params.get("mode") == "replicated" or params.get("replicas") is not None:
        replicas = params.get("replicas")
        if replicas is None:
            replicas = (spec.get("Mode") or {}).get("Replicated", {}).get("Replicas", 1)
        spec["Mode"] = dict(Replicated=dict(Replicas=replicas))

    for option, api in (("update_config", "UpdateConfig"), ("rollback_config", "RollbackConfig")):
        fields = update_config(params.get(option), option)
        if fields:
            spec.setdefault(api, dict(CLI_UPDATE_DEFAULTS)).update(fields)

    endpoint = spec.setdefault("EndpointSpec", {})
    if params.get("endpoint_mode") is not None:
        endpoint["Mode"] = params["endpoint_mode"]
    if params.get("publish") is not None:
        endpoint["Ports"] = port_configs(params["publish"])
    return spec


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

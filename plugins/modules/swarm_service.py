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
  diff_mode:
    support: full
requirements:
  - Docker SDK for Python >= 4.0 on the target (Debian/Ubuntu package python3-docker)
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

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    ENGINE_ARGUMENT_SPEC,
    EngineClient,
    local_node_state,
)
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import (
    ServiceSpecError,
    mode_of,
    spec_differences,
    wanted_spec,
)

IMAGE_ERRORS = ("No such image", "manifest unknown", "not found", "pull access denied", "failed to resolve reference")
FAILED_UPDATE_STATES = ("paused", "rollback_paused", "rollback_completed")


class ServiceFailure(Exception):
    pass


class ServiceManager:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = EngineClient(module)
        self.created = False
        if not local_node_state(self.client.info())["is_manager"]:
            self.fail("must run on a swarm manager")

    def fail(self, msg, **kwargs):
        self.client.fail("service %s: %s" % (self.params["name"], msg), **kwargs)

    # ----------------------------------------------------------------- lookups

    def find(self):
        for service in self.client.call(
            "listing services", self.client.api.services, filters=dict(name=self.params["name"])
        ):
            if service["Spec"]["Name"] == self.params["name"]:
                return service
        return None

    def resolve(self):
        """Network, secret and config names -> IDs; an unknown name fails before anything changes."""
        resolved = dict(networks={}, secrets={}, configs={})
        for network in self.params["networks"] or []:
            name = network if isinstance(network, str) else network.get("name")
            found = [
                n
                for n in self.client.call("listing networks", self.client.api.networks, names=[name])
                if n["Name"] == name
            ]
            if not found:
                self.fail(
                    "unknown network %s (networks: field). Fix: declare it in swarm_networks or create it first." % name
                )
            resolved["networks"][name] = found[0]["Id"]
        for option, lister in (("secrets", self.client.api.secrets), ("configs", self.client.api.configs)):
            for ref in self.params[option] or []:
                found = [
                    o
                    for o in self.client.call("listing " + option, lister, filters=dict(name=ref["source"]))
                    if o["Spec"]["Name"] == ref["source"]
                ]
                if not found:
                    self.fail("unknown %s %s (%s: field). Fix: create it first." % (option[:-1], ref["source"], option))
                resolved[option][ref["source"]] = found[0]["ID"]
        return resolved

    def check_ports(self, spec, live):
        """A published port another service already publishes fails here, before anything is sent."""
        wanted = {
            (p.get("PublishedPort"), p.get("Protocol", "tcp"))
            for p in (spec.get("EndpointSpec") or {}).get("Ports") or []
        }
        wanted.discard((None, "tcp"))
        wanted.discard((None, "udp"))
        if not wanted:
            return
        for other in self.client.call("listing services", self.client.api.services):
            if live and other["ID"] == live["ID"]:
                continue
            ports = ((other.get("Spec") or {}).get("EndpointSpec") or {}).get("Ports") or []
            for port, protocol in sorted(wanted & {(p.get("PublishedPort"), p.get("Protocol", "tcp")) for p in ports}):
                self.fail(
                    "published port %s/%s is already used by service %s (publish: field). Fix: choose another port."
                    % (port, protocol, other["Spec"]["Name"])
                )

    # ----------------------------------------------------------------- run

    def run(self):
        live = self.find()
        result = dict(changed=False, changes={}, rebuilt=False, rolled_back=False)
        if self.params["state"] == "absent":
            if live:
                result.update(changed=True, diff=dict(before=dict(name=self.params["name"]), after={}))
                if not self.module.check_mode:
                    self.client.call("removing the service", self.client.api.remove_service, live["ID"])
            return result
        if live is None and not self.params["image"]:
            self.fail("image is required to create the service")
        if self.params["replicas"] is not None and self.params["replicas"] < 0:
            self.fail("replicas=%d must be 0 or more" % self.params["replicas"])
        try:
            spec = wanted_spec(self.params, live["Spec"] if live else None, self.resolve())
        except ServiceSpecError as exc:
            self.fail(str(exc))
        if (
            live
            and mode_of(live["Spec"]) == "global"
            and self.params["replicas"] is not None
            and not self.params["mode"]
        ):
            self.fail(
                "replicas cannot be set on a global service. Fix: also set mode: replicated (the service is rebuilt)"
            )
        self.check_ports(spec, live)
        rebuild = bool(live) and self.params["mode"] is not None and mode_of(live["Spec"]) != self.params["mode"]
        changes = spec_differences(live["Spec"] if live else {}, spec)
        if rebuild:
            changes["Mode"] = dict(
                before=mode_of(live["Spec"]),
                after="%s (the service is removed and created again)" % self.params["mode"],
            )
        result.update(changes=changes, rebuilt=rebuild, changed=bool(changes))
        result["diff"] = dict(
            before={k: v["before"] for k, v in changes.items()}, after={k: v["after"] for k, v in changes.items()}
        )
        if self.module.check_mode:
            return result
        started = time.time()
        if changes:
            self.apply(live, spec, rebuild)
        if self.params["wait"]:
            # A change of the task template rolls out as an update; a scale alone does not.
            rollout = live is not None and not rebuild and any(p.startswith("TaskTemplate") for p in changes)
            live = self.find()
            try:
                result.update(self.wait(started if rollout else None))
            except ServiceFailure as exc:
                result.update(self.recover(live))
                self.fail(str(exc) + result.pop("_recovery", ""), **{k: result[k] for k in ("changes", "rolled_back")})
        live = self.find()
        result["service"] = summary(live)
        return result

    def apply(self, live, spec, rebuild):
        if live and rebuild:
            self.client.call("removing the service to change its mode", self.client.api.remove_service, live["ID"])
            live = None
        if live is None:
            self.client.post_json("creating the service", "/services/create", spec)
            self.created = True
        else:
            self.client.post_json(
                "updating the service",
                "/services/%s/update" % live["ID"],
                spec,
                params=dict(version=live["Version"]["Index"]),
            )

    def recover(self, live):
        """Leave what was there before: a new service is removed, a failed update rolled back."""
        if self.created:
            self.client.call("removing the service that did not start", self.client.api.remove_service, live["ID"])
            return dict(_recovery=". The new service was removed again; nothing is left half-created.")
        if not self.params["rollback_on_failure"]:
            return dict(_recovery=". The update is left as the engine stopped it (rollback_on_failure=false).")
        current = self.find()
        self.client.post_json(
            "rolling the update back",
            "/services/%s/update" % current["ID"],
            current.get("PreviousSpec") or current["Spec"],
            params=dict(version=current["Version"]["Index"], rollback="previous"),
        )
        deadline = time.monotonic() + self.params["wait_timeout"]
        while time.monotonic() < deadline:
            state = ((self.find() or {}).get("UpdateStatus") or {}).get("State")
            if state in ("rollback_completed", "completed"):
                break
            time.sleep(1)
        return dict(rolled_back=True, _recovery=". The update was rolled back to the previous spec.")

    def wait(self, rollout_since):
        """Until the desired tasks run; with rollout_since, also until the update started after it completes."""
        deadline = time.monotonic() + self.params["wait_timeout"]
        while True:
            live = self.find()
            status = {}
            if rollout_since is not None:
                status = live.get("UpdateStatus") or {}
                if not status or timestamp(status.get("StartedAt")) < rollout_since - 1:
                    status = dict(State="waiting for the update to start")
            tasks = self.client.call("listing tasks", self.client.api.tasks, filters=dict(service=live["ID"]))
            current = [t for t in tasks if t.get("DesiredState") == "running"]
            running = [t for t in current if (t.get("Status") or {}).get("State") == "running"]
            for task in tasks:
                error = (task.get("Status") or {}).get("Err") or ""
                if any(marker in error for marker in IMAGE_ERRORS):
                    raise ServiceFailure("image %s cannot be pulled: %s" % (self._image(live), error))
            if status.get("State") in FAILED_UPDATE_STATES:
                raise ServiceFailure("the update failed (%s)" % (status.get("Message") or status.get("State")))
            wanted = self._wanted_tasks(live, current)
            if len(running) >= wanted and status.get("State") in (None, "completed") and len(running) == len(current):
                return dict(running=len(running), tasks=self._placement(running))
            if time.monotonic() > deadline:
                states = ", ".join(sorted({(t.get("Status") or {}).get("State", "?") for t in current})) or "none"
                reasons = sorted(
                    {
                        (t.get("Status") or {}).get("Err") or (t.get("Status") or {}).get("Message") or ""
                        for t in current
                        if t not in running
                    }
                    - {""}
                )
                raise ServiceFailure(
                    "%d of %d tasks running after %ss (task states: %s; update state: %s%s)"
                    % (
                        len(running),
                        wanted,
                        self.params["wait_timeout"],
                        states,
                        status.get("State") or "none",
                        "; engine says: " + "; ".join(reasons) if reasons else "",
                    )
                )
            time.sleep(1)

    @staticmethod
    def _image(live):
        return live["Spec"]["TaskTemplate"]["ContainerSpec"].get("Image", "?").split("@", 1)[0]

    @staticmethod
    def _wanted_tasks(live, current):
        mode = live["Spec"].get("Mode") or {}
        if "Replicated" in mode:
            return mode["Replicated"].get("Replicas", 1)
        return len(current)

    def _placement(self, running):
        names = {n["ID"]: (n.get("Description") or {}).get("Hostname") for n in self.client.nodes()}
        return sorted(
            (dict(node=names.get(t.get("NodeID"), t.get("NodeID")), slot=t.get("Slot"), id=t["ID"]) for t in running),
            key=lambda t: (t["slot"] or 0, t["node"] or ""),
        )


def timestamp(text):
    """Engine time ('2026-11-25T21:30:01.123456789Z') -> seconds since the epoch (0 when absent)."""
    if not text:
        return 0
    from datetime import datetime, timezone

    whole, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return moment.timestamp() + float("0." + (fraction or "0"))


def summary(service):
    if not service:
        return {}
    spec = service["Spec"]
    return dict(
        name=spec["Name"],
        id=service["ID"],
        mode=mode_of(spec),
        replicas=(spec.get("Mode") or {}).get("Replicated", {}).get("Replicas"),
        image=spec["TaskTemplate"]["ContainerSpec"].get("Image"),
    )


def main():
    duration = dict(type="raw")
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            image=dict(type="str"),
            command=dict(type="list", elements="str"),
            args=dict(type="list", elements="str"),
            mode=dict(type="str", choices=["replicated", "global"]),
            replicas=dict(type="int"),
            publish=dict(
                type="list",
                elements="dict",
                options=dict(
                    target=dict(type="int", required=True),
                    published=dict(type="int"),
                    protocol=dict(type="str", default="tcp", choices=["tcp", "udp"]),
                    mode=dict(type="str", default="ingress", choices=["ingress", "host"]),
                ),
            ),
            networks=dict(type="list", elements="raw"),
            env=dict(type="raw"),
            labels=dict(type="dict"),
            container_labels=dict(type="dict"),
            constraints=dict(type="list", elements="str"),
            placement_preferences=dict(type="list", elements="dict"),
            max_replicas_per_node=dict(type="int"),
            limits=dict(type="dict"),
            reservations=dict(type="dict"),
            restart_policy=dict(type="dict"),
            update_config=dict(type="dict"),
            rollback_config=dict(type="dict"),
            healthcheck=dict(type="dict"),
            mounts=dict(type="list", elements="dict"),
            secrets=dict(type="list", elements="dict"),
            configs=dict(type="list", elements="dict"),
            endpoint_mode=dict(type="str", choices=["vip", "dnsrr"]),
            hostname=dict(type="str"),
            user=dict(type="str"),
            workdir=dict(type="str"),
            stop_grace_period=duration,
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=120),
            rollback_on_failure=dict(type="bool", default=True),
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
    )
    if module.params["mode"] == "global" and module.params["replicas"] is not None:
        module.fail_json(msg="service %s: replicas cannot be set for a global service" % module.params["name"])
    module.exit_json(**ServiceManager(module).run())


if __name__ == "__main__":
    main()

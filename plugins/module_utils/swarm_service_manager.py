# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine side of swarm services, shared by swarm_service (one) and swarm_services (a list): read the live
service, plan the spec to send, apply it, wait for convergence and leave what was there before on failure."""

from __future__ import annotations

import time

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import (
    ServiceSpecError,
    mode_of,
    spec_differences,
    wanted_spec,
)

IMAGE_ERRORS = ("No such image", "manifest unknown", "not found", "pull access denied", "failed to resolve reference")
FAILED_UPDATE_STATES = ("paused", "rollback_paused", "rollback_completed")


class ServiceFailure(Exception):
    """A service that did not converge; recovery follows."""


class ServiceError(Exception):
    """A service that cannot (or did not) reach its wanted state; the message starts with its name."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.details = details


class ServiceManager:
    """One service: plan() reads and diffs, apply() sends, settle() waits and recovers. Errors raise ServiceError."""

    def __init__(self, module, client, params, shared=None):
        """shared: a dict several managers of one run share, so the node list and (while planning) the service
        list are read once per run, not once per service."""
        self.module = module
        self.client = client
        self.params = params
        self.shared = {} if shared is None else shared
        self.created = False
        self.result = dict(changed=False, changes={}, rebuilt=False, rolled_back=False)

    def fail(self, msg, **details):
        raise ServiceError("service %s: %s" % (self.params["name"], msg), **details)

    # ----------------------------------------------------------------- lookups

    def all_services(self):
        """Every service: the snapshot taken for planning when there is one, else the live list."""
        if "services" in self.shared:
            return self.shared["services"]
        return self.client.call("listing services", self.client.api.services)

    def find(self):
        candidates = self.shared.get("services")
        if candidates is None:
            candidates = self.client.call(
                "listing services", self.client.api.services, filters=dict(name=self.params["name"])
            )
        for service in candidates:
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
        for other in self.all_services():
            if live and other["ID"] == live["ID"]:
                continue
            ports = ((other.get("Spec") or {}).get("EndpointSpec") or {}).get("Ports") or []
            for port, protocol in sorted(wanted & {(p.get("PublishedPort"), p.get("Protocol", "tcp")) for p in ports}):
                self.fail(
                    "published port %s/%s is already used by service %s (publish: field). Fix: choose another port."
                    % (port, protocol, other["Spec"]["Name"])
                )

    # ----------------------------------------------------------------- run

    def plan(self):
        """Read the live service and work out what to send; nothing is changed. Returns the result so far."""
        self.live = self.find()
        self.spec = None
        self.rebuild = False
        result = self.result
        if self.params["state"] == "absent":
            if self.live:
                result.update(changed=True, diff=dict(before=dict(name=self.params["name"]), after={}))
            return result
        if self.live is None and not self.params["image"]:
            self.fail("image is required to create the service")
        if self.params["replicas"] is not None and self.params["replicas"] < 0:
            self.fail("replicas=%d must be 0 or more" % self.params["replicas"])
        live_spec = self.live["Spec"] if self.live else None
        if (
            live_spec
            and mode_of(live_spec) == "global"
            and self.params["replicas"] is not None
            and not self.params["mode"]
        ):
            self.fail(
                "replicas cannot be set on a global service. Fix: also set mode: replicated (the service is rebuilt)"
            )
        try:
            self.spec = wanted_spec(self.params, live_spec, self.resolve())
        except ServiceSpecError as exc:
            self.fail(str(exc))
        self.check_ports(self.spec, self.live)
        self.rebuild = bool(live_spec) and self.params["mode"] is not None and mode_of(live_spec) != self.params["mode"]
        changes = spec_differences(live_spec or {}, self.spec)
        if self.rebuild:
            changes["Mode"] = dict(
                before=mode_of(live_spec), after="%s (the service is removed and created again)" % self.params["mode"]
            )
        result.update(changes=changes, rebuilt=self.rebuild, changed=bool(changes))
        result["diff"] = dict(
            before={k: v["before"] for k, v in changes.items()}, after={k: v["after"] for k, v in changes.items()}
        )
        return result

    def execute(self):
        """Send what plan() found; returns the time the change was sent."""
        self.started = time.time()
        if self.params["state"] == "absent":
            if self.live:
                self.client.call(
                    "removing service %s" % self.params["name"], self.client.api.remove_service, self.live["ID"]
                )
        elif self.result["changes"]:
            self.apply(self.live, self.spec, self.rebuild)
        return self.started

    def settle(self):
        """Wait for convergence (with wait=true); on failure leave what was there before, then raise."""
        result = self.result
        if self.params["state"] == "absent":
            return result
        if self.params["wait"]:
            # A change of the task template rolls out as an update; a scale alone does not.
            changes = result["changes"]
            rollout = self.live is not None and not self.rebuild and any(p.startswith("TaskTemplate") for p in changes)
            live = self.find()
            try:
                result.update(self.wait(self.started if rollout else None))
            except ServiceFailure as exc:
                result.update(self.recover(live))
                self.fail(str(exc) + result.pop("_recovery", ""), changes=changes, rolled_back=result["rolled_back"])
        result["service"] = summary(self.find())
        return result

    def run(self):
        self.plan()
        if self.module.check_mode:
            return self.result
        self.execute()
        return self.settle()

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
        if "node_names" not in self.shared:
            self.shared["node_names"] = {
                n["ID"]: (n.get("Description") or {}).get("Hostname") for n in self.client.nodes()
            }
        names = self.shared["node_names"]
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


# Options of one service (swarm_service options; elements of swarm_services.services).
DURATION = dict(type="raw")
SERVICE_OPTIONS = dict(
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
    stop_grace_period=DURATION,
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=120),
    rollback_on_failure=dict(type="bool", default=True),
)

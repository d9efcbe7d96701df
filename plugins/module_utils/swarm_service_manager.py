# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engine side of swarm services, shared by swarm_service (one) and swarm_services (a list): read the live
service, plan the spec to send, apply it, wait for convergence and, on failure, leave what was there before
(or say exactly what is left and how to restore it)."""

from __future__ import annotations

import json
import os
import time

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import EngineClient, EngineError
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import (
    ServiceSpecError,
    constraint_matches,
    describe_spec,
    eligible_nodes,
    masked_changes,
    mode_of,
    placement_error,
    platform_matches,
    rebuild_reasons,
    restorable_spec,
    spec_differences,
    wanted_spec,
)

IMAGE_ERRORS = ("No such image", "manifest unknown", "not found", "pull access denied", "failed to resolve reference")
# A task that failed this often since the change is crash-looping: the engine would restart it for ever.
CRASH_LIMIT = 3
# Seconds tasks may stay pending because no node can take them ("no suitable node ...") before the wait gives up: a
# rolling update of a host-mode service sees it for a moment while the old task still holds the port.
PLACEMENT_GRACE = 10
# While a rebuild waits for the new service the old one is gone: its first failed task ends the wait (as the
# first failed task pauses an update), so that the old service is back as soon as possible.
REBUILD_CRASH_LIMIT = 1
# Where the spec of a service removed for a rebuild is kept until the rebuild (or its undoing) succeeded.
SAVED_SPEC_DIR = "/var/lib/swarmplane/saved-services"
# Right after a removal the engine may still hold the name or a published port for a moment.
RECREATE_GRACE = 10
ENGINE_SOCKET = "/var/run/docker.sock"
# A task started by a change counts once it ran this long (the service's update monitor, else the CLI's 5 s),
# capped so that a long monitor does not hold the run.
STABLE_DEFAULT = 5
STABLE_MAX = 30
ROLLED_BACK = dict(
    module="The update was rolled back to the previous spec",
    engine="The engine rolled the update back by itself (update_config.failure_action: rollback)",
)
ROLLING_BACK = dict(
    module="The update was being rolled back to the previous spec",
    engine="The engine was rolling the update back by itself (update_config.failure_action: rollback)",
)


class EngineCallError(Exception):
    """An engine call that failed; the message says what was being done and gives the engine's words.
    answered: the engine answered with an error (it refused the call); false when it did not answer at all (a
    timeout, a broken connection): then the call may still have been applied."""

    def __init__(self, msg, answered=False):
        super().__init__(msg)
        self.answered = answered


class ServiceEngineClient(EngineClient):
    """EngineClient whose failures raise EngineCallError instead of ending the module, so that a run over
    several services can finish, recover and report the others."""

    def fail(self, msg, **kwargs):
        raise EngineCallError(msg)

    def call(self, doing, func, *args, **kwargs):
        try:
            return self.attempt(doing, func, *args, **kwargs)
        except EngineError as exc:
            raise EngineCallError(str(exc), exc.answered) from None
        except OSError as exc:  # the SDK's socket errors and timeouts (requests' exceptions are OSErrors)
            raise EngineCallError("%s failed: %s" % (doing, exc)) from None


class ServiceFailure(Exception):
    """A service that did not converge; recovery follows. engine_rollback: what the engine's own rollback
    (update_config.failure_action: rollback) had done: None, 'started' or 'completed'."""

    def __init__(self, msg, engine_rollback=None):
        super().__init__(msg)
        self.engine_rollback = engine_rollback


class ServiceError(Exception):
    """A service that cannot (or did not) reach its wanted state; the message starts with its name."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.details = details


class Clock:
    """Time as the manager sees it; unit tests pass one that advances a fake engine."""

    def time(self):
        return time.time()

    def monotonic(self):
        return time.monotonic()

    def sleep(self, seconds):
        time.sleep(seconds)


class ServiceManager:
    """One service: plan() reads and diffs, execute() sends, settle() waits and recovers. Errors raise
    ServiceError; `result` holds the outcome either way."""

    def __init__(self, module, client, params, planned=None, clock=None, saved_spec_dir=SAVED_SPEC_DIR):
        """planned: {networks, secrets, configs: [names]} that earlier tasks of a check-mode run would create."""
        self.module = module
        self.client = client
        self.params = params
        self.name = params["name"]
        self.planned = planned or {}
        self.clock = clock or Clock()
        self.saved_spec_dir = saved_spec_dir
        self.live = None  # the service as planned against (engine object), None when there is none
        self.spec = None  # the spec to send
        self.rebuild = []  # why the change needs the service removed and created again (empty: it does not)
        self.started = None  # clock.time() when the change was sent
        self.removed_at = None  # clock.monotonic() when a rebuild removed the live service
        self.service_id = None  # the service this run leaves behind (a rebuild changes it)
        self.saved_spec_file = None  # where a rebuild saved the spec of the service it removed
        self.saved_spec_error = None  # why it could not be saved
        self.result = dict(
            name=self.name, outcome="unchanged", changed=False, changes={}, rebuilt=False, rolled_back=False
        )

    def fail(self, msg, **details):
        raise ServiceError("service %s: %s" % (self.name, msg), **details)

    # ----------------------------------------------------------------- planning

    def plan(self, services):
        """Work out what to send against `services` (a snapshot of every live service); nothing is changed."""
        self.live = next((s for s in services if s["Spec"]["Name"] == self.name), None)
        self.service_id = self.live["ID"] if self.live else None
        try:
            if self.params["state"] == "absent":
                self._plan_removal()
            else:
                self._plan_presence(services)
        except EngineCallError as exc:
            self.fail("%s. Nothing was changed." % exc)
        if self.result["changed"]:
            self.result["outcome"] = "would change"
        return self.result

    def _plan_removal(self):
        if self.live:
            self.result.update(changed=True, diff=dict(before=dict(name=self.name), after={}))

    def _plan_presence(self, services):
        params = self.params
        live_spec = self.live["Spec"] if self.live else None
        if live_spec is None and not params["image"]:
            self.fail("image is required to create the service. Fix: set image.")
        if params["replicas"] is not None and params["replicas"] < 0:
            self.fail("replicas=%d must be 0 or more. Fix: give a whole number >= 0." % params["replicas"])
        if live_spec and mode_of(live_spec) == "global" and params["replicas"] is not None and not params["mode"]:
            self.fail(
                "replicas cannot be set on a global service. Fix: also set mode: replicated (the service is rebuilt)"
            )
        try:
            self.spec = wanted_spec(params, live_spec, self.resolve())
        except ServiceSpecError as exc:
            self.fail("%s. Fix: correct that option." % exc)
        self.check_ports(services)
        self.rebuild = rebuild_reasons(live_spec, self.spec)
        changes = spec_differences(live_spec or {}, self.spec)
        if changes:
            self.check_placement()
        if self.rebuild:
            self.check_rebuild_can_work()
            changes["Mode"] = dict(
                before=mode_of(live_spec), after="%s (the service is removed and created again)" % mode_of(self.spec)
            )
        shown = masked_changes(changes)
        self.result.update(
            changes=shown,
            rebuilt=bool(self.rebuild),
            changed=bool(changes),
            diff=dict(
                before={k: v["before"] for k, v in shown.items()}, after={k: v["after"] for k, v in shown.items()}
            ),
        )

    def resolve(self):
        """Network, secret and config names -> IDs; an unknown name fails before anything changes. In check
        mode a name that an earlier task would create (self.planned) stands for the object to be."""
        resolved = dict(networks={}, secrets={}, configs={})
        for network in self.params["networks"] or []:
            name = network if isinstance(network, str) else network.get("name")
            found = [
                n
                for n in self.client.call("listing networks", self.client.api.networks, names=[name])
                if n["Name"] == name
            ]
            resolved["networks"][name] = found[0]["Id"] if found else self._planned_id("network", name, "networks")
        for option, lister in (("secrets", self.client.api.secrets), ("configs", self.client.api.configs)):
            for ref in self.params[option] or []:
                found = [
                    o
                    for o in self.client.call("listing " + option, lister, filters=dict(name=ref["source"]))
                    if o["Spec"]["Name"] == ref["source"]
                ]
                resolved[option][ref["source"]] = (
                    found[0]["ID"] if found else self._planned_id(option[:-1], ref["source"], option)
                )
        return resolved

    def _planned_id(self, kind, name, option):
        if self.module.check_mode and name in (self.planned.get(option) or []):
            return "(new %s %s, created by this run)" % (kind, name)
        self.fail(
            "unknown %s %s (%s: field). Fix: declare it in swarm_%s (an earlier task creates it) or create it first."
            % (kind, name, option, option)
        )

    def check_ports(self, services):
        """A published port another service already publishes fails here, before anything is sent."""
        wanted = {
            (p.get("PublishedPort"), p.get("Protocol", "tcp"))
            for p in (self.spec.get("EndpointSpec") or {}).get("Ports") or []
            if p.get("PublishedPort")
        }
        for other in services:
            if not wanted or (self.live and other["ID"] == self.live["ID"]):
                continue
            ports = ((other.get("Spec") or {}).get("EndpointSpec") or {}).get("Ports") or []
            for port, protocol in sorted(wanted & {(p.get("PublishedPort"), p.get("Protocol", "tcp")) for p in ports}):
                self.fail(
                    "published port %s/%s is already used by service %s (publish: field). Fix: choose another port."
                    % (port, protocol, other["Spec"]["Name"])
                )

    def check_placement(self):
        """Replicas that could never all be placed fail here, before anything is sent (the engine would keep the
        rest pending until the wait timed out)."""
        why = placement_error(self.spec, self.client.nodes())
        if why:
            self.fail(
                "%s. Nothing was changed. Fix: lower replicas, relax the constraints or max_replicas_per_node, "
                "publish in ingress mode, or add (or label) nodes." % why
            )

    def check_rebuild_can_work(self):
        """A rebuild removes the running service before the new one exists: refuse one that cannot start."""
        why = "the service is left as it runs (%s)" % self._describe(self.live["Spec"])
        replicas = ((self.spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas")
        if replicas != 0 and not eligible_nodes(self.client.nodes(), self.spec):
            constraints = ((self.spec["TaskTemplate"].get("Placement") or {}).get("Constraints")) or []
            self.fail(
                "changing %s needs the service removed and created again, but no node can run it (Ready, "
                "availability active, matching constraints %s): %s. Fix: correct constraints, or the nodes."
                % (", ".join(self.rebuild), constraints or "none", why)
            )
        image = self.spec["TaskTemplate"]["ContainerSpec"]["Image"]
        try:
            self.client.call("looking the image up in its registry", self.client.api.inspect_distribution, image)
        except EngineCallError as exc:
            # Only a registry's definite "no such manifest" is fatal; without credentials or a route to the
            # registry from this manager the nodes may still pull it.
            if "manifest unknown" in str(exc) or "name unknown" in str(exc):
                self.fail(
                    "changing %s needs the service removed and created again, but image %s cannot be pulled (%s): "
                    "%s. Fix: push the image or correct image." % (", ".join(self.rebuild), image, exc, why)
                )

    # ----------------------------------------------------------------- sending

    def execute(self):
        """Send what plan() found. An engine error raises ServiceError, after undoing a half-done rebuild."""
        self.started = self.clock.time()
        if not self.result["changed"]:
            return
        try:
            if self.params["state"] == "absent":
                self._call("removing the service", self.client.api.remove_service, self.live["ID"])
            elif self.live is None:
                self.service_id = self._create(self.spec)
            elif self.rebuild:
                self._rebuild()
            else:
                self._update(self.live, self.spec)
        except EngineCallError as exc:
            self.result.update(outcome="failed", changed=False)
            if exc.answered:
                self.fail("%s. Nothing was changed." % exc)
            # No answer (a timeout, a broken connection): the engine may have applied the call all the same.
            text, changed = self._after_unanswered()
            self.result["changed"] = changed
            self.fail("%s. %s" % (exc, text), changes=self.result["changes"])
        self.result["outcome"] = "changed"

    def _after_unanswered(self):
        """What is live after a create, update or removal the engine did not answer: read back. Returns (the
        text that says so, whether the engine changed the service)."""
        try:
            current = self._inspect()  # by the live ID (update, removal), else by name (create)
        except EngineCallError as exc:
            return (
                "Whether the engine applied it is unknown: reading the service back failed too (%s). Fix: look at "
                "`docker service inspect %s`, then run again." % (exc, self.name),
                False,
            )
        if self.params["state"] == "absent":
            if current is None:
                return "The engine removed the service all the same: no service %s exists now." % self.name, True
            return "Nothing was changed: service %s is still there (%s)." % (self.name, self._describe(current)), False
        if self.live is None:
            if current is None:
                return "Nothing was changed: no service named %s exists." % self.name, False
            self.service_id = current["ID"]
            return (
                "The engine created the service all the same: it exists now (%s), but was not waited for. Fix: look "
                "at `docker service ps %s`." % (self._describe(current), self.name),
                True,
            )
        if current is None:
            return "No service %s exists now (removed outside this run?)." % self.name, True
        if current["Version"]["Index"] == self.live["Version"]["Index"]:
            return "Nothing was changed: service %s runs as before (%s)." % (self.name, self._describe(current)), False
        differences = sorted(spec_differences(self.spec, current["Spec"]))
        if differences:
            return (
                "Service %s was changed, but its spec now differs from the one sent (%s). Fix: look at `docker "
                "service inspect %s`, then run again." % (self.name, ", ".join(differences), self.name),
                True,
            )
        return (
            "The engine applied the update all the same: service %s now has the new spec (update state: %s), but it "
            "was neither waited for nor rolled back if it fails. Fix: look at `docker service ps %s`; `docker "
            "service rollback %s` goes back to the previous spec."
            % (self.name, _update_state(current, self.started), self.name, self.name),
            True,
        )

    def _call(self, doing, func, *args, **kwargs):
        return self.client.call(doing, func, *args, **kwargs)

    def _create(self, spec, doing="creating the service"):
        text = self.client.post_json(doing, "/services/create", spec)
        return (json.loads(text or "{}") or {}).get("ID") or self._find_id()

    def _create_after_removal(self, spec, doing):
        deadline = self.clock.monotonic() + RECREATE_GRACE
        while True:
            try:
                return self._create(spec, doing)
            except EngineCallError as exc:
                taken = "already in use" in str(exc) or "conflicts with an existing" in str(exc)
                if not taken or self.clock.monotonic() > deadline:
                    raise
                self.clock.sleep(1)

    def _update(self, live, spec, doing="updating the service", **params):
        self.client.post_json(
            doing, "/services/%s/update" % live["ID"], spec, params=dict(params, version=live["Version"]["Index"])
        )

    def _rebuild(self):
        self.saved_spec_file, self.saved_spec_error = self._save_spec()
        try:
            self._call("removing the service to rebuild it", self.client.api.remove_service, self.live["ID"])
        except EngineCallError as exc:
            self._removal_failed(exc)
        self.removed_at = self.clock.monotonic()
        self.result["changed"] = True
        try:
            self.service_id = self._create_after_removal(
                self.spec, "creating the service again as %s" % mode_of(self.spec)
            )
        except EngineCallError as exc:
            self.result.update(outcome="failed")
            self.fail(str(exc) + self.restore_previous(), changes=self.result["changes"])

    def _removal_failed(self, exc):
        """The removal of a rebuild failed. Refused (or still there): nothing was changed. Not answered and gone
        all the same: the previous service is created again from its saved spec."""
        self.result.update(outcome="failed", changed=False)
        previous = self._describe(self.live["Spec"])
        try:
            still = exc.answered or self._inspect() is not None  # by the live ID
        except EngineCallError as again:
            self.fail(
                "%s. Whether the engine removed the service is unknown: reading it back failed too (%s). If service "
                "%s is gone: %s" % (exc, again, self.name, self._restore_hint(previous, False))
            )
        if still:
            self._drop_saved_spec()
            self.fail("%s. Nothing was changed: service %s is still there (%s)." % (exc, self.name, previous))
        self.removed_at = self.clock.monotonic()
        self.result["changed"] = True
        self.fail(
            "%s%s" % (exc, self.restore_previous("the engine did not answer the removal, but removed the service")),
            changes=self.result["changes"],
        )

    def _save_spec(self):
        """Write the spec of the service a rebuild removes where an operator finds it if it cannot be restored
        (root only: env values are in it). Returns (path, None) or (None, why not)."""
        try:
            os.makedirs(self.saved_spec_dir, mode=0o700, exist_ok=True)
            path = os.path.join(self.saved_spec_dir, "%s-%d.json" % (self.name, int(self.clock.time())))
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                json.dump(restorable_spec(self.live), handle, indent=2, sort_keys=True)
            return path, None
        except OSError as exc:
            return None, str(exc)

    def _drop_saved_spec(self):
        if self.saved_spec_file:
            try:
                os.remove(self.saved_spec_file)
            except OSError:
                pass

    # ----------------------------------------------------------------- waiting and recovering

    def settle(self):
        """Wait for convergence (with wait=true); on failure leave what was there before, then raise."""
        result = self.result
        if self.params["state"] == "present" and self.params["wait"] and result["changed"]:
            try:
                limit = REBUILD_CRASH_LIMIT if self.rebuild else CRASH_LIMIT
                result.update(self.wait(self.started, self._expected_update(), limit))
            except ServiceFailure as failure:
                text = str(failure) + self.recover(failure)
                self.fail(text, changes=result["changes"], rolled_back=result["rolled_back"])
            except EngineCallError as exc:
                result["outcome"] = "failed"
                if self.rebuild:  # the old service is gone: bring it back rather than leave an unknown new one
                    self.fail(
                        "%s while waiting for the new service%s"
                        % (exc, self.restore_previous("whether the new one runs could not be read")),
                        changes=result["changes"],
                        rolled_back=result["rolled_back"],
                    )
                self.fail("%s while waiting for the service; it is left as the engine has it." % exc)
            if self.rebuild:
                result["outage"] = round(self.clock.monotonic() - self.removed_at, 1)
        if self.rebuild and self.params["wait"]:
            self._drop_saved_spec()
        elif self.rebuild and self.saved_spec_file:
            # Not waited for: whether the new service runs is unknown, so the previous spec stays where the
            # operator can create it again from.
            result["saved_spec"] = self.saved_spec_file
        service = self._inspect()
        result["service"] = summary(service)
        if service and "tasks" not in result:  # not waited for: where its tasks run now
            tasks = self._call("listing tasks", self.client.api.tasks, filters=dict(service=service["ID"]))
            running = [t for t in tasks if t.get("DesiredState") == "running" and _status(t).get("State") == "running"]
            result.update(running=len(running), tasks=self._placement(running))
        return result

    def _expected_update(self):
        """The update states that end the change: None when it starts no rollout (a new or rebuilt service, a
        scale, labels). A change of the placement alone starts none while every task still fits it."""
        if not self.live or self.rebuild:
            return None
        template = [p for p in self.result["changes"] if _under(p, "TaskTemplate")]
        if not template:
            return None
        if all(_under(p, "TaskTemplate.Placement") for p in template):
            return ("completed", "not started")
        return ("completed",)

    def recover(self, failure):
        """Leave what was there before: a new service is removed, a rebuild undone, a failed update rolled back.
        Returns the text that says what was done."""
        self.result["outcome"] = "failed"
        try:
            if self.live is None:
                return self._remove_new_service()
            if self.rebuild:
                return self.restore_previous()
            return self.roll_back_update(failure)
        except EngineCallError as exc:
            if self.rebuild:
                return ". Undoing the change failed (%s). %s" % (
                    exc,
                    self._what_is_left(self._describe(self.live["Spec"])),
                )
            return (
                ". Undoing the change failed (%s); the service is left as the engine has it. Fix: look at "
                "`docker service ps %s`." % (exc, self.name)
            )

    def _remove_new_service(self):
        self._call("removing the service that did not start", self.client.api.remove_service, self.service_id)
        self.result["outcome"] = "rolled back"
        return ". The new service was removed again; nothing is left half-created."

    def restore_previous(self, why="the new one failed"):
        """After a failed rebuild: remove the new service, create the old one from its saved spec and wait for
        it. Returns what happened, and when it could not be restored, what is left and how to restore it."""
        previous = self._describe(self.live["Spec"])
        head = ". The change (%s) needed the service removed and created again; %s" % (", ".join(self.rebuild), why)
        removed = ""
        try:
            new_id = self._find_id()
            if new_id:
                self._call("removing the new service", self.client.api.remove_service, new_id)
                removed = " and was removed"
            self.service_id = self._create_after_removal(
                restorable_spec(self.live), "creating the previous service again from its saved spec"
            )
        except EngineCallError as exc:
            return "%s, and the previous one could NOT be created again: %s. %s" % (
                head,
                exc,
                self._what_is_left(previous),
            )
        back = "%s%s, and the previous one was created again from its saved spec (%s)" % (head, removed, previous)
        try:
            progress = self.wait(self.clock.time(), None)
        except (ServiceFailure, EngineCallError) as failure:
            return "%s, but it does not run either: %s. Fix: look at `docker service ps %s`; its saved spec is %s." % (
                back,
                failure,
                self.name,
                self._saved_spec_text(),
            )
        self.result.update(outcome="rolled back", rolled_back=True, **progress)
        self._drop_saved_spec()
        return "%s: %d of %d tasks run. Outage: %s." % (back, progress["running"], progress["wanted"], self._outage())

    def _describe(self, spec):
        """spec (or a service) in a few words; networks by ID when the engine does not list them."""
        spec = spec.get("Spec", spec)
        try:
            networks = {n["Id"]: n["Name"] for n in self._call("listing networks", self.client.api.networks)}
        except EngineCallError:
            networks = {}
        return describe_spec(spec, networks)

    def _outage(self):
        return "%.0f s without the service (from its removal until its tasks ran again)" % (
            self.clock.monotonic() - self.removed_at
        )

    def _saved_spec_text(self):
        if self.saved_spec_file:
            return "in %s on this manager" % self.saved_spec_file
        return "lost: it could not be written (%s)" % self.saved_spec_error

    def _what_is_left(self, previous):
        self.service_id = None  # by name: whichever service has it now
        try:
            current = self._inspect()
        except EngineCallError as exc:
            return "What exists now is unknown (%s). If service %s is gone: %s" % (
                exc,
                self.name,
                self._restore_hint(previous, False),
            )
        if current and not spec_differences(restorable_spec(self.live), current["Spec"]):
            return (
                "Service %s exists again with its previous spec (%s): the engine created it although it did not "
                "answer; it was not waited for. Fix: look at `docker service ps %s`." % (self.name, previous, self.name)
            )
        if current:
            left = "Service %s exists now with the new spec (%s), which does not run." % (
                self.name,
                self._describe(current["Spec"]),
            )
        else:
            left = "No service named %s exists now: its tasks are gone." % self.name
        return "%s %s" % (left, self._restore_hint(previous, bool(current)))

    def _restore_hint(self, previous, new_exists):
        """Where the previous spec is and how to create the service from it."""
        if not self.saved_spec_file:
            return "The previous spec (%s) is %s. Fix: declare the service as it was and run again." % (
                previous,
                self._saved_spec_text(),
            )
        return (
            "The previous spec (%s) is saved in %s on this manager. Fix: %screate it with `curl --unix-socket "
            "%s -H 'Content-Type: application/json' --data @%s http://localhost/services/create`, or declare the "
            "service as it was and run again."
            % (
                previous,
                self.saved_spec_file,
                "remove the new one (`docker service rm %s`), then " % self.name if new_exists else "",
                ENGINE_SOCKET,
                self.saved_spec_file,
            )
        )

    def roll_back_update(self, failure):
        """After a failed update: the engine's own rollback is waited for; otherwise the spec saved at planning
        is sent back. "rolled back" is reported only once that spec runs again."""
        engine_rollback = failure.engine_rollback
        current = self._inspect()
        if current is None:
            return self._gone("The update could not be rolled back")
        if engine_rollback is None:
            # The engine (failure_action: rollback) may have started its own rollback after the failure was seen:
            # follow it rather than send a second one.
            state = _update_state(current, self.started)
            if state in ("rollback_started", "rollback_completed"):
                engine_rollback = state[len("rollback_") :]
        failure.engine_rollback = engine_rollback
        if failure.engine_rollback is None and not self.params["rollback_on_failure"]:
            return ". The update is left as the engine stopped it (rollback_on_failure=false)."
        if failure.engine_rollback is None:
            who = "module"
            since, expect = self._send_previous_spec(current)
        elif failure.engine_rollback == "started":
            who, since, expect = "engine", self.started, ("rollback_completed",)
        else:
            who, since, expect = "engine", self.clock.time(), None
        try:
            progress = self.wait(since, expect)
        except ServiceFailure as late:
            if self._inspect() is None:
                return self._gone(ROLLING_BACK[who])
            return (
                ". %s, but the rollback did not finish: %s. Fix: look at `docker service ps %s`; it may run a "
                "mix of old and new tasks." % (ROLLING_BACK[who], late, self.name)
            )
        current = self._inspect()
        if current is None:  # removed behind the run's back once the rollback converged
            return self._gone(ROLLED_BACK[who])
        drift = sorted(spec_differences(self.live["Spec"], current["Spec"]))
        if drift:
            return (
                ". %s, but the spec it runs now differs from the one it had before the run (%s). Fix: declare the "
                "service as wanted and run again." % (ROLLED_BACK[who], ", ".join(drift))
            )
        self.result.update(outcome="rolled back", rolled_back=True, **progress)
        return ". %s: %d of %d tasks run." % (ROLLED_BACK[who], progress["running"], progress["wanted"])

    def _gone(self, what):
        """The service was removed outside this run while it was rolled back."""
        self.result["outcome"] = "gone"
        return (
            ". %s, but the service is gone: no service %s exists now (removed outside this run?). Fix: declare it "
            "as wanted and run again." % (what, self.name)
        )

    def _send_previous_spec(self, current):
        """Roll back to the spec saved at planning; returns (since, update states that end the rollback)."""
        if current.get("PreviousSpec") and not spec_differences(current["PreviousSpec"], self.live["Spec"]):
            self._update(current, current["Spec"], "rolling the update back", rollback="previous")
            return self.started, ("rollback_completed",)
        # No previous spec on the engine (or not the one saved): send the saved one as a new update.
        since = self.clock.time()
        self._update(current, self.live["Spec"], "sending the previous spec back")
        return since, ("completed", "not started")

    def wait(self, since, expect, crash_limit=CRASH_LIMIT):
        """Until the service converges after a change sent at `since`; with expect (update states), also until
        its update reaches one of them. Returns dict(running, wanted, tasks).
        A task started by the change counts once it has been seen running for the service's update monitor
        (stable_window): an image that starts and exits a moment later never counts."""
        deadline = self.clock.monotonic() + self.params["wait_timeout"]
        seen = {}  # task ID -> clock.monotonic() when first seen running
        unplaceable_since = None
        while True:
            service = self._inspect()
            if service is None:
                raise ServiceFailure("the service disappeared while it was waited for")
            tasks = self._call("listing tasks", self.client.api.tasks, filters=dict(service=service["ID"]))
            state = progress(service, tasks, self.client.nodes(), since, expect, crash_limit)
            if state["failure"]:
                raise ServiceFailure(state["failure"], state["engine_rollback"])
            now, window = self.clock.monotonic(), stable_window(service["Spec"])
            wall = self.clock.time()
            for task in state["tasks"]:
                seen.setdefault(task["ID"], now - running_age(task, wall, since))
            young = [t for t in state["tasks"] if _since(t, since) and now - seen[t["ID"]] < window]
            if state["converged"] and not young:
                return dict(running=state["running"], wanted=state["wanted"], tasks=self._placement(state["tasks"]))
            unplaceable = [r for r in state["reasons"] if "no suitable node" in r]
            unplaceable_since = (unplaceable_since or now) if unplaceable and not state["converged"] else None
            if unplaceable_since is not None and now - unplaceable_since >= PLACEMENT_GRACE:
                raise ServiceFailure(
                    "%d of %d tasks running, and for %ds the engine has placed no more: %s"
                    % (state["running"], state["wanted"], PLACEMENT_GRACE, "; ".join(unplaceable)),
                    state["engine_rollback"],
                )
            if now > deadline:
                text = timeout_text(state, self.params["wait_timeout"])
                if state["converged"]:
                    text += "; %d of them not yet running for %gs (the service's update monitor)" % (len(young), window)
                raise ServiceFailure(text, state["engine_rollback"])
            self.clock.sleep(1)

    def _inspect(self):
        """The service this run is about (by ID once known, else by name), or None."""
        if self.service_id:
            found = self._call("reading the service", self.client.api.services, filters=dict(id=self.service_id))
            found = [s for s in found if s["ID"] == self.service_id]
        else:
            found = self._call("reading the service", self.client.api.services, filters=dict(name=self.name))
            found = [s for s in found if s["Spec"]["Name"] == self.name]
        return found[0] if found else None

    def _find_id(self):
        self.service_id = None
        service = self._inspect()
        return service["ID"] if service else None

    def _placement(self, running):
        names = {n["ID"]: (n.get("Description") or {}).get("Hostname") for n in self.client.nodes()}
        return sorted(
            (dict(node=names.get(t.get("NodeID"), t.get("NodeID")), slot=t.get("Slot"), id=t["ID"]) for t in running),
            key=lambda t: (t["slot"] or 0, t["node"] or ""),
        )

    # ----------------------------------------------------------------- the whole run of one service

    def run(self, services):
        self.plan(services)
        if self.module.check_mode:
            return self.result
        self.execute()
        return self.settle()


# --------------------------------------------------------------------------- pure: where a service stands


def _under(path, prefix):
    """Whether a dotted path of spec_differences is `prefix` or inside it."""
    return path == prefix or path.startswith(prefix + ".")


def _status(task):
    return task.get("Status") or {}


def running_age(task, now, since):
    """Seconds a running task has been running by its status time, 0 when unknown. Never more than since the change
    was sent: a node whose clock is behind this one's must not make a task count sooner. Services sent together
    are waited for one after another; by its own time a task's monitor may have passed while others were waited for."""
    started = timestamp(_status(task).get("Timestamp"))
    if not started:
        return 0.0
    return max(0.0, min(now - started, now - since))


def _since(task, since):
    return timestamp(task.get("CreatedAt")) >= since - 1


def progress(service, tasks, nodes, since, expect=None, crash_limit=CRASH_LIMIT):
    """Where a service stands after a change sent at `since` (seconds since the epoch); expect: the update
    states that end the change (None: the update state does not matter). A dict with converged, failure
    (text, or None while it may still converge), engine_rollback (None, 'started' or 'completed': the
    engine's own rollback of the update), running, wanted, tasks (the running ones), states, update_state
    and reasons (the engine's words on tasks not running)."""
    spec = service["Spec"]
    current = [t for t in tasks if t.get("DesiredState") == "running"]
    running = [t for t in current if _status(t).get("State") == "running"]
    fitting = {n["ID"] for n in nodes if _fits(n, spec)}
    update_state = _update_state(service, since) if expect else None
    rolling_back = bool(expect) and "rollback_completed" in expect
    engine_rollback = None
    if expect and not rolling_back and update_state in ("rollback_started", "rollback_completed"):
        engine_rollback = update_state[len("rollback_") :]
    if mode_of(spec) == "global":
        eligible = {n["ID"] for n in eligible_nodes(nodes, spec)}
        wanted = len(eligible)
        placed = {t.get("NodeID") for t in running} & eligible == eligible
    else:
        wanted = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
        placed = len(running) >= wanted and len(running) == len(current)
    # A task left on a node its (new) placement no longer allows is about to be moved.
    placed = placed and all(t.get("NodeID") in fitting for t in running)
    failure = _failure(service, tasks, since, update_state, engine_rollback, rolling_back, crash_limit)
    return dict(
        converged=not failure and placed and engine_rollback is None and (not expect or update_state in expect),
        failure=failure,
        engine_rollback=engine_rollback,
        running=len(running),
        wanted=wanted,
        tasks=running,
        update_state=update_state,
        states=sorted({_status(t).get("State", "?") for t in current}),
        reasons=sorted(
            {_status(t).get("Err") or _status(t).get("Message") or "" for t in current if t not in running} - {""}
        ),
    )


def _fits(node, spec):
    """Whether a node matches the service's constraints and platforms (whatever its state)."""
    placement = (spec.get("TaskTemplate") or {}).get("Placement") or {}
    return all(constraint_matches(c, node) for c in placement.get("Constraints") or []) and platform_matches(
        placement.get("Platforms"), node
    )


def _update_state(service, since):
    """The state of the update started at or after `since`; 'not started' before the engine reports one."""
    status = service.get("UpdateStatus") or {}
    if not status or timestamp(status.get("StartedAt")) < since - 1:
        return "not started"
    return status.get("State")


def _failure(service, tasks, since, update_state, engine_rollback, rolling_back, crash_limit=CRASH_LIMIT):
    """Why the change has certainly failed, or None while it may still converge. While a rollback runs, the
    failures of the spec it leaves are expected."""
    message = (service.get("UpdateStatus") or {}).get("Message") or update_state
    if update_state == "rollback_paused":
        return "the rollback paused (%s)%s" % (message, _task_errors(tasks, since))
    if rolling_back:
        return None
    if engine_rollback == "completed":
        return "the update failed and the engine rolled it back (%s)%s" % (message, _task_errors(tasks, since))
    if engine_rollback:
        return None
    image = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Image", "?").split("@", 1)[0]
    for task in tasks:
        error = _status(task).get("Err") or ""
        if _since(task, since) and any(marker in error for marker in IMAGE_ERRORS):
            return "image %s cannot be pulled: %s" % (image, error)
    if update_state == "paused":
        return "the update failed (%s)%s" % (message, _task_errors(tasks, since))
    return _crash_loop(tasks, since, crash_limit)


def _task_errors(tasks, since):
    errors = sorted(
        {_status(t).get("Err") for t in tasks if _since(t, since) and _status(t).get("State") in ("failed", "rejected")}
        - {None, ""}
    )
    return "; engine says: %s" % "; ".join(errors) if errors else ""


def _crash_loop(tasks, since, limit=CRASH_LIMIT):
    """A slot (replicated) or node (global) whose task failed `limit` times since the change."""
    failures = {}
    for task in tasks:
        if _since(task, since) and _status(task).get("State") in ("failed", "rejected"):
            where = task.get("Slot") or task.get("NodeID")
            failures.setdefault(where, []).append(_status(task).get("Err") or _status(task).get("State"))
    for errors in failures.values():
        if limit == 1 and errors:  # a rebuild: the first failure ends the wait
            return "a task of the new service failed (engine says: %s)" % "; ".join(sorted(set(errors)))
        if len(errors) >= limit:
            return "tasks keep failing: one failed %d times since the change (engine says: %s)" % (
                len(errors),
                "; ".join(sorted(set(errors))),
            )
    return None


def stable_window(spec):
    """Seconds a task started by a change must be seen running before it counts: the service's update monitor
    (the engine's own notion of a task that started well), the CLI's 5 s when unset, at most STABLE_MAX."""
    monitor = (spec.get("UpdateConfig") or {}).get("Monitor")
    seconds = monitor / 1e9 if monitor is not None else STABLE_DEFAULT
    return min(seconds, STABLE_MAX)


def timeout_text(state, seconds):
    return "%d of %d tasks running after %ss (task states: %s; update state: %s%s)" % (
        state["running"],
        state["wanted"],
        seconds,
        ", ".join(state["states"]) or "none",
        state["update_state"] or "none",
        "; engine says: " + "; ".join(state["reasons"]) if state["reasons"] else "",
    )


def timestamp(text):
    """Engine time ('2026-11-25T21:30:01.123456789Z') -> seconds since the epoch (0 when absent)."""
    if not text:
        return 0
    from datetime import datetime, timezone

    whole, dummy, fraction = text.rstrip("Z").partition(".")
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


# Options of one service (swarm_service options; elements of swarm_services.services). Documented in
# plugins/doc_fragments/service.py.
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
    secrets=dict(type="list", elements="dict", no_log=False),  # references to swarm secrets, never their data
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
# Objects that earlier tasks of a check-mode run would create (a module option of both modules).
PLANNED_OPTION = dict(
    planned=dict(
        type="dict",
        options=dict(
            networks=dict(type="list", elements="str", default=[]),
            secrets=dict(type="list", elements="str", default=[], no_log=False),  # secret names
            configs=dict(type="list", elements="str", default=[]),
        ),
    )
)

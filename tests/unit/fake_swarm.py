"""An in-memory swarm for the unit tests of swarm_service / swarm_services / swarm_node: nodes, services, tasks, networks,
secrets, configs and a registry, behind the Docker SDK calls the service manager makes, with the engine's rules
that matter for failures:

- a task of an image tagged `broken` exits at once and is started again on the next tick, one tagged `flaky`
  runs for a tick and then exits; an image the registry does not hold is rejected ("No such image");
- an update replaces the tasks and reports UpdateStatus; when a new task fails the update pauses, or with
  update_config.failure_action=rollback the engine puts the previous spec back and clears it (rollback_started,
  then rollback_completed once the tasks run);
- a change of the placement alone that every task still fits starts no update;
- the mode of a service cannot change; names and published ports are unique;
- a call can go unanswered (a timeout) whether or not the engine applied it (no_answer);
- a drained node's tasks stop (with slow_stop, their containers a tick after the engine asked) and the replicated
  ones start again on another Ready, active node that fits, or stay pending with the scheduler's error
  ("no suitable node ...") when none does; node updates, demotions and removals follow the engine's rules.

Time is a FakeClock: every sleep() is one tick of the engine.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

from docker.errors import APIError, NotFound
from requests.exceptions import ReadTimeout

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_manager import (
    ServiceEngineClient,
    ServiceManager,
)
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import (
    constraint_matches,
    mode_of,
    spec_differences,
)

START = 1_800_000_000.0
WEB = "registry.example/web"


def node(node_id, role="worker", state="ready", availability="active", labels=None):
    return dict(
        ID=node_id,
        Version=dict(Index=1),
        Spec=dict(Role=role, Availability=availability, Labels=dict(labels or {})),
        Status=dict(State=state, Addr="10.0.0.%d" % (len(node_id) + ord(node_id[-1]) % 50)),
        Description=dict(Hostname=node_id, Platform=dict(Architecture="x86_64", OS="linux")),
    )


class FakeClock:
    def __init__(self, swarm):
        self.swarm = swarm
        self.elapsed = 0.0
        self.sleeps = 0

    def time(self):
        return START + self.elapsed

    def monotonic(self):
        return self.elapsed

    def sleep(self, seconds):
        self.sleeps += 1
        self.elapsed += seconds
        self.swarm.tick()


class FakeModule:
    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode
        self.warnings = []

    def warn(self, msg):
        self.warnings.append(msg)

    def fail_json(self, **kwargs):
        raise AssertionError("fail_json called: %s" % kwargs)


class Response:
    def __init__(self, status, body):
        self.status_code = status
        self.text = json.dumps(body) if status < 400 else ""
        self.error = body if status >= 400 else None


def refused(message):
    return APIError("500 Server Error", explanation=message)


class FakeSwarm:
    timeout = 60  # the SDK client's call timeout, which EngineClient reads

    def __init__(self, nodes=None, images=("v1", "v2", "broken", "flaky")):
        self.nodes_ = nodes or [node("manager-1", "manager"), node("worker-1"), node("worker-2")]
        self.images = {"%s:%s" % (WEB, tag) for tag in images}
        self.services_ = []
        self.tasks_ = []
        self.networks_ = [dict(Id="net-front", Name="front"), dict(Id="net-ingress", Name="ingress")]
        self.secrets_ = [dict(ID="sec-db", Spec=dict(Name="db_password"))]
        self.configs_ = [dict(ID="cfg-site", Spec=dict(Name="site"))]
        self.refusals = {}  # (action, service name) -> [engine messages, used in turn]
        self.unanswered = {}  # (action, service name) -> [whether the engine applies the call, used in turn]
        self.writes = []  # (action, service name)
        self.stuck_rollback = False  # the engine's own rollback never completes
        self.slow_stop = False  # a drained node's containers stop a tick after the engine asked them to
        self.clock_skew = 0  # seconds the nodes' clocks (task status times) are ahead of the module's
        self.clock = FakeClock(self)
        self.counter = 0

    # ----------------------------------------------------------------- helpers for tests

    def now(self):
        return self.clock.time()

    def stamp(self, skew=0):
        return datetime.fromtimestamp(self.now() + skew, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def new_id(self, prefix):
        self.counter += 1
        return "%s%d" % (prefix, self.counter)

    def refuse(self, action, name, message, times=1):
        self.refusals.setdefault((action, name), []).extend([message] * times)

    def no_answer(self, action, name, applied=True, times=1):
        """The next `times` calls (remove, create, update, tasks) on service `name` get no answer (a read
        timeout); with applied=True the engine carries them out all the same."""
        self.unanswered.setdefault((action, name), []).extend([applied] * times)

    def _unanswered(self, action, name, applied):
        """Raise the timeout of an unanswered call: before the engine acts (applied=False) or after it."""
        pending = self.unanswered.get((action, name))
        if pending and pending[0] is applied:
            pending.pop(0)
            raise ReadTimeout("UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. (read timeout=60)")

    def service(self, name):
        return next((s for s in self.services_ if s["Spec"]["Name"] == name), None)

    def running(self, name):
        service = self.service(name)
        return [
            t
            for t in self.tasks_
            if service and t["ServiceID"] == service["ID"] and t["DesiredState"] == "running"
            if t["Status"]["State"] == "running"
        ]

    def deploy(self, name, settle=True, **options):
        """A live service as `docker service create` would leave it (the test's starting point)."""
        spec = dict(
            Name=name,
            Labels={},
            TaskTemplate=dict(ContainerSpec=dict(Image="%s:v1@sha256:%s" % (WEB, "1" * 64)), Placement={}),
            Mode=dict(Replicated=dict(Replicas=2)),
            UpdateConfig=dict(Parallelism=1, FailureAction="pause", Monitor=5_000_000_000, Order="stop-first"),
            EndpointSpec=dict(Mode="vip"),
        )
        for key, value in options.items():
            spec[key] = value
        self._create(spec)
        if settle:
            self.settle()
        return self.service(name)

    def settle(self, ticks=3):
        """Let the engine run for `ticks` seconds before the test's change (not counted as the module's sleeps)."""
        for _ in range(ticks):
            self.clock.elapsed += 1
            self.tick()

    def manager(self, check_mode=False, planned=None, **params):
        module = FakeModule(service_params(**params), check_mode=check_mode)
        return ServiceManager(module, self.client(module), module.params, planned=planned, clock=self.clock)

    def client(self, module):
        client = ServiceEngineClient.__new__(ServiceEngineClient)
        client.module = module
        client.api = self
        return client

    # ----------------------------------------------------------------- the SDK calls

    def _consume(self, action, name):
        messages = self.refusals.get((action, name))
        if messages:
            raise refused(messages.pop(0))

    def info(self):
        """The engine of manager-1 (a manager unless a test demoted it)."""
        local = next((n for n in self.nodes_ if n["ID"] == "manager-1"), None)
        manager = local is None or local["Spec"]["Role"] == "manager"
        return dict(Swarm=dict(LocalNodeState="active", ControlAvailable=manager, NodeID="manager-1"))

    def nodes(self):
        return copy.deepcopy(self.nodes_)

    def services(self, filters=None):
        found = self.services_
        if filters and "name" in filters:
            found = [s for s in found if s["Spec"]["Name"].startswith(filters["name"])]
        if filters and "id" in filters:
            found = [s for s in found if s["ID"].startswith(filters["id"])]
        return copy.deepcopy(found)

    def tasks(self, filters=None):
        filters = filters or {}
        found = self.tasks_
        if "service" in filters:
            service = next((s for s in self.services_ if s["ID"] == filters["service"]), None)
            if service:
                self._unanswered("tasks", service["Spec"]["Name"], False)
            found = [t for t in found if t["ServiceID"] == filters["service"]]
        if "node" in filters:
            found = [t for t in found if t["NodeID"] == filters["node"]]
        return copy.deepcopy(found)

    def inspect_node(self, node_id):
        found = next((n for n in self.nodes_ if n["ID"] == node_id), None)
        if found is None:
            raise NotFound("404 Client Error", explanation="node %s not found" % node_id)
        return copy.deepcopy(found)

    def update_node(self, node_id, version, node_spec=None):
        found = next(n for n in self.nodes_ if n["ID"] == node_id)
        assert str(version) == str(found["Version"]["Index"]), "out of sequence node update"
        found["Version"]["Index"] += 1
        found["Spec"] = copy.deepcopy(node_spec)
        if node_spec.get("Role") == "worker":
            found.pop("ManagerStatus", None)
        elif node_spec.get("Role") == "manager" and not found.get("ManagerStatus"):
            found["ManagerStatus"] = dict(Reachability="reachable", Leader=False)
        self.writes.append(("update_node", node_id))

    def remove_node(self, node_id, force=False):
        found = next(n for n in self.nodes_ if n["ID"] == node_id)
        if found.get("ManagerStatus"):
            raise refused(
                "rpc error: code = FailedPrecondition desc = node %s is a cluster manager and is a member of the raft "
                "cluster. It must be demoted to worker before removal" % node_id
            )
        if found["Status"]["State"] != "down" and not force:
            raise refused(
                "rpc error: code = FailedPrecondition desc = node %s is not down and can't be removed" % node_id
            )
        self.nodes_.remove(found)
        self.writes.append(("remove_node", node_id))

    def networks(self, names=None):
        return copy.deepcopy([n for n in self.networks_ if names is None or n["Name"] in names])

    def secrets(self, filters=None):
        return copy.deepcopy([s for s in self.secrets_ if s["Spec"]["Name"] == filters["name"]])

    def configs(self, filters=None):
        return copy.deepcopy([c for c in self.configs_ if c["Spec"]["Name"] == filters["name"]])

    def inspect_distribution(self, image):
        if image.split("@", 1)[0] not in self.images:
            raise APIError("404 Client Error", explanation="manifest unknown: manifest unknown")
        return dict(Descriptor=dict(digest="sha256:" + "2" * 64))

    def remove_service(self, service_id):
        service = next(s for s in self.services_ if s["ID"] == service_id)
        self._consume("remove", service["Spec"]["Name"])
        self._unanswered("remove", service["Spec"]["Name"], False)
        self.services_.remove(service)
        self.tasks_ = [t for t in self.tasks_ if t["ServiceID"] != service_id]
        self.writes.append(("remove", service["Spec"]["Name"]))
        self._unanswered("remove", service["Spec"]["Name"], True)

    # EngineClient.post_json goes through these three.
    def _url(self, path):
        return path

    def _post_json(self, url, data=None, params=None):
        data = json.loads(json.dumps(data))
        try:
            if url == "/services/create":
                self._consume("create", data["Name"])
                self._unanswered("create", data["Name"], False)
                created = self._create(data)
                self._unanswered("create", data["Name"], True)
                return Response(201, dict(ID=created))
            service = next(s for s in self.services_ if s["ID"] == url.split("/")[2])
            self._consume("update", service["Spec"]["Name"])
            self._unanswered("update", service["Spec"]["Name"], False)
            self._update(service, data, params or {})
            self._unanswered("update", service["Spec"]["Name"], True)
            return Response(200, {})
        except APIError as exc:
            return Response(500, exc)

    def _raise_for_status(self, response):
        if response.error is not None:
            raise response.error

    # ----------------------------------------------------------------- the engine's rules

    def _check_unique(self, spec, service_id=None):
        for other in self.services_:
            if other["ID"] == service_id:
                continue
            if other["Spec"]["Name"] == spec["Name"]:
                raise refused("rpc error: code = AlreadyExists desc = name conflicts with an existing object")
            theirs = {p.get("PublishedPort") for p in (other["Spec"].get("EndpointSpec") or {}).get("Ports") or []}
            for port in (spec.get("EndpointSpec") or {}).get("Ports") or []:
                if port.get("PublishedPort") and port["PublishedPort"] in theirs:
                    raise refused(
                        "port '%s' is already in use by service '%s'" % (port["PublishedPort"], other["Spec"]["Name"])
                    )

    def _create(self, spec):
        self._check_unique(spec)
        service = dict(ID=self.new_id("svc-"), Version=dict(Index=1), Spec=spec, CreatedAt=self.stamp())
        ports = [dict(p) for p in (spec.get("EndpointSpec") or {}).get("Ports") or []]
        for port in ports:
            port.setdefault("PublishedPort", 30000 + self.counter)
        service["Endpoint"] = dict(Spec=spec.get("EndpointSpec") or {}, Ports=ports)
        self.services_.append(service)
        self.writes.append(("create", spec["Name"]))
        return service["ID"]

    def _update(self, service, spec, params):
        assert str(params["version"]) == str(service["Version"]["Index"]), "out of sequence update"
        if mode_of(spec) != mode_of(service["Spec"]):
            raise refused("service mode change is not allowed")
        self._check_unique(spec, service["ID"])
        service["Version"]["Index"] += 1
        if params.get("rollback") == "previous":
            if not service.get("PreviousSpec"):
                raise refused("service %s does not have a previous spec" % service["ID"])
            spec, service["PreviousSpec"] = service["PreviousSpec"], None
            service["UpdateStatus"] = dict(
                State="rollback_started", StartedAt=self.stamp(), Message="manually requested rollback"
            )
            self.writes.append(("rollback", spec["Name"]))
        else:
            service["PreviousSpec"] = service["Spec"]
            self.writes.append(("update", spec["Name"]))
            if self._dirty(service["Spec"], spec):
                service["UpdateStatus"] = dict(State="updating", StartedAt=self.stamp(), Message="update in progress")
        service["Spec"] = spec
        self._replace_tasks(service)

    @staticmethod
    def _dirty(old, new):
        def template(spec):
            return {k: v for k, v in spec["TaskTemplate"].items() if k != "Placement"}

        return bool(spec_differences(template(old), template(new)))

    def _replace_tasks(self, service):
        for task in self.tasks_:
            mine = task["ServiceID"] == service["ID"] and task["DesiredState"] == "running"
            if mine and self._dirty(dict(TaskTemplate=task["Spec"]), service["Spec"]):
                task["DesiredState"] = "shutdown"
                task["Status"]["State"] = "shutdown"

    def _fits(self, spec, candidate):
        constraints = (spec["TaskTemplate"].get("Placement") or {}).get("Constraints") or []
        return all(constraint_matches(c, candidate) for c in constraints)

    def _wanted_slots(self, service):
        """(slot, node ID) the orchestrator wants a task in."""
        spec = service["Spec"]
        if mode_of(spec) == "global":
            return [
                (None, n["ID"]) for n in self.nodes_ if n["Spec"]["Availability"] != "drain" and self._fits(spec, n)
            ]
        usable = [
            n
            for n in self.nodes_
            if n["Status"]["State"] == "ready" and n["Spec"]["Availability"] == "active" and self._fits(spec, n)
        ]
        replicas = spec["Mode"]["Replicated"]["Replicas"]
        return [(slot, usable[(slot - 1) % len(usable)]["ID"] if usable else None) for slot in range(1, replicas + 1)]

    def tick(self):
        for task in self.tasks_:  # containers the engine asked to stop (slow_stop) are gone a tick later
            if task["DesiredState"] == "shutdown" and task["Status"]["State"] == "running":
                task["Status"] = dict(State="shutdown", Message="shutdown")
        for service in list(self.services_):
            self._tick_service(service)

    def _drained(self, node_id):
        found = next((n for n in self.nodes_ if n["ID"] == node_id), None)
        return found is not None and found["Spec"]["Availability"] == "drain"

    def _stop(self, task):
        task["DesiredState"] = "shutdown"
        if not (self.slow_stop and task["Status"]["State"] == "running"):
            task["Status"] = dict(State="shutdown", Message="shutdown")

    def _tick_service(self, service):
        current = {
            (t["Slot"], t["NodeID"] if t["Slot"] is None else None): t
            for t in self.tasks_
            if t["ServiceID"] == service["ID"] and t["DesiredState"] == "running"
        }
        for key, task in list(current.items()):  # a replicated task leaves a drained node, for another node
            if key[0] is not None and self._drained(task["NodeID"]):
                self._stop(task)
                del current[key]
        wanted = self._wanted_slots(service)
        keys = {(slot, node_id if slot is None else None) for slot, node_id in wanted}
        for key, task in current.items():
            if key not in keys:
                if self._drained(task["NodeID"]):
                    self._stop(task)
                else:
                    task["DesiredState"] = task["Status"]["State"] = "shutdown"
        for slot, node_id in wanted:
            task = current.get((slot, node_id if slot is None else None))
            if task is None:
                self._new_task(service, slot, node_id)
            else:
                self._advance(service, task)
        self._advance_update(service)

    def _new_task(self, service, slot, node_id):
        self.tasks_.append(
            dict(
                ID=self.new_id("task-"),
                ServiceID=service["ID"],
                Slot=slot,
                NodeID=node_id,
                DesiredState="running",
                CreatedAt=self.stamp(),
                Spec=copy.deepcopy(service["Spec"]["TaskTemplate"]),
                Status=dict(State="pending", Message="pending task scheduling"),
            )
        )

    def _advance(self, service, task):
        state = task["Status"]["State"]
        image = task["Spec"]["ContainerSpec"]["Image"].split("@", 1)[0]
        if state == "running" and image.endswith(":flaky"):  # started, then exits a tick later
            task["DesiredState"] = "shutdown"
            task["Status"] = dict(State="failed", Err="task: non-zero exit (1)")
            return
        if state != "pending":
            return
        target = next((n for n in self.nodes_ if n["ID"] == task["NodeID"]), None)
        if target is None:
            task["Status"]["Err"] = "no suitable node (scheduling constraints not satisfied on %d nodes)" % len(
                self.nodes_
            )
            return
        if target["Status"]["State"] != "ready" or target["Spec"]["Availability"] != "active":
            return
        image = task["Spec"]["ContainerSpec"]["Image"].split("@", 1)[0]
        if image not in self.images:
            task["DesiredState"] = "shutdown"
            task["Status"] = dict(State="rejected", Err="No such image: %s" % image)
        elif image.endswith(":broken"):
            task["DesiredState"] = "shutdown"
            task["Status"] = dict(State="failed", Err="task: non-zero exit (1)")
        else:
            task["Status"] = dict(State="running", Message="started", Timestamp=self.stamp(self.clock_skew))

    def _advance_update(self, service):
        status = service.get("UpdateStatus") or {}
        state = status.get("State")
        failed = [
            t
            for t in self.tasks_
            if t["ServiceID"] == service["ID"] and t["Status"]["State"] in ("failed", "rejected")
            if t["CreatedAt"] >= status.get("StartedAt", "")
        ]
        settled = len(self.running(service["Spec"]["Name"])) >= len(self._wanted_slots(service))
        if state == "updating" and failed:
            if (service["Spec"].get("UpdateConfig") or {}).get("FailureAction") == "rollback":
                service["Spec"], service["PreviousSpec"] = service["PreviousSpec"], None
                status.update(
                    State="rollback_started",
                    Message="update rolled back due to failure or early termination of task %s" % failed[0]["ID"],
                )
                self._replace_tasks(service)
            else:
                status.update(
                    State="paused",
                    Message="update paused due to failure or early termination of task %s" % failed[0]["ID"],
                )
        elif state == "updating" and settled:
            status.update(State="completed", Message="update completed")
        elif state == "rollback_started" and settled and not self.stuck_rollback:
            status.update(State="rollback_completed", Message="rollback completed")


def service_params(**given):
    """swarm_service params as AnsibleModule hands them over: every option present, the unset ones None."""
    from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_manager import SERVICE_OPTIONS

    values = {name: option.get("default") for name, option in SERVICE_OPTIONS.items()}
    values.update(wait_timeout=30)
    values.update(given)
    return values

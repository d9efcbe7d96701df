# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared plumbing of the swarmplane modules.

Two halves:
- EngineClient: a Docker SDK client on the local engine socket whose errors fail the module
  with context (what was being done, the engine's explanation, the fix). Every call is bounded:
  by the module's `timeout`, and inside a wait by the time the wait has left.
- Pure functions (no engine, no Ansible): normalising `docker info`, deciding what a join
  should do, diffing swarm and node specs, the `docker node ls` rows, bounded waits with an
  injectable clock. Unit-tested directly.

Swarm init, join and update go through the engine API's JSON bodies rather than the SDK's
keyword helpers: every field (data path port, availability at join, ...) then works the same
on Debian's python3-docker 5.0 as on docker 7.x.
"""

from __future__ import annotations

import os
import socket
import time
import traceback

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import get_path

try:
    import docker
    from docker.errors import APIError, DockerException, NotFound
    from requests.exceptions import RequestException, Timeout

    HAS_DOCKER_SDK = True
    DOCKER_SDK_IMPORT_ERROR = None
except ImportError:  # reported by EngineClient with missing_required_lib
    HAS_DOCKER_SDK = False
    DOCKER_SDK_IMPORT_ERROR = traceback.format_exc()

    class DockerException(Exception):
        pass

    class APIError(DockerException):
        pass

    class NotFound(APIError):
        pass

    class RequestException(Exception):
        pass

    class Timeout(RequestException):
        pass


DOCKER_SDK_MIN_VERSION = (4, 0, 0)
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
SWARM_PORT = 2377
NANOSECONDS = 1_000_000_000

ENGINE_ARGUMENT_SPEC = dict(
    docker_host=dict(type="str", default=DEFAULT_DOCKER_HOST),
    timeout=dict(type="int", default=60),
)


class EngineUnavailable(Exception):
    """No usable engine or SDK on the host (raised instead of failing when the caller asked for it)."""


class SwarmDecisionError(Exception):
    """The wanted state cannot be reached safely from the live state; the message says why and how to fix it."""


class EngineError(Exception):
    """An engine call failed. str() is what was being done and the engine's own words; `answered` is true when
    the engine answered with an error (as opposed to not answering at all)."""

    def __init__(self, message, answered=False):
        super().__init__(message)
        self.answered = answered


class NotYet(Exception):
    """A waited-for condition does not hold yet; the message says what was seen instead."""


# --------------------------------------------------------------------------- bounded waits


class Deadline:
    """A moment `seconds` from now. The clock is injectable so that waits can be tested without sleeping."""

    def __init__(self, seconds, clock=time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self.end = clock() + seconds

    def remaining(self):
        return max(0.0, self.end - self.clock())


def wait_for(attempt, deadline, interval=1.0, sleep=time.sleep):
    """attempt() until it returns instead of raising NotYet, or the deadline passes: then the last NotYet is raised.

    The wait ends at the deadline, not one try after it: each try is expected to bound its own engine
    calls by deadline.remaining() (EngineClient.bounded_by), and the pause between tries never overshoots.
    """
    while True:
        try:
            return attempt()
        except NotYet as exc:
            last = exc
        left = deadline.remaining()
        if left <= 0:
            raise last
        sleep(min(interval, left))


# --------------------------------------------------------------------------- engine client


def _version_tuple(text):
    parts = []
    for piece in str(text).split(".")[:3]:
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def engine_socket(docker_host):
    """Where a docker_host URL listens: ('unix', path) or ('tcp', (host, port)); None for schemes not probed (ssh)."""
    if docker_host.startswith("unix://"):
        return ("unix", docker_host[len("unix://") :])
    for scheme, port in (("tcp://", 2375), ("http://", 2375), ("https://", 2376)):
        if docker_host.startswith(scheme):
            rest = docker_host[len(scheme) :].split("/", 1)[0]
            host, sep, port_text = rest.rpartition(":")
            if not sep or "]" in port_text:
                host, port_text = rest, str(port)
            return ("tcp", (host.strip("[]"), int(port_text)))
    return None


def engine_absence(docker_host, timeout):
    """Why nothing listens at docker_host, or None when something does (or the scheme cannot be probed).

    Only "no socket" and "connection refused" mean no engine. Anything else (a timeout, permission denied)
    means an engine is there and misbehaves: the API call that follows reports it in the engine's words.
    """
    target = engine_socket(docker_host)
    if target is None:
        return None
    kind, address = target
    if kind == "unix" and not os.path.exists(address):
        return "no socket at %s" % address
    try:
        if kind == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(address)
            finally:
                sock.close()
        else:
            socket.create_connection(address, timeout).close()
    except (ConnectionRefusedError, FileNotFoundError) as exc:
        return "nothing listens at %s (%s)" % (docker_host, exc.strerror)
    except OSError:
        return None
    return None


def describe_engine_error(exc, timeout):
    """The engine's own words for a failed call; a timeout says how long it waited."""
    if isinstance(exc, APIError):
        return str(getattr(exc, "explanation", None) or exc)
    cause = exc
    while cause is not None and not isinstance(cause, Timeout):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, Timeout) or isinstance(exc, socket.timeout):
        return "no answer within %s s (%s)" % (_seconds(timeout), exc)
    return str(exc) or type(exc).__name__


def _seconds(value):
    return int(value) if float(value).is_integer() else round(value, 1)


# Shortest bound given to one engine call inside a wait whose time is almost up.
MIN_CALL_TIMEOUT = 0.5


class EngineClient:
    """Docker SDK low-level client on the local engine; every failure ends the module with context."""

    def __init__(self, module, soft=False, wait=0, clock=time.monotonic, sleep=time.sleep):
        """soft=True: a missing SDK, or no engine listening, raises EngineUnavailable instead of failing the module
        (an engine that is there but fails still fails it, with its own words).
        wait=N (seconds, or a Deadline): wait that long for the engine to answer (after a start or restart)."""
        self.module = module
        if not HAS_DOCKER_SDK:
            from ansible.module_utils.basic import missing_required_lib

            if soft:
                raise EngineUnavailable("the Docker SDK for Python is not installed (python3-docker)")
            module.fail_json(
                msg=missing_required_lib(
                    "docker (Docker SDK for Python) >= 4.0",
                    reason="to talk to the Docker engine (Debian/Ubuntu package: python3-docker)",
                ),
                exception=DOCKER_SDK_IMPORT_ERROR,
            )
        if _version_tuple(docker.__version__) < DOCKER_SDK_MIN_VERSION:
            if soft:
                raise EngineUnavailable("the Docker SDK for Python %s is too old" % docker.__version__)
            module.fail_json(
                msg="Docker SDK for Python %s is too old: swarmplane needs >= %s (Debian/Ubuntu: python3-docker from bookworm/jammy or newer)"
                % (docker.__version__, ".".join(map(str, DOCKER_SDK_MIN_VERSION)))
            )
        self.docker_host = module.params.get("docker_host") or DEFAULT_DOCKER_HOST
        self.call_timeout = module.params.get("timeout") or 60
        self.clock = clock
        self.sleep = sleep
        if wait:
            self.api = self._wait_for_engine(wait if isinstance(wait, Deadline) else Deadline(wait, clock))
            return
        try:
            self.api = self._connect(self.call_timeout)
        except EngineUnavailable as exc:
            if soft:
                raise
            self.fail(
                "no Docker engine answers at %s: %s. Is dockerd running? (the swarmplane.cluster.docker_engine role "
                "installs and starts it)" % (self.docker_host, exc)
            )
        except EngineError as exc:
            self.fail(
                "the Docker engine at %s does not work: %s. Fix: see why it fails (`docker info`, the engine's log), "
                "then re-run." % (self.docker_host, exc)
            )

    def _connect(self, timeout):
        """An APIClient on an engine that answered; EngineUnavailable when none listens, EngineError (the engine's
        words) when it is there but fails."""
        absent = engine_absence(self.docker_host, timeout)
        if absent:
            raise EngineUnavailable(absent)
        try:
            return docker.APIClient(base_url=self.docker_host, version="auto", timeout=timeout)
        except (DockerException, RequestException, OSError) as exc:
            raise EngineError(describe_engine_error(exc, timeout)) from None

    def _wait_for_engine(self, deadline):
        def attempt():
            try:
                api = self._connect(self._bound(deadline))
            except (EngineUnavailable, EngineError) as exc:
                raise NotYet(str(exc)) from None
            api.timeout = self.call_timeout
            return api

        try:
            return wait_for(attempt, deadline, sleep=self.sleep)
        except NotYet as exc:
            self.fail(
                "the Docker engine at %s did not answer within %s s: %s"
                % (self.docker_host, _seconds(deadline.seconds), exc)
            )

    def _bound(self, deadline):
        return round(max(MIN_CALL_TIMEOUT, min(self.call_timeout, deadline.remaining())), 1)

    def bounded_by(self, deadline):
        """Make the next calls give up when the deadline passes (never later than the module's timeout)."""
        self.api.timeout = self._bound(deadline)

    def unbounded(self):
        """Back to the module's timeout for each call, after a wait."""
        self.api.timeout = self.call_timeout

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    def attempt(self, doing, func, *args, **kwargs):
        """Run one SDK call; an engine error raises EngineError with what was being done and the engine's words."""
        try:
            return func(*args, **kwargs)
        except APIError as exc:
            raise EngineError("%s failed: %s" % (doing, describe_engine_error(exc, self.api.timeout)), True) from None
        except (DockerException, RequestException, OSError) as exc:
            raise EngineError("%s failed: %s" % (doing, describe_engine_error(exc, self.api.timeout))) from None

    def call(self, doing, func, *args, **kwargs):
        """Run one SDK call; on an engine error fail with what was being done and the engine's words."""
        try:
            return self.attempt(doing, func, *args, **kwargs)
        except EngineError as exc:
            self.fail(str(exc))

    def post_json(self, doing, path, body, params=None):
        return self.call(doing, self._post_json, path, body, params)

    def _post_json(self, path, body, params=None):
        response = self.api._post_json(self.api._url(path), data=body, params=params or {})
        self.api._raise_for_status(response)
        return response.text

    def info(self):
        return self.call("reading the engine state (docker info)", self.api.info)

    def inspect_swarm(self):
        return self.call("reading the swarm (docker swarm inspect)", self.api.inspect_swarm)

    def nodes(self):
        return self.call("listing the swarm nodes (docker node ls)", self.api.nodes)

    def require_manager(self, what):
        """The local node's state; fails unless it is a swarm manager. `what` names the module and its object."""
        local = local_node_state(self.info())
        if not local["is_manager"]:
            where = "a worker" if local["state"] == "active" else "not in a swarm (state %s)" % local["state"]
            self.fail(
                "%s must run on a swarm manager; this host is %s. Fix: run the task on a manager (delegate_to a "
                "host of managers, with run_once: true)." % (what, where)
            )
        return local

    def join_tokens(self):
        """The worker and manager join tokens (secrets: register them with no_log)."""
        tokens = self.inspect_swarm().get("JoinTokens") or {}
        return dict(worker=tokens.get("Worker"), manager=tokens.get("Manager"))

    def unlock_key(self):
        """The swarm's unlock key, "" when autolock is off (a secret: register it with no_log)."""
        answer = self.call("reading the unlock key (docker swarm unlock-key)", self.api.get_unlock_key)
        return (answer or {}).get("UnlockKey") or ""

    def inspect_node(self, node_id):
        """The node, or None when the swarm has no such node."""
        return self.call("reading swarm node %s" % node_id, self.node_or_none, node_id)

    def node_or_none(self, node_id):
        try:
            return self.api.inspect_node(node_id)
        except NotFound:
            return None


# --------------------------------------------------------------------------- pure logic: local node


def local_node_state(info):
    """The parts of `docker info` that say where this node stands in a swarm."""
    swarm = (info or {}).get("Swarm") or {}
    cluster = swarm.get("Cluster") or {}
    encryption = (cluster.get("Spec") or {}).get("EncryptionConfig") or {}
    return dict(
        state=swarm.get("LocalNodeState") or "inactive",
        node_id=swarm.get("NodeID") or None,
        node_addr=swarm.get("NodeAddr") or None,
        is_manager=bool(swarm.get("ControlAvailable")),
        cluster_id=cluster.get("ID") or None,
        autolock=bool(encryption.get("AutoLockManagers")),
        remote_managers=[
            dict(node_id=m.get("NodeID"), addr=m.get("Addr")) for m in (swarm.get("RemoteManagers") or [])
        ],
        error=swarm.get("Error") or None,
        hostname=(info or {}).get("Name"),
        engine_version=(info or {}).get("ServerVersion"),
    )


def _host_part(addr):
    """'10.0.0.1:2377' -> '10.0.0.1'; '[fd00::1]:2377' -> 'fd00::1'; '10.0.0.1' -> '10.0.0.1'."""
    addr = str(addr).strip()
    if addr.startswith("["):
        return addr[1:].split("]", 1)[0]
    if addr.count(":") == 1:
        return addr.split(":", 1)[0]
    return addr


def with_swarm_port(addr):
    """Add the swarm port to an address that has none."""
    addr = str(addr).strip()
    if addr.startswith("["):
        return addr if "]:" in addr else "%s:%d" % (addr, SWARM_PORT)
    if addr.count(":") == 1:
        return addr
    if ":" in addr:  # bare IPv6
        return "[%s]:%d" % (addr, SWARM_PORT)
    return "%s:%d" % (addr, SWARM_PORT)


def belongs_to_cluster(local, cluster_id=None, manager_node_ids=None, remote_addrs=None):
    """Whether a node that is in *a* swarm is in the swarm described by the arguments.

    Managers know their cluster ID. Workers do not; they know the managers they talk to, so they
    are compared by manager node IDs, else by manager addresses. Returns None when nothing
    was given to compare with.
    """
    if local["is_manager"] and cluster_id and local["cluster_id"]:
        return local["cluster_id"] == cluster_id
    known_ids = {m["node_id"] for m in local["remote_managers"] if m.get("node_id")}
    if manager_node_ids:
        return bool(known_ids & set(manager_node_ids))
    if remote_addrs:
        known_hosts = {_host_part(m["addr"]) for m in local["remote_managers"] if m.get("addr")}
        return bool(known_hosts & {_host_part(a) for a in remote_addrs})
    return None


def decide_join(local, cluster_id=None, manager_node_ids=None, remote_addrs=None, force=False):
    """What `state: join` must do: 'join', 'noop' or 'rejoin' (leave, then join); raises SwarmDecisionError."""
    state = local["state"]
    if state == "inactive":
        return "join"
    if state in ("pending", "error"):
        if force:
            return "rejoin"
        raise SwarmDecisionError(
            "the node is in swarm state '%s'%s: it cannot join until it leaves. Set force: true to leave and join again"
            % (state, " (%s)" % local["error"] if local.get("error") else "")
        )
    if state == "locked":
        raise SwarmDecisionError(
            "the node's swarm is locked (autolock): unlock it with `docker swarm unlock` and the unlock key first"
        )
    same = belongs_to_cluster(local, cluster_id, manager_node_ids, remote_addrs)
    if same is False:
        if force:
            return "rejoin"
        known = ", ".join(sorted(m["addr"] for m in local["remote_managers"] if m.get("addr"))) or "unknown managers"
        raise SwarmDecisionError(
            "the node is already in a different swarm (managers: %s). Remove it from that swarm first, or set force: true to leave it and join this one"
            % known
        )
    return "noop"


def decide_init(local):
    """What `state: present` must do on this node: 'init' or 'update'; raises SwarmDecisionError."""
    state = local["state"]
    if state == "inactive":
        return "init"
    if state == "active" and local["is_manager"]:
        return "update"
    if state == "active":
        raise SwarmDecisionError(
            "the node is a worker of an existing swarm: state=present (init or update) must run on a manager"
        )
    if state == "locked":
        raise SwarmDecisionError("the swarm is locked (autolock): unlock it with `docker swarm unlock` first")
    raise SwarmDecisionError(
        "the node is in swarm state '%s'%s: leave it first (state: absent, force: true)"
        % (state, " (%s)" % local["error"] if local.get("error") else "")
    )


# --------------------------------------------------------------------------- pure logic: swarm spec

# option name -> (path in the swarm spec, factor from the option's unit to the API's)
SWARM_SPEC_OPTIONS = {
    "autolock": (("EncryptionConfig", "AutoLockManagers"), None),
    "task_history_retention_limit": (("Orchestration", "TaskHistoryRetentionLimit"), None),
    "snapshot_interval": (("Raft", "SnapshotInterval"), None),
    "keep_old_snapshots": (("Raft", "KeepOldSnapshots"), None),
    "log_entries_for_slow_followers": (("Raft", "LogEntriesForSlowFollowers"), None),
    "heartbeat_tick": (("Raft", "HeartbeatTick"), None),
    "election_tick": (("Raft", "ElectionTick"), None),
    "dispatcher_heartbeat_period": (("Dispatcher", "HeartbeatPeriod"), NANOSECONDS),
    "node_cert_expiry": (("CAConfig", "NodeCertExpiry"), NANOSECONDS),
}
# Raft ticks are fixed when the swarm is created: the engine ignores changes to them.
SWARM_SPEC_INIT_ONLY = ("heartbeat_tick", "election_tick")


def _set_path(spec, path, value):
    for key in path[:-1]:
        spec = spec.setdefault(key, {})
    spec[path[-1]] = value


def _from_api_unit(value, factor):
    if not factor or value is None:
        return value
    return value // factor if value % factor == 0 else value / factor


def swarm_spec_changes(current_spec, wanted):
    """Diff the options the user set (not None) against a live swarm spec.

    Returns (changes, new_spec): changes maps option name -> {before, after} in the option's
    own unit; new_spec is a copy of the live spec with the changes applied. Labels are replaced
    as a whole when given.
    """
    import copy

    new_spec = copy.deepcopy(current_spec or {})
    changes = {}
    for option, (path, factor) in SWARM_SPEC_OPTIONS.items():
        value = wanted.get(option)
        if value is None or option in SWARM_SPEC_INIT_ONLY:
            continue
        api_value = value * factor if factor else value
        before = get_path(current_spec or {}, path)
        if option == "autolock":
            before = bool(before)
        if before != api_value:
            changes[option] = dict(before=_from_api_unit(before, factor), after=value)
            _set_path(new_spec, path, api_value)
    labels = wanted.get("labels")
    if labels is not None:
        before = (current_spec or {}).get("Labels") or {}
        if before != labels:
            changes["labels"] = dict(before=before, after=labels)
            new_spec["Labels"] = dict(labels)
    return changes, new_spec


def swarm_init_body(params):
    """The JSON body of POST /swarm/init from the module's options."""
    spec = {}
    for option, (path, factor) in SWARM_SPEC_OPTIONS.items():
        value = params.get(option)
        if value is not None:
            _set_path(spec, path, value * factor if factor else value)
    if params.get("labels"):
        spec["Labels"] = dict(params["labels"])
    body = dict(
        ListenAddr=params.get("listen_addr") or "0.0.0.0:%d" % SWARM_PORT,
        AdvertiseAddr=params.get("advertise_addr") or "",
        ForceNewCluster=bool(params.get("force_new_cluster")),
        Spec=spec,
    )
    if params.get("data_path_addr"):
        body["DataPathAddr"] = params["data_path_addr"]
    if params.get("data_path_port"):
        body["DataPathPort"] = params["data_path_port"]
    if params.get("default_addr_pool"):
        body["DefaultAddrPool"] = list(params["default_addr_pool"])
        body["SubnetSize"] = params.get("subnet_size") or 24
    return body


def init_only_drift(live_swarm, params):
    """Init-time settings the user asked for that differ from the live swarm; they cannot be changed after init."""
    drift = []
    port = params.get("data_path_port")
    if port and live_swarm.get("DataPathPort") and port != live_swarm["DataPathPort"]:
        drift.append("data_path_port is %s in the live swarm, not %s" % (live_swarm["DataPathPort"], port))
    pool = params.get("default_addr_pool")
    if pool and live_swarm.get("DefaultAddrPool") and sorted(pool) != sorted(live_swarm["DefaultAddrPool"]):
        drift.append("default_addr_pool is %s in the live swarm, not %s" % (live_swarm["DefaultAddrPool"], pool))
    size = params.get("subnet_size")
    if pool and size and live_swarm.get("SubnetSize") and size != live_swarm["SubnetSize"]:
        drift.append("subnet_size is %s in the live swarm, not %s" % (live_swarm["SubnetSize"], size))
    spec = live_swarm.get("Spec") or {}
    for option in SWARM_SPEC_INIT_ONLY:
        value = params.get(option)
        path = SWARM_SPEC_OPTIONS[option][0]
        if value is not None and get_path(spec, path) not in (None, value):
            drift.append("%s is %s in the live swarm, not %s" % (option, get_path(spec, path), value))
    return drift


# --------------------------------------------------------------------------- pure logic: nodes


def node_row(node):
    """One node as `docker node ls` shows it, plus the fields an operator needs to act on it."""
    spec = node.get("Spec") or {}
    status = node.get("Status") or {}
    description = node.get("Description") or {}
    manager = node.get("ManagerStatus") or {}
    if manager.get("Leader"):
        manager_status = "Leader"
    elif manager:
        manager_status = {"reachable": "Reachable", "unreachable": "Unreachable"}.get(
            manager.get("Reachability"), str(manager.get("Reachability", "")).capitalize()
        )
    else:
        manager_status = ""
    return dict(
        id=node.get("ID"),
        hostname=description.get("Hostname"),
        status=str(status.get("State", "unknown")).capitalize(),
        availability=str(spec.get("Availability", "")).capitalize(),
        manager_status=manager_status,
        engine_version=(description.get("Engine") or {}).get("EngineVersion"),
        role=spec.get("Role"),
        address=status.get("Addr"),
        labels=spec.get("Labels") or {},
    )


def node_spec_changes(spec, labels=None, labels_mode="merge", labels_to_remove=None, availability=None, role=None):
    """Diff the wanted node settings against a live node spec; returns (changes, new_spec)."""
    import copy

    new_spec = copy.deepcopy(spec or {})
    changes = {}
    current_labels = dict((spec or {}).get("Labels") or {})
    wanted_labels = dict(current_labels)
    if labels is not None:
        wanted_labels = dict(labels) if labels_mode == "replace" else dict(current_labels, **labels)
    for key in labels_to_remove or []:
        wanted_labels.pop(key, None)
    if wanted_labels != current_labels:
        changes["labels"] = dict(before=current_labels, after=wanted_labels)
        new_spec["Labels"] = wanted_labels
    for field, value in (("Availability", availability), ("Role", role)):
        if value is not None and (spec or {}).get(field) != value:
            changes[field.lower()] = dict(before=(spec or {}).get(field), after=value)
            new_spec[field] = value
    return changes, new_spec


def count_managers(nodes, exclude_id=None):
    """Managers of a node list (API objects), without exclude_id."""
    return sum(1 for n in nodes if (n.get("Spec") or {}).get("Role") == "manager" and n.get("ID") != exclude_id)

#!/usr/bin/python
# Copyright: (c) 2026, swarmplane contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swarm_network
short_description: Overlay networks of a Docker Swarm, from a manager
version_added: "0.1.0"
description:
  - Creates and removes swarm-scoped networks (C(docker network create -d overlay)), from a manager.
  - Options left unset are not compared, so a network created by hand is not changed for what the task does
    not say.
  - Before a network is created the module checks for what the engine would refuse or never allocate (a subnet
    overlapping another swarm network's, which the engine accepts but leaves unusable; a gateway or IP range
    outside the subnet; an MTU no interface can have; a driver the engine does not have), then waits until the
    swarm has allocated the network.
  - Every property of a Docker network is fixed at creation. A difference on a network no service uses
    recreates it; on a network services use, the task fails and names the services, unless O(recreate=true).
  - With O(recreate=true) the module checks first that the new network can be created, then detaches every
    service that uses the network (also services the inventory does not declare), waits until their old tasks
    have stopped (the swarm would let the network go sooner, while a slowly stopping task still holds it on its
    node), removes the network, creates the new one (the live settings with the task's changes) and attaches the
    services again with their aliases.
    Their tasks restart twice. If a step fails (the old network is still used after O(timeout) seconds or by a
    standalone container, the new one cannot be created or allocated, an engine call gets no answer within
    O(timeout) or loses its connection), the run undoes what it did; the old network is created again with its
    previous settings if it was removed, and every detached service is attached to it again as it was. A call
    that got no answer may have been applied all the same, so the undo reads the live network and services rather
    than assuming either. The error says what failed, what was undone and which services were touched.
options:
  name:
    description: Network name.
    type: str
    required: true
  state:
    description: V(present) creates (or recreates) the network; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  driver:
    description: Network driver.
    type: str
    default: overlay
  subnet:
    description:
      - Subnet in CIDR form. Unset, the swarm's default address pool gives one.
      - A new subnet on a recreate drops the live gateway and IP range unless O(gateway) and O(ip_range) are set.
    type: str
  gateway:
    description: Gateway address in the subnet.
    type: str
  ip_range:
    description: Range (CIDR) within the subnet that tasks get addresses from.
    type: str
  attachable:
    description: Whether standalone containers (docker run --network) can attach.
    type: bool
  internal:
    description: No route out of the network.
    type: bool
  encrypted:
    description:
      - Encrypt the VXLAN traffic between hosts (IPsec ESP). Every host needs ESP and GCM in its kernel;
        the docker_engine role reports hosts whose kernel lacks them.
    type: bool
  mtu:
    description:
      - MTU of the network's interfaces; at most the underlay MTU minus 50 for VXLAN.
      - A value outside 68-65535 is refused before anything changes (the engine would accept it and fail every
        task on the network).
    type: int
  labels:
    description: Labels of the network.
    type: dict
  recreate:
    description:
      - When a change needs a new network and services use it, detach them, recreate the network and attach them
        again; a failed step is undone (see the description).
    type: bool
    default: false
  timeout:
    description: Seconds to wait for an engine API call, and for detached tasks to leave the network.
    type: int
    default: 60
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - swarmplane.cluster.engine
attributes:
  platform:
    platforms: posix
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - A recreate updates each service twice (detached, then attached again), so afterwards a service's previous spec
    (what C(docker service rollback) returns to) is the spec without the network.
author:
  - swarmplane contributors (@swarmplane)
"""

EXAMPLES = r"""
- name: Back-end network, reachable from standalone containers for debugging
  swarmplane.cluster.swarm_network:
    name: backend
    subnet: 10.30.0.0/24
    attachable: true

- name: Move the back-end network to another subnet, detaching and re-attaching the services that use it
  swarmplane.cluster.swarm_network:
    name: backend
    subnet: 10.31.0.0/24
    attachable: true
    recreate: true

- name: Encrypted network (needs ESP in every host's kernel)
  swarmplane.cluster.swarm_network:
    name: secure
    encrypted: true

- name: Remove a network no service uses any more
  swarmplane.cluster.swarm_network:
    name: old
    state: absent
"""

RETURN = r"""
network:
  description: The network after the run (before it, in check mode), in the module's own terms.
  returned: when the network exists
  type: dict
changes:
  description: The properties that differ, with before and after.
  returned: always
  type: dict
recreated:
  description: Whether the network was (or, in check mode, would be) removed and created again.
  returned: always
  type: bool
services:
  description: Names of the services that use the network.
  returned: always
  type: list
  elements: str
touched:
  description:
    - Names of the services a recreate detached and attached again (their tasks restarted), or would in check mode.
    - On a failed recreate, the services it detached before the failure (all attached again when the undo worked).
  returned: always
  type: list
  elements: str
"""

import copy
import ipaddress
import re
import time
from collections import namedtuple

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import (
    ENGINE_ARGUMENT_SPEC,
    EngineClient,
    EngineError,
    NotFound,
    SwarmDecisionError,
)

MTU_OPTION = "com.docker.network.driver.mtu"
ENCRYPTED_OPTION = "encrypted"
VXLAN_OPTION = "com.docker.network.driver.overlay.vxlanid_list"  # the allocator's choice, not a setting
PROPERTIES = ("driver", "subnet", "gateway", "ip_range", "attachable", "internal", "encrypted", "mtu", "labels")
# The swarm's allocator takes milliseconds, and reports a refusal (an overlapping subnet, an exhausted
# address pool) only in the manager's log: a network still unallocated after this many seconds is refused.
ALLOCATION_WAIT = 10
# The interface MTUs Linux accepts (IPv4's minimum, the largest IP packet).
MIN_MTU = 68
MAX_MTU = 65535
IN_USE_BY_TASK = re.compile(r"in use by task (\w+)")
# Task states in which a task may still hold its networks. The swarm lets a network go as soon as its tasks are
# told to shut down, while a task that stops slowly (its stop grace period) still holds it on its node; a network
# of the same name cannot be made again there until it is stopped.
HOLDING_STATES = ("new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")

# Where a service was attached: the attachment itself (Target, Aliases, DriverOpts), and its place in the spec
# ("TaskTemplate" or the deprecated top-level "Spec") and list index, so it goes back exactly there.
Detachment = namedtuple("Detachment", "service_id service attachment place index")


# --------------------------------------------------------------------------- pure logic: networks


def network_view(live):
    """A live network (engine API object) in the module's own terms."""
    ipam = ((live.get("IPAM") or {}).get("Config") or [{}])[0] or {}
    options = live.get("Options") or {}
    mtu = options.get(MTU_OPTION)
    return dict(
        id=live.get("Id"),
        name=live.get("Name"),
        driver=live.get("Driver"),
        subnet=ipam.get("Subnet"),
        gateway=ipam.get("Gateway"),
        ip_range=ipam.get("IPRange"),
        attachable=bool(live.get("Attachable")),
        internal=bool(live.get("Internal")),
        encrypted=ENCRYPTED_OPTION in options,
        mtu=int(mtu) if mtu else None,
        labels=live.get("Labels") or {},
    )


def network_changes(view, wanted):
    """Properties the user set (not None) that differ from the live network: {name: {before, after}}."""
    changes = {}
    for prop in PROPERTIES:
        value = wanted.get(prop)
        if value is None:
            continue
        if prop == "labels":
            value = {str(k): str(v) for k, v in value.items()}
        if view.get(prop) != value:
            changes[prop] = dict(before=view.get(prop), after=value)
    return changes


def create_body(params):
    """The JSON body of POST /networks/create."""
    body = dict(
        Name=params["name"],
        CheckDuplicate=True,
        Driver=params["driver"],
        Scope="swarm",
        Attachable=bool(params.get("attachable")),
        Internal=bool(params.get("internal")),
        Options={},
        Labels={str(k): str(v) for k, v in (params.get("labels") or {}).items()},
    )
    if params.get("encrypted"):
        body["Options"][ENCRYPTED_OPTION] = ""
    if params.get("mtu"):
        body["Options"][MTU_OPTION] = str(params["mtu"])
    if params.get("subnet"):
        config = dict(Subnet=params["subnet"])
        if params.get("gateway"):
            config["Gateway"] = params["gateway"]
        if params.get("ip_range"):
            config["IPRange"] = params["ip_range"]
        body["IPAM"] = dict(Driver="default", Config=[config])
    return body


def clone_body(live):
    """The body of POST /networks/create that makes the live network again with every setting it has."""
    body = dict(
        Name=live["Name"],
        CheckDuplicate=True,
        Driver=live.get("Driver") or "overlay",
        Scope="swarm",
        Attachable=bool(live.get("Attachable")),
        Internal=bool(live.get("Internal")),
        EnableIPv6=bool(live.get("EnableIPv6")),
        Options={k: v for k, v in (live.get("Options") or {}).items() if k != VXLAN_OPTION},
        Labels=dict(live.get("Labels") or {}),
    )
    ipam = live.get("IPAM") or {}
    configs = [dict(config) for config in ipam.get("Config") or [] if config]
    if configs:
        body["IPAM"] = dict(Driver=ipam.get("Driver") or "default", Config=configs)
        if ipam.get("Options"):
            body["IPAM"]["Options"] = dict(ipam["Options"])
    if (live.get("ConfigFrom") or {}).get("Network"):
        body["ConfigFrom"] = dict(live["ConfigFrom"])
    return body


def recreate_body(live, params):
    """The new network of a recreate: every setting of the live network, with the properties the task sets."""
    body = clone_body(live)
    given = {p: params[p] for p in PROPERTIES if params.get(p) is not None}
    for prop, key in (("driver", "Driver"), ("attachable", "Attachable"), ("internal", "Internal")):
        if prop in given:
            body[key] = given[prop]
    if "labels" in given:
        body["Labels"] = {str(k): str(v) for k, v in given["labels"].items()}
    if given.get("encrypted"):
        body["Options"][ENCRYPTED_OPTION] = ""
    elif "encrypted" in given:
        body["Options"].pop(ENCRYPTED_OPTION, None)
    if "mtu" in given:
        body["Options"][MTU_OPTION] = str(given["mtu"])
    if {"subnet", "gateway", "ip_range"} & set(given):
        ipam = body.setdefault("IPAM", dict(Driver="default", Config=[]))
        configs = ipam["Config"] or [{}]
        first = configs[0]
        if "subnet" in given and given["subnet"] != first.get("Subnet"):
            first = dict(Subnet=given["subnet"])  # the live gateway and range belong to the old subnet
        for prop, key in (("gateway", "Gateway"), ("ip_range", "IPRange")):
            if prop in given:
                first[key] = given[prop]
        ipam["Config"] = [first] + configs[1:]
    return body


def is_allocated(live):
    """Whether the swarm allocated the network: an unallocated one has no driver and no IPAM config."""
    return bool((live or {}).get("Driver"))


def network_subnets(live):
    return [c["Subnet"] for c in ((live.get("IPAM") or {}).get("Config") or []) if c and c.get("Subnet")]


def _parse(text, kind):
    """An ip_network / ip_address, or None when the text is not one."""
    try:
        return ipaddress.ip_network(text, strict=False) if kind == "network" else ipaddress.ip_address(text)
    except ValueError:
        return None


def ipam_problems(config):
    """[(problem, fix)] of one IPAM config of a create body: what the engine refuses in it."""
    subnet = _parse(config.get("Subnet"), "network")
    if subnet is None:
        return [("subnet %s is not a network in CIDR form" % config.get("Subnet"), "give a subnet like 10.30.0.0/24")]
    problems = []
    gateway = config.get("Gateway")
    if gateway and (_parse(gateway, "address") is None or _parse(gateway, "address") not in subnet):
        problems.append(("gateway %s is not in subnet %s" % (gateway, subnet), "give a gateway inside the subnet"))
    ip_range = config.get("IPRange")
    if ip_range:
        parsed = _parse(ip_range, "network")
        if parsed is None or parsed.version != subnet.version or not parsed.subnet_of(subnet):
            problems.append(
                ("ip_range %s is not within subnet %s" % (ip_range, subnet), "give an ip_range inside the subnet")
            )
    return problems


def overlap_problems(body, networks, ignore_ids=()):
    """[(problem, fix)]: the body's subnets that overlap a subnet of another swarm network.

    The engine accepts such a network but its allocator never allocates it, so no task can use it.
    """
    problems = []
    for config in (body.get("IPAM") or {}).get("Config") or []:
        wanted = _parse(config.get("Subnet"), "network")
        if wanted is None:
            continue
        for other in networks:
            if other.get("Scope") != "swarm" or other.get("Id") in ignore_ids:
                continue
            for text in network_subnets(other):
                theirs = _parse(text, "network")
                if theirs is not None and theirs.version == wanted.version and theirs.overlaps(wanted):
                    problems.append(
                        (
                            "subnet %s overlaps subnet %s of network %s" % (wanted, theirs, other.get("Name")),
                            "choose a subnet that no other swarm network uses (docker network inspect NAME "
                            "--format '{{json .IPAM.Config}}' shows each network's)",
                        )
                    )
    return problems


def creation_problems(body, networks, drivers, ignore_ids=()):
    """[(problem, fix)]: why the engine would refuse to create the network of `body`, or never allocate it.

    `networks` are the live networks, `drivers` the engine's network drivers (docker info; empty: unknown),
    `ignore_ids` the networks not to compare with (the one a recreate replaces).
    """
    problems = []
    if drivers and body["Driver"] not in drivers:
        problems.append(
            (
                "driver %s is not on this engine (it has %s)" % (body["Driver"], ", ".join(sorted(drivers))),
                "use one of those drivers, or install the network plugin on every node",
            )
        )
    problems += mtu_problems(body)
    for config in (body.get("IPAM") or {}).get("Config") or []:
        problems += ipam_problems(config)
    return problems + overlap_problems(body, networks, ignore_ids)


def mtu_problems(body):
    """[(problem, fix)] of the MTU option: the manager stores any text, but each node's driver sets it on the
    network's interfaces only when a task attaches, and fails that task for a value the kernel refuses."""
    text = (body.get("Options") or {}).get(MTU_OPTION)
    if text is None:
        return []
    try:
        mtu = int(text)
    except ValueError:
        mtu = None
    if mtu is None or not MIN_MTU <= mtu <= MAX_MTU:
        return [
            (
                "mtu %s is outside %d-%d, so every task on the network would fail to start" % (text, MIN_MTU, MAX_MTU),
                "give an mtu of at most the underlay MTU minus 50 (1450 on a 1500 underlay)",
            )
        ]
    return []


def summarise(problems):
    """(what, fix) of [(problem, fix)]: the problems joined, each fix once."""
    fixes = []
    for _problem, fix in problems:
        if fix not in fixes:
            fixes.append(fix)
    return "; ".join(p[0] for p in problems), "; ".join(fixes)


def create_command(body):
    """The docker CLI command that creates the network of a create body (for an operator to run by hand)."""
    argv = ["docker network create", "-d", body["Driver"], "--scope swarm"]
    argv += ["--attachable"] if body.get("Attachable") else []
    argv += ["--internal"] if body.get("Internal") else []
    argv += ["--ipv6"] if body.get("EnableIPv6") else []
    for config in (body.get("IPAM") or {}).get("Config") or []:
        for key, flag in (("Subnet", "--subnet"), ("Gateway", "--gateway"), ("IPRange", "--ip-range")):
            if config.get(key):
                argv += [flag, config[key]]
    for key, value in sorted((body.get("Options") or {}).items()):
        argv += ["--opt", "%s=%s" % (key, value) if value else key]
    for key, value in sorted((body.get("Labels") or {}).items()):
        argv += ["--label", "%s=%s" % (key, value)]
    return " ".join(argv + [body["Name"]])


# --------------------------------------------------------------------------- pure logic: services


def service_network_targets(service):
    spec = service.get("Spec") or {}
    attachments = ((spec.get("TaskTemplate") or {}).get("Networks") or []) + (spec.get("Networks") or [])
    return [a.get("Target") for a in attachments]


def services_using(services, network_id, name):
    return sorted(s["Spec"]["Name"] for s in services if {network_id, name} & set(service_network_targets(s)))


def without_network(spec, network_id, name):
    """A copy of a service spec without its attachment to the network, and where that attachment was:
    (attachment, place, index), or None when the spec has none."""
    spec = copy.deepcopy(spec)
    found = None
    for place, holder in (("TaskTemplate", spec.setdefault("TaskTemplate", {})), ("Spec", spec)):
        if place == "Spec" and "Networks" not in spec:  # the deprecated place, still read by the engine
            continue
        kept = []
        for index, attachment in enumerate(holder.get("Networks") or []):
            if attachment.get("Target") in (network_id, name):
                found = found or (attachment, place, index)
            else:
                kept.append(attachment)
        holder["Networks"] = kept
    return spec, found


def with_network(spec, detachment, network_id):
    """A copy of a service spec with a detached attachment back in its place, pointing at network_id."""
    spec = copy.deepcopy(spec)
    holder = spec.setdefault("TaskTemplate", {}) if detachment.place == "TaskTemplate" else spec
    attachments = list(holder.get("Networks") or [])
    attachments.insert(min(detachment.index, len(attachments)), dict(detachment.attachment, Target=network_id))
    holder["Networks"] = attachments
    return spec


def tasks_holding(tasks, nodes, network_id):
    """[(task ID, service ID, node ID, state)] of the service tasks not yet stopped that are attached to the
    network, leaving out tasks on nodes that are down (they report nothing until they come back)."""
    down = {n.get("ID") for n in nodes if ((n.get("Status") or {}).get("State") or "ready") in ("down", "unknown")}
    holding = []
    for task in tasks:
        state = (task.get("Status") or {}).get("State")
        if not task.get("ServiceID") or state not in HOLDING_STATES or task.get("NodeID") in down:
            continue
        if any(((a.get("Network") or {}).get("ID")) == network_id for a in task.get("NetworksAttachments") or []):
            holding.append((task.get("ID"), task.get("ServiceID"), task.get("NodeID"), state))
    return sorted(holding)


def attachment_text(detachment):
    aliases = detachment.attachment.get("Aliases") or []
    return "%s (%s)" % (detachment.service, "aliases " + ", ".join(aliases) if aliases else "no aliases")


def attach_command(network, detachment):
    """The docker CLI command that attaches a detached service again, with its aliases."""
    target = ["name=%s" % network] + ["alias=%s" % a for a in detachment.attachment.get("Aliases") or []]
    target += ["driver-opt=%s=%s" % kv for kv in sorted((detachment.attachment.get("DriverOpts") or {}).items())]
    return "docker service update --network-add %s %s" % (",".join(target), detachment.service)


# --------------------------------------------------------------------------- the module's run


class StepFailed(Exception):
    """An engine step failed; `fix` says what the operator can do about it. `answered` is false when the engine
    did not answer (a timeout, a lost connection): the step may then have been applied all the same."""

    def __init__(self, what, fix=None, answered=True):
        super().__init__(what)
        self.answered = answered
        self.fix = fix or (
            "correct what the engine names"
            if answered
            else "see why the engine did not answer (docker info, the engine's log on this manager), or raise timeout"
        )


def engine_words(failure, doing):
    """The engine's part of a StepFailed of a call that was `doing`."""
    text = str(failure)
    prefix = "%s failed: " % doing
    return text[len(prefix) :] if text.startswith(prefix) else text


def attached_to(spec, targets):
    """Whether a service spec has an attachment to one of `targets` (network IDs or names)."""
    return bool(set(targets) & set(service_network_targets(dict(Spec=spec))))


class Recreation:
    """What a recreate has done so far, so that a failure undoes exactly that."""

    def __init__(self, live):
        self.live = live  # the network before the run (engine API object)
        self.detached = []  # Detachment of each service detached from it so far (or maybe: see unsure)
        self.unsure = set()  # service IDs whose detach got no answer: the engine may or may not have applied it
        self.not_touched = set()  # service IDs found never detached after all (their update was not applied)
        self.old_removed = False
        self.create_attempted = False  # a network of the name may exist that this run made

    def touched(self):
        return [d.service for d in self.detached if d.service_id not in self.not_touched]


class NetworkManager:
    """Runs swarm_network; client defaults to EngineClient(module), sleep and clock to the real ones."""

    def __init__(self, module, client=None, sleep=time.sleep, clock=time.monotonic):
        self.module = module
        self.params = module.params
        self.name = module.params["name"]
        self.client = client or EngineClient(module)
        self.sleep = sleep
        self.clock = clock
        self.client.require_manager("network %s: swarm_network" % self.name)

    # ----------------------------------------------------------------- engine access (raises StepFailed)

    def _engine(self, doing, func, *args, **kwargs):
        """One engine call through EngineClient's error mapping: an engine error, a timeout or a lost connection
        (requests and OS errors included) raises StepFailed with what was being done and the engine's words."""
        try:
            return self.client.attempt(doing, func, *args, **kwargs)
        except EngineError as exc:
            raise StepFailed(str(exc), answered=exc.answered) from None

    def _post(self, doing, path, body, params=None):
        api = self.client.api

        def post():
            response = api._post_json(api._url(path), data=body, params=params or {})
            api._raise_for_status(response)
            return response

        return self._engine(doing, post)

    def find(self):
        api = self.client.api
        for network in self._engine("listing networks", api.networks, names=[self.name]) or []:
            if network.get("Name") == self.name:
                return self._engine("reading network %s" % self.name, api.inspect_network, network["Id"])
        return None

    def services(self):
        return self._engine("listing services", self.client.api.services) or []

    def _networks(self):
        return self._engine("listing networks", self.client.api.networks) or []

    def _by_name(self, name, not_ids=()):
        """The live network of that name (not one of not_ids), or None."""
        for network in self._networks():
            if network.get("Name") == name and network.get("Id") not in not_ids:
                return network
        return None

    def _exists(self, network_id):
        """Whether the swarm still has the network: read live, since a call that got no answer may have been
        applied."""

        def inspect():
            try:
                return self.client.api.inspect_network(network_id)
            except NotFound:
                return None

        return self._engine("reading network %s" % network_id, inspect) is not None

    def _drivers(self):
        info = self._engine("reading the engine state (docker info)", self.client.api.info) or {}
        return (info.get("Plugins") or {}).get("Network") or []

    def _update_service(self, service, spec):
        self._post(
            "updating service %s" % spec.get("Name"),
            "/services/%s/update" % service["ID"],
            spec,
            params=dict(version=service["Version"]["Index"]),
        )

    # ----------------------------------------------------------------- run

    def run(self):
        result = dict(changed=False, changes={}, recreated=False, services=[], touched=[])
        try:
            live = self.find()
            if live is not None:
                result["services"] = services_using(self.services(), live["Id"], live["Name"])
            if self.params["state"] == "absent":
                return self._absent(live, result)
            return self._present(live, result)
        except (SwarmDecisionError, StepFailed) as exc:
            fix = " Fix: %s." % exc.fix if isinstance(exc, StepFailed) else ""
            self.client.fail("network %s: %s.%s" % (self.name, str(exc).rstrip("."), fix), **result)

    def _absent(self, live, result):
        if live is None:
            return dict(result, diff=dict(before={}, after={}))
        view = network_view(live)
        if result["services"]:
            raise SwarmDecisionError(
                "services use it: %s. Fix: remove them (or their attachment) first" % ", ".join(result["services"])
            )
        if not self.module.check_mode:
            self._engine("removing network %s" % self.name, self.client.api.remove_network, live["Id"])
        return dict(result, changed=True, network=view, diff=dict(before=view, after={}))

    def _present(self, live, result):
        if live is None:
            body = create_body(self.params)
            self._check_creatable(body, nothing_changed="nothing was created")
            view = network_view(self._create_allocated(body)) if not self.module.check_mode else {}
            return dict(result, changed=True, network=view, diff=dict(before={}, after=self._wanted()))
        view = network_view(live)
        changes = network_changes(view, self.params)
        result.update(changes=changes, network=view)
        if not changes:
            return dict(result, diff=dict(before=view, after=view))
        users = result["services"]
        if users and not self.params["recreate"]:
            raise SwarmDecisionError(
                "%s cannot change on an existing network, and services use it: %s. Fix: set recreate: true to "
                "detach them, recreate the network and attach them again (their tasks restart)"
                % (", ".join(sorted(changes)), ", ".join(users))
            )
        body = recreate_body(live, self.params)
        self._check_creatable(body, replaced=live, nothing_changed="nothing was changed and no service detached")
        after = dict(view, **{k: v["after"] for k, v in changes.items()})
        result.update(changed=True, recreated=True, touched=users, diff=dict(before=view, after=after))
        if not self.module.check_mode:
            result["network"] = network_view(self._recreate(live, body, users, result))
        return result

    def _wanted(self):
        return dict({p: self.params[p] for p in PROPERTIES if self.params.get(p) is not None}, name=self.name)

    def _check_creatable(self, body, nothing_changed, replaced=None):
        ignore = [replaced["Id"]] if replaced else []
        problems = creation_problems(body, self._networks(), self._drivers(), ignore_ids=ignore)
        if problems:
            what, fix = summarise(problems)
            raise SwarmDecisionError(
                "%s would be refused, so %s: %s. Fix: %s"
                % ("the new network" if replaced else "the network", nothing_changed, what, fix)
            )

    # ----------------------------------------------------------------- create, remove

    def _create_allocated(self, body, not_ids=()):
        """Create a network and wait until the swarm allocated it; an unallocated one is removed again.

        A create that got no answer may have been applied: a network of the name that is none of not_ids (the
        networks that were there before) is then the one it made."""
        try:
            network_id = self._post("creating network %s" % body["Name"], "/networks/create", body).json()["Id"]
        except StepFailed as exc:
            made = None if exc.answered else self._by_name(body["Name"], not_ids)
            if made is None:
                raise
            network_id = made["Id"]
        deadline = self.clock() + ALLOCATION_WAIT
        while True:
            live = self._engine("reading network %s" % body["Name"], self.client.api.inspect_network, network_id)
            if is_allocated(live):
                return live
            if self.clock() > deadline:
                break
            self.sleep(0.2)
        problems = overlap_problems(body, self._networks(), ignore_ids=[network_id]) or [
            ("the manager's log says why (look for 'Failed allocation')", "correct what the log names")
        ]
        try:
            self._engine("removing the unallocated network %s" % network_id, self.client.api.remove_network, network_id)
        except StepFailed as exc:
            problems.append(
                (
                    "%s too" % exc,
                    "remove it (docker network rm %s)" % network_id,
                )
            )
        what, fix = summarise(problems)
        raise StepFailed(
            "the engine accepted network %s but did not allocate it within %d s: %s"
            % (body["Name"], ALLOCATION_WAIT, what),
            fix=fix,
        )

    def _wait_tasks_stopped(self, live, done, deadline):
        """Wait until no task of a detached service holds the network: the swarm would remove it as soon as those
        tasks are told to stop, while a slowly stopping task still holds it on its node."""
        names = {d.service_id: d.service for d in done.detached}
        while True:
            api = self.client.api
            holding = tasks_holding(
                self._engine("listing tasks", api.tasks) or [],
                self._engine("listing nodes", api.nodes) or [],
                live["Id"],
            )
            if not holding:
                return
            if self.clock() > deadline:
                task, service, node, state = holding[0]
                hostname = self._hostname(node)
                raise StepFailed(
                    "the old network was still in use %d s after its services were detached: %d task%s still %s, "
                    "e.g. task %s of service %s on %s (%s)"
                    % (
                        self.params["timeout"],
                        len(holding),
                        "s" if len(holding) > 1 else "",
                        "hold it" if len(holding) > 1 else "holds it",
                        task,
                        names.get(service, service),
                        hostname,
                        state,
                    ),
                    fix="wait until it has stopped (docker service ps %s; a task that ignores SIGTERM stops after its "
                    "stop grace period), or raise timeout" % names.get(service, service),
                )
            self.sleep(1)

    def _hostname(self, node_id):
        try:
            node = self._engine("reading node %s" % node_id, self.client.api.inspect_node, node_id)
        except StepFailed:
            return node_id
        return ((node or {}).get("Description") or {}).get("Hostname") or node_id

    def _remove_when_free(self, live, deadline):
        """Remove the network once the detached tasks have left it; a standalone container fails at once."""

        def remove():
            try:
                self.client.api.remove_network(live["Id"])
            except NotFound:  # gone already: an earlier try that got no answer was applied
                pass

        while True:
            try:
                self._engine("removing network %s" % self.name, remove)
                return
            except StepFailed as exc:  # the engine's "in use by task" until the tasks are gone
                words, answered = engine_words(exc, "removing network %s" % self.name), exc.answered
                if not answered and not self._exists(live["Id"]):
                    return  # the call got no answer, but the engine removed it
            holder = self._standalone_container(words)
            if holder:
                container, node = holder
                raise StepFailed(
                    "the old network could not be removed: a standalone container (%s, on %s) is attached to it"
                    % (container, node),
                    fix="disconnect it (docker network disconnect %s %s, on %s) or remove it"
                    % (self.name, container, node),
                )
            if self.clock() > deadline:
                if not answered:
                    raise StepFailed(
                        "removing the old network got no answer from the engine for %d s after its services were "
                        "detached, and it is still there (the engine: %s)" % (self.params["timeout"], words),
                        answered=False,
                    )
                raise StepFailed(
                    "the old network was still in use %d s after its services were detached (the engine: %s)"
                    % (self.params["timeout"], words),
                    fix="find what still uses it (docker inspect on the task the engine names), or raise timeout",
                )
            self.sleep(1)

    def _wait_until_released(self, live):
        # The swarm forgets a removed network at once, but this manager's engine keeps its own copy until its
        # local endpoints are torn down, and refuses a new network of the same name until then.
        deadline = self.clock() + self.params["timeout"]
        while any(n.get("Id") == live["Id"] for n in self._networks()):
            if self.clock() > deadline:
                raise StepFailed(
                    "the old network was removed from the swarm, but this manager's engine still held it %d s later"
                    % self.params["timeout"],
                    fix="wait until docker network ls on this manager no longer lists it, or raise timeout",
                )
            self.sleep(0.5)

    def _standalone_container(self, words):
        """(container ID, node name) when the engine's refusal names the attachment task of a standalone
        container, which never leaves by itself; else None."""
        match = IN_USE_BY_TASK.search(words)
        if not match:
            return None
        try:
            task = self._engine("reading task %s" % match.group(1), self.client.api.inspect_task, match.group(1))
            container = ((task.get("Spec") or {}).get("NetworkAttachmentSpec") or {}).get("ContainerID")
            if not container:
                return None
            node = self._engine(
                "reading node %s" % task.get("NodeID"), self.client.api.inspect_node, task.get("NodeID")
            )
        except StepFailed:
            return None
        return container[:12], ((node or {}).get("Description") or {}).get("Hostname") or task.get("NodeID")

    # ----------------------------------------------------------------- recreate and its undo

    def _recreate(self, live, body, users, result):
        """Detach, remove, create, attach again; on a failure, undo and fail saying what happened."""
        done = Recreation(live)
        try:
            for service in self.services():
                if service["Spec"]["Name"] in users:
                    self._detach(service, live, done)
            deadline = self.clock() + self.params["timeout"]
            self._wait_tasks_stopped(live, done, deadline)
            self._remove_when_free(live, deadline)
            done.old_removed = True
            self._wait_until_released(live)
            done.create_attempted = True
            new = self._create_allocated(body, not_ids=[live["Id"]])
        except StepFailed as failure:
            message = self._undo(done, failure)  # reads the live state: it updates what `done` says was done
            changed = bool(done.touched() or done.old_removed)
            self.client.fail(message, **dict(result, changed=changed, recreated=False, touched=done.touched()))
        not_attached = self._attach_again(done, new["Id"])
        if not_attached:
            self.client.fail(
                "network %s: it was recreated (new ID %s), but %s could not be attached to it again: %s. Fix: %s"
                % (
                    self.name,
                    new["Id"],
                    ", ".join(d[0].service for d in not_attached),
                    "; ".join(d[1] for d in not_attached),
                    "; ".join(attach_command(self.name, d[0]) for d in not_attached),
                ),
                **dict(result, touched=done.touched(), network=network_view(new)),
            )
        return new

    def _detach(self, service, live, done):
        spec, found = without_network(service["Spec"], live["Id"], live["Name"])
        if found is None:
            return
        detachment = Detachment(service["ID"], service["Spec"]["Name"], *found)
        try:
            self._update_service(service, spec)
        except StepFailed as exc:
            if not exc.answered:  # the engine may have applied it: the undo reads the service to see
                done.detached.append(detachment)
                done.unsure.add(service["ID"])
            raise
        done.detached.append(detachment)

    def _attach_again(self, done, network_id):
        """Put each detachment back, pointing at network_id; returns [(detachment, why)] of those that failed.

        Each service is read live first: one found attached already (a detach that got no answer and was not
        applied, or an attach that got no answer and was) is left as it is."""
        targets = {network_id} | ({done.live["Name"]} if network_id == done.live["Id"] else set())
        failed = []
        for detachment in done.detached:
            try:
                if not self._attach_one(detachment, network_id, targets) and detachment.service_id in done.unsure:
                    done.not_touched.add(detachment.service_id)
            except StepFailed as exc:
                failed.append((detachment, str(exc)))
        return failed

    def _attach_one(self, detachment, network_id, targets):
        """Attach one detached service to network_id; False when it was found attached already.

        An update that gets no answer may have been applied: the service is read again, and attached again
        once more only if it is not."""
        failure = None
        for attempt in range(3):
            service = self._engine(
                "reading service %s" % detachment.service, self.client.api.inspect_service, detachment.service_id
            )
            if attached_to(service["Spec"], targets):
                return attempt > 0
            if attempt == 2:
                break
            try:
                self._update_service(service, with_network(service["Spec"], detachment, network_id))
                return True
            except StepFailed as exc:
                failure = exc
                if exc.answered:
                    break
        raise failure

    def _undo(self, done, failure):
        """Undo a failed recreate; returns the error message: what failed, what was undone, what is left."""
        head = "network %s: the recreate failed: %s." % (self.name, str(failure).rstrip("."))
        if not failure.answered or not done.old_removed:
            # A call that got no answer may have been applied: whether the old network is gone is read live.
            try:
                done.old_removed = not self._exists(done.live["Id"])
            except StepFailed:
                pass  # the engine does not answer: what this run saw stands, and the steps below say the rest
        if not done.detached and not done.old_removed:
            return "%s Nothing had changed. Fix: %s, then run again." % (head, failure.fix)
        target, network_note = done.live["Id"], ""
        if done.old_removed:
            restore = clone_body(done.live)
            try:
                stray = self._by_name(self.name, [done.live["Id"]]) if done.create_attempted else None
                if stray is not None:  # made by the failed create (its call got no answer, or it was never allocated)
                    self._engine(
                        "removing network %s (%s)" % (self.name, stray["Id"]),
                        self.client.api.remove_network,
                        stray["Id"],
                    )
                    network_note = "the network the failed create made (ID %s) was removed; " % stray["Id"]
                    self._wait_until_released(stray)
                try:  # this manager refuses the name while it still holds its copy of the old network
                    self._wait_until_released(done.live)
                except StepFailed:
                    pass  # the create below then says so
                target = self._create_allocated(restore, not_ids=[done.live["Id"]])["Id"]
            except StepFailed as exc:
                touched = " Services touched (their tasks restarted): %s." % (", ".join(done.touched()) or "none")
                return (
                    "%s Undo failed: network %s is gone and could not be created again (%s); detached from it: %s.%s"
                    " Fix: %s; %s; %s; then run again."
                    % (
                        head,
                        self.name,
                        str(exc).rstrip("."),
                        ", ".join(attachment_text(d) for d in done.detached) or "no service",
                        touched,
                        exc.fix,
                        create_command(restore),
                        "; ".join(attach_command(self.name, d) for d in done.detached) or "nothing to attach",
                    )
                )
            network_note += "network %s was created again with its previous settings (new ID %s); " % (
                self.name,
                target,
            )
        not_attached = self._attach_again(done, target)
        touched = " Services touched (their tasks restarted): %s." % (", ".join(done.touched()) or "none")
        if not_attached:
            return "%s Undo incomplete: %s%s could not be attached to it again (%s).%s Fix: %s; %s; then run again." % (
                head,
                network_note,
                ", ".join(d[0].service for d in not_attached),
                "; ".join(d[1] for d in not_attached),
                touched,
                "; ".join(attach_command(self.name, d[0]) for d in not_attached),
                failure.fix,
            )
        kept = [d.service for d in done.detached if d.service_id in done.not_touched]
        return (
            "%s Undone: %severy detached service is attached to it again as before: %s.%s%s Fix: %s, then run again."
            % (
                head,
                network_note,
                ", ".join(attachment_text(d) for d in done.detached if d.service_id not in done.not_touched) or "none",
                " %s never left it (the update that detaches it got no answer, and the engine had not applied it)."
                % ", ".join(kept)
                if kept
                else "",
                touched,
                failure.fix,
            )
        )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            driver=dict(type="str", default="overlay"),
            subnet=dict(type="str"),
            gateway=dict(type="str"),
            ip_range=dict(type="str"),
            attachable=dict(type="bool"),
            internal=dict(type="bool"),
            encrypted=dict(type="bool"),
            mtu=dict(type="int"),
            labels=dict(type="dict"),
            recreate=dict(type="bool", default=False),
            **ENGINE_ARGUMENT_SPEC,
        ),
        supports_check_mode=True,
        required_by=dict(gateway=("subnet",), ip_range=("subnet",)),
    )
    module.exit_json(**NetworkManager(module).run())


if __name__ == "__main__":
    main()

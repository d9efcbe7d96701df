"""plugins/modules/swarm_network.py: the pure logic (the module's view of a live network, the changes a task asks
for, the create bodies, what the engine would refuse, which services use a network and their specs without it),
and runs of the module against an in-memory engine that injects the failures of a recreate."""

from __future__ import annotations

import copy
import json

import pytest
from docker.errors import APIError, NotFound
from requests.exceptions import ReadTimeout

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import EngineClient
from ansible_collections.swarmplane.cluster.plugins.modules.swarm_network import (
    ALLOCATION_WAIT,
    Detachment,
    NetworkManager,
    attach_command,
    clone_body,
    create_body,
    create_command,
    creation_problems,
    network_changes,
    network_view,
    recreate_body,
    service_network_targets,
    services_using,
    with_network,
    without_network,
)

NET_ID = "k2c9f1x0w8v7u6t5s4r3q2p1o"


def live_network():
    """A network as GET /networks/{id} returns it on a manager."""
    return dict(
        Name="backend",
        Id=NET_ID,
        Created="2026-11-25T21:30:01.5Z",
        Scope="swarm",
        Driver="overlay",
        EnableIPv6=False,
        IPAM=dict(
            Driver="default",
            Options=None,
            Config=[
                dict(Subnet="10.30.0.0/24", Gateway="10.30.0.1", IPRange="10.30.0.128/25"),
                dict(Subnet="fd00:30::/64", Gateway="fd00:30::1"),
            ],
        ),
        Internal=False,
        Attachable=True,
        Ingress=False,
        Options={
            "com.docker.network.driver.overlay.vxlanid_list": "4097",
            "com.docker.network.driver.mtu": "1400",
            "encrypted": "",
        },
        Labels={"tier": "back"},
    )


def params(**given):
    """Module params as AnsibleModule hands them over: unset options None, the defaults filled in."""
    values = dict(
        name="backend",
        state="present",
        driver="overlay",
        subnet=None,
        gateway=None,
        ip_range=None,
        attachable=None,
        internal=None,
        encrypted=None,
        mtu=None,
        labels=None,
        recreate=False,
        docker_host="unix:///var/run/docker.sock",
        timeout=60,
    )
    values.update(given)
    return values


def service(name, task_networks=None, spec_networks=None, service_id=None):
    spec = dict(Name=name, TaskTemplate=dict(ContainerSpec=dict(Image="%s:v1" % name)))
    if task_networks is not None:
        spec["TaskTemplate"]["Networks"] = [dict(Target=t) for t in task_networks]
    if spec_networks is not None:
        spec["Networks"] = [dict(Target=t) for t in spec_networks]
    return dict(ID=service_id or "id-" + name, Version=dict(Index=7), Spec=spec)


# ----------------------------------------------------------------- network_view


def test_network_view_of_a_live_network():
    assert network_view(live_network()) == dict(
        id=NET_ID,
        name="backend",
        driver="overlay",
        subnet="10.30.0.0/24",
        gateway="10.30.0.1",
        ip_range="10.30.0.128/25",
        attachable=True,
        internal=False,
        encrypted=True,
        mtu=1400,
        labels={"tier": "back"},
    )


def test_network_view_mtu_is_an_int():
    assert network_view(live_network())["mtu"] == 1400
    assert isinstance(network_view(live_network())["mtu"], int)


def test_network_view_encrypted_is_the_presence_of_the_option_key():
    live = live_network()
    del live["Options"]["encrypted"]
    assert network_view(live)["encrypted"] is False
    live["Options"]["encrypted"] = "true"
    assert network_view(live)["encrypted"] is True


def test_network_view_of_a_bare_network():
    live = dict(Name="plain", Id="abc", Driver="overlay", IPAM=dict(Driver="default", Config=[]), Options=None)
    assert network_view(live) == dict(
        id="abc",
        name="plain",
        driver="overlay",
        subnet=None,
        gateway=None,
        ip_range=None,
        attachable=False,
        internal=False,
        encrypted=False,
        mtu=None,
        labels={},
    )


@pytest.mark.parametrize("ipam", [None, {}, dict(Config=None), dict(Config=[None])])
def test_network_view_without_ipam_config_has_no_subnet(ipam):
    live = live_network()
    live["IPAM"] = ipam
    view = network_view(live)
    assert (view["subnet"], view["gateway"], view["ip_range"]) == (None, None, None)
    assert view["mtu"] == 1400


def test_network_view_with_an_empty_mtu_option_has_no_mtu():
    live = live_network()
    live["Options"]["com.docker.network.driver.mtu"] = ""
    assert network_view(live)["mtu"] is None


# ----------------------------------------------------------------- network_changes


def test_network_changes_compares_only_the_options_that_are_set():
    view = network_view(live_network())
    assert network_changes(view, params()) == {}


def test_network_changes_with_the_live_values_is_empty():
    view = network_view(live_network())
    wanted = params(
        subnet="10.30.0.0/24",
        gateway="10.30.0.1",
        ip_range="10.30.0.128/25",
        attachable=True,
        internal=False,
        encrypted=True,
        mtu=1400,
        labels=dict(tier="back"),
    )
    assert network_changes(view, wanted) == {}


def test_network_changes_reports_each_differing_property():
    view = network_view(live_network())
    wanted = params(subnet="10.40.0.0/24", encrypted=False, mtu=1450, attachable=True, internal=True)
    assert network_changes(view, wanted) == dict(
        subnet=dict(before="10.30.0.0/24", after="10.40.0.0/24"),
        encrypted=dict(before=True, after=False),
        mtu=dict(before=1400, after=1450),
        internal=dict(before=False, after=True),
    )


def test_network_changes_driver():
    view = network_view(live_network())
    assert network_changes(view, params(driver="macvlan")) == dict(driver=dict(before="overlay", after="macvlan"))


def test_network_changes_labels_compare_as_strings():
    view = network_view(live_network())
    view["labels"] = {"tier": "back", "replicas": "3"}
    assert network_changes(view, params(labels=dict(tier="back", replicas=3))) == {}
    assert network_changes(view, params(labels=dict(tier="front"))) == dict(
        labels=dict(before={"tier": "back", "replicas": "3"}, after={"tier": "front"})
    )


def test_network_changes_mtu_set_on_a_network_without_one():
    view = network_view(dict(Name="plain", Id="abc", Driver="overlay"))
    assert network_changes(view, params(mtu=1400)) == dict(mtu=dict(before=None, after=1400))


# ----------------------------------------------------------------- create_body


def test_create_body_of_a_minimal_network():
    assert create_body(params()) == dict(
        Name="backend",
        CheckDuplicate=True,
        Driver="overlay",
        Scope="swarm",
        Attachable=False,
        Internal=False,
        Options={},
        Labels={},
    )


def test_create_body_with_every_option():
    body = create_body(
        params(
            subnet="10.30.0.0/24",
            gateway="10.30.0.1",
            ip_range="10.30.0.128/25",
            attachable=True,
            internal=True,
            encrypted=True,
            mtu=1400,
            labels=dict(tier="back", level=2),
        )
    )
    assert body == dict(
        Name="backend",
        CheckDuplicate=True,
        Driver="overlay",
        Scope="swarm",
        Attachable=True,
        Internal=True,
        Options={"encrypted": "", "com.docker.network.driver.mtu": "1400"},
        Labels={"tier": "back", "level": "2"},
        IPAM=dict(
            Driver="default", Config=[dict(Subnet="10.30.0.0/24", Gateway="10.30.0.1", IPRange="10.30.0.128/25")]
        ),
    )


def test_create_body_mtu_option_is_a_string():
    assert create_body(params(mtu=1450))["Options"] == {"com.docker.network.driver.mtu": "1450"}


def test_create_body_not_encrypted_has_no_encrypted_option():
    assert create_body(params(encrypted=False))["Options"] == {}


def test_create_body_has_ipam_only_with_a_subnet():
    assert "IPAM" not in create_body(params(gateway="10.30.0.1", ip_range="10.30.0.128/25"))
    assert create_body(params(subnet="10.30.0.0/24"))["IPAM"] == dict(
        Driver="default", Config=[dict(Subnet="10.30.0.0/24")]
    )


def test_create_body_from_a_network_view_recreates_it():
    view = network_view(live_network())
    body = create_body(dict(view, name="backend"))
    assert body["Options"] == {"encrypted": "", "com.docker.network.driver.mtu": "1400"}
    assert body["IPAM"] == dict(
        Driver="default", Config=[dict(Subnet="10.30.0.0/24", Gateway="10.30.0.1", IPRange="10.30.0.128/25")]
    )
    assert (body["Attachable"], body["Internal"], body["Labels"]) == (True, False, {"tier": "back"})


# ----------------------------------------------------------------- services using the network


def test_service_network_targets_reads_both_places():
    svc = service("web", task_networks=["net-a", "net-b"], spec_networks=["net-c"])
    assert service_network_targets(svc) == ["net-a", "net-b", "net-c"]


def test_service_network_targets_of_a_service_without_networks():
    assert service_network_targets(service("web")) == []
    assert service_network_targets(dict(ID="x", Spec=None)) == []


def test_services_using_matches_by_id_or_name():
    services = [
        service("web", task_networks=[NET_ID]),
        service("api", task_networks=["frontend", "backend"]),
        service("worker", task_networks=["frontend"]),
        service("cron"),
        service("legacy", spec_networks=[NET_ID]),
    ]
    assert services_using(services, NET_ID, "backend") == ["api", "legacy", "web"]


def test_services_using_a_network_no_service_uses():
    services = [service("web", task_networks=["other-id"]), service("cron")]
    assert services_using(services, NET_ID, "backend") == []
    assert services_using([], NET_ID, "backend") == []


def aliased(name, network_id, aliases, before=(), after=()):
    """A service attached to the network with aliases, between other attachments."""
    svc = service(name, task_networks=[*before, network_id, *after])
    svc["Spec"]["TaskTemplate"]["Networks"][len(before)]["Aliases"] = list(aliases)
    return svc


def test_without_network_removes_only_that_attachment_and_says_where_it_was():
    spec = dict(
        Name="web",
        TaskTemplate=dict(
            ContainerSpec=dict(Image="web:v1"),
            Networks=[
                dict(Target="frontend-id"),
                dict(Target=NET_ID, Aliases=["web", "www"]),
                dict(Target="monitoring-id", Aliases=["metrics"]),
            ],
        ),
    )
    original = copy.deepcopy(spec)
    new_spec, found = without_network(spec, NET_ID, "backend")
    assert found == (dict(Target=NET_ID, Aliases=["web", "www"]), "TaskTemplate", 1)
    assert new_spec == dict(
        Name="web",
        TaskTemplate=dict(
            ContainerSpec=dict(Image="web:v1"),
            Networks=[dict(Target="frontend-id"), dict(Target="monitoring-id", Aliases=["metrics"])],
        ),
    )
    assert spec == original


def test_without_network_matches_the_attachment_by_name():
    spec = dict(Name="web", TaskTemplate=dict(Networks=[dict(Target="backend"), dict(Target="frontend")]))
    new_spec, found = without_network(spec, NET_ID, "backend")
    assert found == (dict(Target="backend"), "TaskTemplate", 0)
    assert new_spec["TaskTemplate"]["Networks"] == [dict(Target="frontend")]


def test_without_network_on_a_spec_not_attached_finds_nothing():
    spec = dict(Name="web", TaskTemplate=dict(Networks=[dict(Target="frontend-id")]))
    new_spec, found = without_network(spec, NET_ID, "backend")
    assert found is None
    assert new_spec == spec
    new_spec, found = without_network(dict(Name="cron"), NET_ID, "backend")
    assert found is None
    assert new_spec == dict(Name="cron", TaskTemplate=dict(Networks=[]))


def test_without_network_removes_an_attachment_in_the_deprecated_spec_networks():
    svc = service("legacy", spec_networks=["frontend-id", NET_ID])
    assert services_using([svc], NET_ID, "backend") == ["legacy"]
    new_spec, found = without_network(svc["Spec"], NET_ID, "backend")
    assert found == (dict(Target=NET_ID), "Spec", 1)
    assert NET_ID not in service_network_targets(dict(Spec=new_spec))


def test_with_network_puts_the_attachment_back_in_its_place_with_the_new_target():
    svc = aliased("web", NET_ID, ["web", "www"], before=["frontend-id"], after=["monitoring-id"])
    detached_spec, found = without_network(svc["Spec"], NET_ID, "backend")
    back = with_network(detached_spec, Detachment(svc["ID"], "web", *found), "new-id")
    expected = copy.deepcopy(svc["Spec"])
    expected["TaskTemplate"]["Networks"][1]["Target"] = "new-id"
    assert back == expected
    legacy = service("legacy", spec_networks=["frontend-id", NET_ID])
    detached_spec, found = without_network(legacy["Spec"], NET_ID, "backend")
    assert (
        with_network(detached_spec, Detachment("x", "legacy", *found), NET_ID)["Networks"] == legacy["Spec"]["Networks"]
    )


def test_attach_command_gives_the_aliases_and_driver_options_back():
    detachment = Detachment("x", "web", dict(Target=NET_ID, Aliases=["web", "www"], DriverOpts={"a": "1"}), "", 0)
    assert attach_command("backend", detachment) == (
        "docker service update --network-add name=backend,alias=web,alias=www,driver-opt=a=1 web"
    )
    assert attach_command("backend", Detachment("x", "api", dict(Target=NET_ID), "", 0)) == (
        "docker service update --network-add name=backend api"
    )


# ----------------------------------------------------------------- bodies of a recreate and its undo


def test_clone_body_keeps_every_setting_but_the_allocated_vni():
    body = clone_body(live_network())
    assert body == dict(
        Name="backend",
        CheckDuplicate=True,
        Driver="overlay",
        Scope="swarm",
        Attachable=True,
        Internal=False,
        EnableIPv6=False,
        Options={"com.docker.network.driver.mtu": "1400", "encrypted": ""},
        Labels={"tier": "back"},
        IPAM=dict(
            Driver="default",
            Config=[
                dict(Subnet="10.30.0.0/24", Gateway="10.30.0.1", IPRange="10.30.0.128/25"),
                dict(Subnet="fd00:30::/64", Gateway="fd00:30::1"),
            ],
        ),
    )


def test_recreate_body_changes_only_what_the_task_sets():
    body = recreate_body(live_network(), params(attachable=False, mtu=1450, encrypted=False, labels=dict(a=1)))
    assert (body["Attachable"], body["Labels"]) == (False, {"a": "1"})
    assert body["Options"] == {"com.docker.network.driver.mtu": "1450"}
    assert body["IPAM"] == clone_body(live_network())["IPAM"]


def test_recreate_body_with_a_new_subnet_drops_the_old_gateway_and_range():
    body = recreate_body(live_network(), params(subnet="10.40.0.0/24"))
    assert body["IPAM"]["Config"] == [dict(Subnet="10.40.0.0/24"), dict(Subnet="fd00:30::/64", Gateway="fd00:30::1")]
    body = recreate_body(live_network(), params(subnet="10.40.0.0/24", gateway="10.40.0.254"))
    assert body["IPAM"]["Config"][0] == dict(Subnet="10.40.0.0/24", Gateway="10.40.0.254")
    bare = dict(Name="plain", Id="abc", Driver="overlay")
    assert recreate_body(bare, params(subnet="10.50.0.0/24"))["IPAM"] == dict(
        Driver="default", Config=[dict(Subnet="10.50.0.0/24")]
    )


def test_create_command_recreates_the_network_by_hand():
    assert create_command(clone_body(live_network())) == (
        "docker network create -d overlay --scope swarm --attachable --subnet 10.30.0.0/24 --gateway 10.30.0.1 "
        "--ip-range 10.30.0.128/25 --subnet fd00:30::/64 --gateway fd00:30::1 --opt com.docker.network.driver.mtu=1400 "
        "--opt encrypted --label tier=back backend"
    )


# ----------------------------------------------------------------- what the engine would refuse

DRIVERS = ["bridge", "host", "ipvlan", "macvlan", "null", "overlay"]


def listed(name, subnet, scope="swarm", network_id=None):
    return dict(Name=name, Id=network_id or "id-" + name, Scope=scope, IPAM=dict(Config=[dict(Subnet=subnet)]))


def test_creation_problems_of_a_good_network_are_none():
    body = create_body(params(subnet="10.30.0.0/24", gateway="10.30.0.1", ip_range="10.30.0.128/25"))
    others = [listed("ingress", "10.0.0.0/24"), listed("bridge", "10.30.0.0/16", scope="local")]
    assert creation_problems(body, others, DRIVERS) == []
    assert creation_problems(create_body(params()), others, DRIVERS) == []


def test_a_subnet_overlapping_another_swarm_network_is_a_problem_but_not_the_replaced_one():
    body = create_body(params(subnet="10.0.0.0/23"))
    others = [listed("ingress", "10.0.0.0/24"), listed("backend", "10.0.1.0/24", network_id=NET_ID)]
    problems = creation_problems(body, others, DRIVERS)
    assert [p for p, _ in problems] == [
        "subnet 10.0.0.0/23 overlaps subnet 10.0.0.0/24 of network ingress",
        "subnet 10.0.0.0/23 overlaps subnet 10.0.1.0/24 of network backend",
    ]
    assert "choose a subnet that no other swarm network uses" in problems[0][1]
    assert len(creation_problems(body, others, DRIVERS, ignore_ids=[NET_ID])) == 1


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (dict(subnet="10.30.0.0/33"), "subnet 10.30.0.0/33 is not a network in CIDR form"),
        (dict(subnet="10.30.0.0/24", gateway="10.31.0.1"), "gateway 10.31.0.1 is not in subnet 10.30.0.0/24"),
        (dict(subnet="10.30.0.0/24", gateway="nope"), "gateway nope is not in subnet 10.30.0.0/24"),
        (dict(subnet="10.30.0.0/24", ip_range="10.31.0.0/25"), "ip_range 10.31.0.0/25 is not within subnet"),
        (dict(subnet="10.30.0.0/24", ip_range="fd00::/64"), "ip_range fd00::/64 is not within subnet"),
        (dict(driver="nosuch"), "driver nosuch is not on this engine (it has bridge, host, ipvlan, macvlan"),
        (dict(mtu=-1), "mtu -1 is outside 68-65535, so every task on the network would fail to start"),
        (dict(mtu=67), "mtu 67 is outside 68-65535"),
        (dict(mtu=65536), "mtu 65536 is outside 68-65535"),
    ],
)
def test_what_the_engine_refuses_is_a_problem(given, problem):
    problems = creation_problems(create_body(params(**given)), [], DRIVERS)
    assert len(problems) == 1 and problems[0][0].startswith(problem)


# ----------------------------------------------------------------- runs against an in-memory engine


class Failed(Exception):
    def __init__(self, msg, **result):
        super().__init__(msg)
        self.msg = msg
        self.result = result


class FakeModule:
    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode


class Response:
    def __init__(self, payload):
        self.payload = payload

    def json(self):
        return self.payload


READ_TIMEOUT = ReadTimeout("UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. (read timeout=60)")


class FakeEngine:
    """The parts of the engine API swarm_network uses, as a swarm manager of engine 20.10 behaves:

    - a network whose subnet overlaps another swarm network's is created but never allocated;
    - a network is not removed while a service spec or a task uses it: detached tasks leave it after
      `lingering` refusals, a standalone container never;
    - a removed network stays in this manager's listing for `held` more listings (its local copy), and its name
      cannot be taken again until then;
    - every write is recorded in `writes`; `on_removed` runs after the network is removed (to inject a failure);
    - a detached task of web stops slowly: it is listed as running on backend for `stopping` more task listings,
      and as on the real swarm, backend can be removed meanwhile, but this manager then keeps its copy for good;
      with `node_down`, that task's node is down;
    - `no_answer[(call, name)]` makes the calls ("update", "rm", "create", "inspect") on a service or network of
      that name get no answer, in turn: None answers, "lost" times out before the engine applies the call,
      "applied" times out after it (as a ReadTimeout from requests, what the SDK raises).
    """

    timeout = 60  # the SDK client's call timeout, which EngineClient reads

    def __init__(self):
        self.no_answer = {}
        self.nets = {}
        self.service_list = []
        self.writes = []
        self.lingering = 0
        self.standalone = None  # (network id, container id, node) of a container attached by docker run
        self.failing_updates = set()  # service names whose updates the engine refuses
        self.on_removed = None
        self.created = 0
        self.held = 0
        self.local_copies = []
        self.stopping = 0
        self.node_down = False

    # networks
    def add_network(self, name, subnet, **settings):
        body = create_body(params(name=name, subnet=subnet, **settings))
        return self._create(body)

    def _create(self, body):
        if body["Name"] in {n["Name"] for n in list(self.nets.values()) + self.local_copies}:
            raise APIError("409", explanation="network with name %s already exists" % body["Name"])
        self.created += 1
        network_id = "net-%d" % self.created
        configs = [dict(c) for c in (body.get("IPAM") or {}).get("Config") or []]
        if not configs:
            configs = [dict(Subnet="10.0.%d.0/24" % (100 + self.created), Gateway="10.0.%d.1" % (100 + self.created))]
        live = dict(body, Id=network_id, IPAM=dict(Driver="default", Config=configs))
        live.pop("CheckDuplicate")
        live["Options"] = dict(live.get("Options") or {}, **{"com.docker.network.driver.overlay.vxlanid_list": "4097"})
        if creation_problems(live, list(self.nets.values()), DRIVERS):
            live.update(Driver="", IPAM=dict(Driver="", Config=None), Options=None)
        self.nets[network_id] = live
        return network_id

    def networks(self, names=None):
        found = [copy.deepcopy(n) for n in list(self.nets.values()) + self.local_copies]
        if self.local_copies:
            self.held -= 1
            self.local_copies = self.local_copies if self.held > 0 else []
        return [n for n in found if names is None or n["Name"] in names]

    def _answer(self, call, name, apply):
        """Run apply() as the engine would, unless `no_answer` says this call gets no answer."""
        turns = self.no_answer.get((call, name)) or []
        mode = turns.pop(0) if turns else None
        if mode == "lost":
            raise READ_TIMEOUT
        result = apply()
        if mode == "applied":
            raise READ_TIMEOUT
        return result

    def inspect_network(self, network_id):
        if network_id not in self.nets:
            raise NotFound("404", explanation="network %s not found" % network_id)
        return self._answer("inspect", self.nets[network_id]["Name"], lambda: copy.deepcopy(self.nets[network_id]))

    def remove_network(self, network_id):
        if network_id not in self.nets:
            raise NotFound("404", explanation="network %s not found" % network_id)
        return self._answer("rm", self.nets[network_id]["Name"], lambda: self._remove_network(network_id))

    def _remove_network(self, network_id):
        users = [s["Spec"]["Name"] for s in self.service_list if network_id in service_network_targets(s)]
        if users:
            raise APIError("500", explanation="network %s is in use by service %s" % (network_id, users[0]))
        if self.standalone and self.standalone[0] == network_id:
            raise APIError("500", explanation="network %s is in use by task attach1" % network_id)
        if self.lingering:
            self.lingering -= 1
            raise APIError("500", explanation="network %s is in use by task servicetask1" % network_id)
        removed = self.nets.pop(network_id)
        self.writes.append(("rm", removed["Name"]))
        if self.stopping and not self.node_down:  # the slow task runs on this manager (node-1)
            self.held = 10**6
        if self.held:
            self.local_copies.append(removed)
        if self.on_removed:
            self.on_removed(self)

    def info(self):
        return dict(Plugins=dict(Network=DRIVERS), Swarm=dict(LocalNodeState="active", ControlAvailable=True))

    def tasks(self):
        if not self.stopping:
            return []
        self.stopping -= 1
        backend = next(i for i, n in self.nets.items() if n["Name"] == "backend")
        return [
            dict(ID="readytask1", ServiceID="id-web", NodeID="node-2", Status=dict(State="ready")),
            dict(
                ID="slowtask1",
                ServiceID="id-web",
                NodeID="node-1",
                DesiredState="shutdown",
                Status=dict(State="running"),
                NetworksAttachments=[dict(Network=dict(ID=backend))],
            ),
        ]

    def nodes(self):
        return [
            dict(ID="node-1", Status=dict(State="down" if self.node_down else "ready")),
            dict(ID="node-2", Status=dict(State="ready")),
        ]

    def inspect_task(self, task_id):
        if task_id == "attach1":
            return dict(ID=task_id, NodeID="node-2", Spec=dict(NetworkAttachmentSpec=dict(ContainerID="c0ffee" * 10)))
        return dict(ID=task_id, NodeID="node-1", Spec=dict(ContainerSpec=dict(Image="web")))

    def inspect_node(self, node_id):
        return dict(ID=node_id, Description=dict(Hostname={"node-1": "manager-1", "node-2": "worker-1"}[node_id]))

    # services
    def services(self):
        return copy.deepcopy(self.service_list)

    def inspect_service(self, service_id):
        return copy.deepcopy(next(s for s in self.service_list if s["ID"] == service_id))

    def service(self, name):
        return next(s for s in self.service_list if s["Spec"]["Name"] == name)

    # raw requests
    def _url(self, path):
        return path

    def _raise_for_status(self, response):
        pass

    def _post_json(self, url, data=None, params=None):
        if url == "/networks/create":

            def create():
                self.writes.append(("create", data["Name"]))
                return Response(dict(Id=self._create(copy.deepcopy(data))))

            return self._answer("create", data["Name"], create)
        return self._answer("update", data["Name"], lambda: self._update(url, data, params))

    def _update(self, url, data, params):
        service = next(s for s in self.service_list if url == "/services/%s/update" % s["ID"])
        assert params == dict(version=service["Version"]["Index"]), "stale version"
        if data["Name"] in self.failing_updates:
            raise APIError("500", explanation="update out of sequence")
        self.writes.append(("update", data["Name"]))
        service.update(PreviousSpec=service["Spec"], Spec=copy.deepcopy(data))
        service["Version"] = dict(Index=service["Version"]["Index"] + 1)
        return Response({})


class FakeClient:
    def __init__(self, api):
        self.api = api

    def fail(self, msg, **kwargs):
        raise Failed(msg, **kwargs)

    def info(self):
        return self.api.info()

    require_manager = EngineClient.require_manager
    attempt = EngineClient.attempt


class Clock:
    def __init__(self):
        self.now = 0.0

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def run(engine, check_mode=False, **given):
    module = FakeModule(params(**given), check_mode=check_mode)
    clock = Clock()
    return NetworkManager(module, client=FakeClient(engine), sleep=clock.sleep, clock=clock.time).run()


def attachments(engine):
    """{service: [(network name, aliases)]}: what the services are attached to, by network name."""
    names = {n["Id"]: n["Name"] for n in engine.nets.values()}
    return {
        s["Spec"]["Name"]: [
            (names.get(a["Target"], "gone:" + a["Target"]), a.get("Aliases"))
            for a in s["Spec"]["TaskTemplate"].get("Networks") or []
        ]
        for s in engine.service_list
    }


@pytest.fixture
def engine():
    """backend (10.30.0.0/24) used by web (aliases web, www, between two other networks) and api; other
    (10.50.0.0/24) used by nobody."""
    engine = FakeEngine()
    frontend = engine.add_network("frontend", "10.20.0.0/24")
    backend = engine.add_network("backend", "10.30.0.0/24", attachable=False)
    engine.add_network("other", "10.50.0.0/24")
    engine.service_list = [
        aliased("web", backend, ["web", "www"], before=[frontend]),
        aliased("api", backend, []),
        service("cron", task_networks=[frontend]),
    ]
    engine.writes.clear()
    return engine


BEFORE = {
    "web": [("frontend", None), ("backend", ["web", "www"])],
    "api": [("backend", [])],
    "cron": [("frontend", None)],
}


def test_a_recreate_detaches_removes_creates_and_attaches_again_with_the_aliases(engine):
    result = run(engine, attachable=True, recreate=True)
    assert result["changed"] is True and result["recreated"] is True
    assert result["touched"] == ["api", "web"] and result["services"] == ["api", "web"]
    assert result["network"]["attachable"] is True
    assert engine.writes == [
        ("update", "web"),
        ("update", "api"),
        ("rm", "backend"),
        ("create", "backend"),
        ("update", "web"),
        ("update", "api"),
    ]
    assert attachments(engine) == BEFORE
    assert run(engine, attachable=True, recreate=True)["changed"] is False


def test_a_recreate_waits_for_the_detached_tasks_to_leave(engine):
    engine.lingering = 5
    result = run(engine, attachable=True, recreate=True)
    assert result["recreated"] is True and engine.lingering == 0
    assert attachments(engine) == BEFORE


def test_a_recreate_removes_the_old_network_only_once_the_detached_tasks_have_stopped(engine):
    engine.stopping = 5
    result = run(engine, attachable=True, recreate=True)
    assert result["recreated"] is True and engine.stopping == 0
    assert attachments(engine) == BEFORE


def test_a_task_that_does_not_stop_in_time_fails_the_recreate_before_the_removal_and_it_is_undone(engine):
    backend = next(i for i, n in engine.nets.items() if n["Name"] == "backend")
    engine.stopping = 10**6
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True, timeout=30)
    assert failed.value.msg == (
        "network backend: the recreate failed: the old network was still in use 30 s after its services were "
        "detached: 1 task still holds it, e.g. task slowtask1 of service web on manager-1 (running). Undone: every "
        "detached service is attached to it again as before: web (aliases web, www), api (no aliases). Services "
        "touched (their tasks restarted): web, api. Fix: wait until it has stopped (docker service ps web; a task "
        "that ignores SIGTERM stops after its stop grace period), or raise timeout, then run again."
    )
    assert ("rm", "backend") not in engine.writes and engine.nets[backend]["Name"] == "backend"
    assert attachments(engine) == BEFORE


def test_a_task_on_a_node_that_is_down_does_not_hold_the_recreate(engine):
    engine.stopping, engine.node_down = 10**6, True
    result = run(engine, attachable=True, recreate=True, timeout=30)
    assert result["recreated"] is True and attachments(engine) == BEFORE


def test_the_undo_waits_until_this_manager_lets_go_of_the_old_network_before_making_it_again(engine):
    engine.held = 15  # longer than the recreate waits (timeout 5), shorter than the undo's wait
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True, timeout=5)
    assert failed.value.msg.startswith(
        "network backend: the recreate failed: the old network was removed from the swarm, but this manager's engine "
        "still held it 5 s later. Undone: network backend was created again with its previous settings (new ID "
    )
    assert attachments(engine) == BEFORE and engine.local_copies == []


def test_a_recreate_waits_until_this_manager_lets_go_of_the_old_network(engine):
    engine.held = 4
    result = run(engine, attachable=True, recreate=True)
    assert result["recreated"] is True and engine.local_copies == []
    assert attachments(engine) == BEFORE


def test_an_old_network_this_manager_never_lets_go_of_is_named_and_the_undo_says_what_is_left(engine):
    engine.held = 10**6
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True, timeout=5)
    assert failed.value.msg.startswith(
        "network backend: the recreate failed: the old network was removed from the swarm, but this manager's engine "
        "still held it 5 s later. Undo failed: network backend is gone and could not be created again (creating "
        "network backend failed: network with name backend already exists); detached from it: web (aliases web, "
        "www), api (no aliases)."
    )


def test_check_mode_names_the_services_a_recreate_would_touch_and_writes_nothing(engine):
    result = run(engine, check_mode=True, attachable=True, recreate=True)
    assert result["changed"] is True and result["touched"] == ["api", "web"]
    assert result["diff"]["after"]["attachable"] is True
    assert engine.writes == []


def test_a_new_subnet_overlapping_another_network_is_refused_before_any_service_is_touched(engine):
    for check_mode in (True, False):
        with pytest.raises(Failed) as failed:
            run(engine, check_mode=check_mode, subnet="10.50.0.0/25", recreate=True)
        assert failed.value.msg == (
            "network backend: the new network would be refused, so nothing was changed and no service detached: "
            "subnet 10.50.0.0/25 overlaps subnet 10.50.0.0/24 of network other. Fix: choose a subnet that no other "
            "swarm network uses (docker network inspect NAME --format '{{json .IPAM.Config}}' shows each network's)."
        )
        assert failed.value.result["touched"] == [] and failed.value.result["services"] == ["api", "web"]
    assert engine.writes == []


def test_an_mtu_no_interface_can_have_is_refused_before_any_service_is_touched(engine):
    with pytest.raises(Failed) as failed:
        run(engine, mtu=10, recreate=True)
    assert failed.value.msg == (
        "network backend: the new network would be refused, so nothing was changed and no service detached: mtu 10 "
        "is outside 68-65535, so every task on the network would fail to start. Fix: give an mtu of at most the "
        "underlay MTU minus 50 (1450 on a 1500 underlay)."
    )
    assert failed.value.result["touched"] == [] and engine.writes == []
    assert creation_problems(create_body(params(mtu=68)), [], DRIVERS) == []
    assert creation_problems(create_body(params(mtu=65535)), [], DRIVERS) == []


def test_a_new_subnet_may_overlap_the_network_it_replaces(engine):
    result = run(engine, subnet="10.30.0.0/23", recreate=True)
    assert result["network"]["subnet"] == "10.30.0.0/23" and result["network"]["gateway"] is None
    assert attachments(engine) == BEFORE


def test_a_standalone_container_on_the_network_fails_at_once_and_the_services_are_attached_again(engine):
    backend = next(n["Id"] for n in engine.nets.values() if n["Name"] == "backend")
    engine.standalone = (backend, "c0ffee", "worker-1")
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True)
    assert failed.value.msg == (
        "network backend: the recreate failed: the old network could not be removed: a standalone container "
        "(c0ffeec0ffee, on worker-1) is attached to it. Undone: every detached service is attached to it again as "
        "before: web (aliases web, www), api (no aliases). Services touched (their tasks restarted): web, api. "
        "Fix: disconnect it (docker network disconnect backend c0ffeec0ffee, on worker-1) or remove it, then run again."
    )
    assert failed.value.result["touched"] == ["web", "api"] and failed.value.result["changed"] is True
    assert attachments(engine) == BEFORE
    assert engine.nets[backend]["Attachable"] is False  # the very same network


def test_tasks_that_never_leave_time_out_and_the_services_are_attached_again(engine):
    engine.lingering = 10**6
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True, timeout=30)
    assert failed.value.msg.startswith(
        "network backend: the recreate failed: the old network was still in use 30 s after its services were "
        "detached (the engine: network net-2 is in use by task servicetask1). Undone: every detached service"
    )
    assert failed.value.msg.endswith(
        "Fix: find what still uses it (docker inspect on the task the engine names), or raise timeout, then run again."
    )
    assert attachments(engine) == BEFORE


def blocker(subnet):
    """An on_removed hook: another network takes the subnet while the old one is being removed."""

    def take(engine):
        engine.on_removed = None
        engine.add_network("intruder", subnet)

    return take


def test_a_create_that_fails_after_the_removal_brings_the_old_network_back(engine):
    engine.on_removed = blocker("10.60.0.0/24")
    with pytest.raises(Failed) as failed:
        run(engine, subnet="10.60.0.0/24", recreate=True)
    message = failed.value.msg
    assert message.startswith(
        "network backend: the recreate failed: the engine accepted network backend but did not allocate it within "
        "%d s: subnet 10.60.0.0/24 overlaps subnet 10.60.0.0/24 of network intruder. Undone: network backend was "
        "created again with its previous settings (new ID net-6); every detached service is attached to it again as "
        "before: web (aliases web, www), api (no aliases). Services touched (their tasks restarted): web, api. Fix: "
        "choose a subnet" % ALLOCATION_WAIT
    )
    assert attachments(engine) == BEFORE
    backend = next(n for n in engine.nets.values() if n["Name"] == "backend")
    assert network_view(backend)["subnet"] == "10.30.0.0/24" and backend["Attachable"] is False
    assert [w for w in engine.writes if w[0] != "update"] == [
        ("rm", "backend"),
        ("create", "backend"),
        ("rm", "backend"),  # the unallocated one
        ("create", "backend"),
    ]


def test_when_the_old_network_cannot_come_back_the_message_says_what_is_left_and_how_to_restore_it(engine):
    def take_both(engine):
        engine.on_removed = None
        engine.add_network("intruder", "10.30.0.0/16")

    engine.on_removed = take_both
    with pytest.raises(Failed) as failed:
        run(engine, subnet="10.30.1.0/24", recreate=True)
    message = failed.value.msg
    assert "Undo failed: network backend is gone and could not be created again (the engine accepted" in message
    assert "detached from it: web (aliases web, www), api (no aliases)" in message
    assert "docker network create -d overlay --scope swarm --subnet 10.30.0.0/24 backend; " in message
    assert "docker service update --network-add name=backend,alias=web,alias=www web; " in message
    assert "docker service update --network-add name=backend api; then run again." in message
    assert attachments(engine)["web"] == [("frontend", None)]


def test_a_failed_detach_attaches_the_services_already_detached_again(engine):
    engine.failing_updates = {"api"}
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True)
    assert failed.value.msg.startswith(
        "network backend: the recreate failed: updating service api failed: update out of sequence. Undone: every "
        "detached service is attached to it again as before: web (aliases web, www). Services touched"
    )
    assert failed.value.result["touched"] == ["web"]
    assert attachments(engine) == BEFORE


def test_a_service_that_cannot_be_attached_again_is_named_with_the_command_that_does_it(engine):
    def refuse_api(engine):
        engine.on_removed = None
        engine.failing_updates = {"api"}

    engine.on_removed = refuse_api
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True)
    assert failed.value.msg == (
        "network backend: it was recreated (new ID net-4), but api could not be attached to it again: updating "
        "service api failed: update out of sequence. Fix: docker service update --network-add name=backend api"
    )
    assert attachments(engine)["web"] == BEFORE["web"]


def test_a_new_network_that_would_overlap_is_refused_and_one_left_unallocated_is_removed(engine):
    with pytest.raises(Failed, match=r"^network fresh: the network would be refused, so nothing was created: subnet"):
        run(engine, name="fresh", subnet="10.20.0.128/25")
    assert engine.writes == []
    engine.on_removed = None
    original = engine.networks

    def listing_without_frontend(names=None):  # a race: the check does not see the overlapping network
        return [n for n in original(names) if n["Name"] != "frontend"]

    engine.networks = listing_without_frontend
    with pytest.raises(Failed) as failed:
        run(engine, name="fresh", subnet="10.20.0.128/25")
    assert failed.value.msg.startswith(
        "network fresh: the engine accepted network fresh but did not allocate it within %d s: the manager's log "
        "says why" % ALLOCATION_WAIT
    )
    assert engine.writes == [("create", "fresh"), ("rm", "fresh")]


def test_absent_refuses_a_network_in_use_and_removes_an_unused_one(engine):
    with pytest.raises(Failed, match="^network backend: services use it: api, web. Fix: remove them"):
        run(engine, state="absent")
    assert run(engine, name="other", state="absent", check_mode=True)["changed"] is True
    assert run(engine, name="other", state="absent")["changed"] is True
    assert engine.writes == [("rm", "other")]
    assert json.dumps(run(engine, name="other", state="absent")) == json.dumps(
        dict(changed=False, changes={}, recreated=False, services=[], touched=[], diff=dict(before={}, after={}))
    )


# ----------------------------------------------------------------- engine calls that get no answer (timeouts)

NO_ANSWER = (
    "no answer within 60 s (UnixHTTPConnectionPool(host='localhost', port=None): Read timed out. (read timeout=60))"
)


def test_a_detach_that_gets_no_answer_and_was_not_applied_is_undone_and_says_that_service_never_left(engine):
    engine.no_answer[("update", "api")] = ["lost"]
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True)
    assert failed.value.msg == (
        "network backend: the recreate failed: updating service api failed: %s. Undone: every detached service is "
        "attached to it again as before: web (aliases web, www). api never left it (the update that detaches it got "
        "no answer, and the engine had not applied it). Services touched (their tasks restarted): web. Fix: see why "
        "the engine did not answer (docker info, the engine's log on this manager), or raise timeout, then run again."
        % NO_ANSWER
    )
    assert failed.value.result["touched"] == ["web"] and failed.value.result["changed"] is True
    assert attachments(engine) == BEFORE
    assert ("rm", "backend") not in engine.writes


def test_a_detach_that_gets_no_answer_but_was_applied_is_attached_again(engine):
    engine.no_answer[("update", "api")] = ["applied"]
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True)
    assert failed.value.msg.startswith(
        "network backend: the recreate failed: updating service api failed: %s. Undone: every detached service is "
        "attached to it again as before: web (aliases web, www), api (no aliases). Services touched (their tasks "
        "restarted): web, api. Fix: see why the engine did not answer" % NO_ANSWER
    )
    assert failed.value.result["touched"] == ["web", "api"]
    assert attachments(engine) == BEFORE


def test_a_removal_that_gets_no_answer_but_was_applied_goes_on_with_the_recreate(engine):
    engine.no_answer[("rm", "backend")] = ["applied"]
    result = run(engine, attachable=True, recreate=True)
    assert result["recreated"] is True and result["network"]["attachable"] is True
    assert attachments(engine) == BEFORE
    assert [w for w in engine.writes if w[0] != "update"] == [("rm", "backend"), ("create", "backend")]


def test_a_removal_that_never_gets_an_answer_is_undone_and_named_as_such(engine):
    backend = next(i for i, n in engine.nets.items() if n["Name"] == "backend")
    engine.no_answer[("rm", "backend")] = ["lost"] * 100
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True, timeout=30)
    assert failed.value.msg == (
        "network backend: the recreate failed: removing the old network got no answer from the engine for 30 s after "
        "its services were detached, and it is still there (the engine: %s). Undone: every detached service is "
        "attached to it again as before: web (aliases web, www), api (no aliases). Services touched (their tasks "
        "restarted): web, api. Fix: see why the engine did not answer (docker info, the engine's log on this "
        "manager), or raise timeout, then run again." % NO_ANSWER
    )
    assert attachments(engine) == BEFORE and engine.nets[backend]["Attachable"] is False


def test_a_create_that_gets_no_answer_and_was_not_applied_brings_the_old_network_back(engine):
    engine.no_answer[("create", "backend")] = ["lost"]
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True)
    assert failed.value.msg.startswith(
        "network backend: the recreate failed: creating network backend failed: %s. Undone: network backend was "
        "created again with its previous settings (new ID net-4); every detached service is attached to it again as "
        "before: web (aliases web, www), api (no aliases). Services touched (their tasks restarted): web, api. Fix: "
        "see why the engine did not answer" % NO_ANSWER
    )
    assert failed.value.result["changed"] is True and failed.value.result["recreated"] is False
    assert attachments(engine) == BEFORE
    backend = next(n for n in engine.nets.values() if n["Name"] == "backend")
    assert network_view(backend)["subnet"] == "10.30.0.0/24" and backend["Attachable"] is False


def test_a_create_that_gets_no_answer_but_was_applied_is_the_new_network(engine):
    engine.no_answer[("create", "backend")] = ["applied"]
    result = run(engine, attachable=True, recreate=True)
    assert result["recreated"] is True and result["network"]["attachable"] is True
    assert attachments(engine) == BEFORE
    assert [w for w in engine.writes if w[0] != "update"] == [("rm", "backend"), ("create", "backend")]


def test_a_new_network_whose_reading_gets_no_answer_is_removed_and_the_old_one_comes_back(engine):
    engine.no_answer[("inspect", "backend")] = [None, "lost"]  # the run's first look, then the new network's
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True)
    assert failed.value.msg.startswith(
        "network backend: the recreate failed: reading network backend failed: %s. Undone: the network the failed "
        "create made (ID net-4) was removed; network backend was created again with its previous settings (new ID "
        "net-5); every detached service is attached to it again as before: web (aliases web, www), api (no "
        "aliases)." % NO_ANSWER
    )
    assert attachments(engine) == BEFORE
    assert [n["Name"] for n in engine.nets.values()].count("backend") == 1
    assert next(n for n in engine.nets.values() if n["Name"] == "backend")["Attachable"] is False


@pytest.mark.parametrize("mode", ["lost", "applied"])
def test_an_attach_that_gets_no_answer_is_read_again_and_the_service_ends_attached(engine, mode):
    engine.no_answer[("update", "web")] = [None, mode]  # its detach answers, its attach to the new network not
    result = run(engine, attachable=True, recreate=True)
    assert result["recreated"] is True and result["touched"] == ["api", "web"]
    assert attachments(engine) == BEFORE
    new = next(i for i, n in engine.nets.items() if n["Name"] == "backend")
    assert [a["Target"] for a in engine.service("web")["Spec"]["TaskTemplate"]["Networks"]].count(new) == 1


def test_an_attach_in_the_undo_that_gets_no_answer_is_read_again_and_the_service_ends_attached(engine):
    engine.lingering = 10**6  # the recreate fails; its undo attaches web and api again
    engine.no_answer[("update", "web")] = [None, "lost"]
    engine.no_answer[("update", "api")] = [None, "applied"]
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True, timeout=30)
    assert "Undone: every detached service is attached to it again as before: web (aliases web, www), api (no " in (
        failed.value.msg
    )
    assert attachments(engine) == BEFORE


def test_an_attach_that_never_gets_an_answer_is_named_with_the_command_that_does_it(engine):
    engine.no_answer[("update", "api")] = [None, "lost", "lost"]
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True)
    assert failed.value.msg == (
        "network backend: it was recreated (new ID net-4), but api could not be attached to it again: updating "
        "service api failed: %s. Fix: docker service update --network-add name=backend api" % NO_ANSWER
    )
    assert attachments(engine)["web"] == BEFORE["web"]


def test_a_connection_error_is_a_failed_step_too(engine):
    from requests.exceptions import ConnectionError as RequestsConnectionError

    def refused(*args, **kwargs):
        raise RequestsConnectionError("('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))")

    engine.tasks = refused
    with pytest.raises(Failed) as failed:
        run(engine, attachable=True, recreate=True)
    assert failed.value.msg.startswith(
        "network backend: the recreate failed: listing tasks failed: ('Connection aborted.', ConnectionResetError(104, "
        "'Connection reset by peer')). Undone: every detached service is attached to it again as before"
    )
    assert attachments(engine) == BEFORE

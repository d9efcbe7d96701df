"""The fabric and edge plans: stable fabric addresses, peers that follow the inventory, the edge's virtual services,
the declaration errors preflight stops on, and the verify report."""

from __future__ import annotations

import pytest

from ansible_collections.swarmplane.cluster.plugins.filter import dataplane


def probe(address, interface="ens3", fabric=None):
    interfaces = {interface: address}
    if fabric:
        interfaces["fabric0"] = fabric
    return dict(
        swarm_probe=dict(
            host=dict(
                interface_ipv4=interfaces,
                all_ipv4_addresses=list(interfaces.values()),
                interfaces=list(interfaces),
                default_ipv4=dict(interface=interface, address=address),
            )
        )
    )


def inventory(managers=("manager-1",), workers=("worker-1",), loadbalancers=(), everyone=None, **host_vars):
    """groups and hostvars: hosts at 192.168.231.11 upward; `everyone` vars on every host (group_vars/all)."""
    groups = dict(managers=list(managers), workers=list(workers), loadbalancers=list(loadbalancers))
    hostvars = {}
    for index, host in enumerate(list(managers) + list(workers) + list(loadbalancers)):
        hostvars[host] = dict(probe("192.168.231.%d" % (11 + index)), **(everyone or {}))
        hostvars[host].update(host_vars.get(host.replace("-", "_"), {}))
    return groups, hostvars


def fabric(subnet="10.77.0.0/24", **extra):
    return dict(fabric_subnet=subnet, **extra)


# --------------------------------------------------------------------------- fabric


def test_every_member_gets_an_address_and_every_other_member_as_a_peer():
    groups, hostvars = inventory(workers=("worker-1", "worker-2"), loadbalancers=("lb-1",), everyone=fabric())
    plan = dataplane.fabric_plan(groups, hostvars)
    assert plan["errors"] == []
    members = plan["members"]
    assert sorted(members) == ["lb-1", "manager-1", "worker-1", "worker-2"]
    assert len({m["address"] for m in members.values()}) == 4
    assert all(m["address"].endswith("/24") for m in members.values())
    assert members["manager-1"]["local"] == "192.168.231.11"
    assert members["manager-1"]["device"] == "ens3"
    assert members["manager-1"]["peers"] == ["192.168.231.12", "192.168.231.13", "192.168.231.14"]
    assert plan["settings"]["fabric_vni"] == 4242  # the role's default


def test_addresses_do_not_depend_on_inventory_order():
    groups, hostvars = inventory(workers=("worker-1", "worker-2", "worker-3"), everyone=fabric())
    first = dataplane.fabric_plan(groups, hostvars)["members"]
    groups["workers"].reverse()
    second = dataplane.fabric_plan(groups, hostvars)["members"]
    assert {h: m["address"] for h, m in first.items()} == {h: m["address"] for h, m in second.items()}


def test_a_host_keeps_the_address_it_holds_when_others_join():
    groups, hostvars = inventory(workers=("worker-1",), everyone=fabric())
    hostvars["worker-1"].update(probe("192.168.231.12", fabric="10.77.0.200"))
    for i in range(2, 40):
        groups["workers"].append("worker-%d" % i)
        hostvars["worker-%d" % i] = dict(probe("192.168.231.%d" % (20 + i)), **fabric())
    plan = dataplane.fabric_plan(groups, hostvars)
    assert plan["members"]["worker-1"]["address"] == "10.77.0.200/24"
    assert len({m["address"] for m in plan["members"].values()}) == 40


def test_a_hash_collision_takes_the_next_free_address():
    groups = dict(managers=["a"], workers=["b", "c", "d", "e"], loadbalancers=[])
    hostvars = {h: dict(probe("192.168.231.%d" % (11 + i)), **fabric("10.77.0.0/29")) for i, h in enumerate("abcde")}
    plan = dataplane.fabric_plan(groups, hostvars)  # 6 addresses for 5 hosts
    assert plan["errors"] == []
    assert len({m["address"] for m in plan["members"].values()}) == 5


def test_a_large_subnet_is_planned_without_listing_its_addresses():
    groups, hostvars = inventory(everyone=fabric("10.0.0.0/8"))
    plan = dataplane.fabric_plan(groups, hostvars)
    assert plan["errors"] == [] and all(m["address"].endswith("/8") for m in plan["members"].values())


def test_a_fixed_address_wins_and_must_be_in_the_subnet_and_unique():
    groups, hostvars = inventory(
        everyone=fabric(), manager_1=dict(fabric_address="10.77.0.5"), worker_1=dict(fabric_address="10.77.0.5")
    )
    assert dataplane.fabric_plan(groups, hostvars)["errors"] == [
        "host worker-1: fabric_address=10.77.0.5 is also the fabric_address of manager-1. Fix: give each host its own."
    ]
    groups, hostvars = inventory(everyone=fabric(), manager_1=dict(fabric_address="10.78.0.5"))
    (error,) = dataplane.fabric_plan(groups, hostvars)["errors"]
    assert error.startswith("host manager-1: fabric_address=10.78.0.5 is not a host address of fabric_subnet")
    groups, hostvars = inventory(everyone=fabric(), manager_1=dict(fabric_address="10.77.0.9"))
    assert dataplane.fabric_plan(groups, hostvars)["members"]["manager-1"]["address"] == "10.77.0.9/24"


def test_a_subnet_too_small_for_the_inventory_is_refused():
    groups, hostvars = inventory(workers=("worker-1", "worker-2", "worker-3"), everyone=fabric("10.77.0.0/30"))
    (error,) = dataplane.fabric_plan(groups, hostvars)["errors"]
    assert error == (
        "fabric_subnet=10.77.0.0/30 has 2 host addresses for 4 fabric hosts (swarm nodes and load balancers). "
        "Fix: use a larger subnet (a /29 or larger holds them)."
    )


@pytest.mark.parametrize(
    "settings, fragment",
    [
        (fabric("10.77.0.1/24"), "fabric_subnet=10.77.0.1/24 is not an IPv4 network"),
        (fabric(fabric_vni=0), "fabric_vni=0 is not a VXLAN network identifier. Fix: use 1-16777215."),
        (fabric(fabric_vni=16777216), "fabric_vni=16777216"),
        (fabric(fabric_port=70000), "fabric_port=70000 is not a port"),
        (fabric(fabric_mtu=100), "fabric_mtu=100 is not an MTU"),
    ],
)
def test_bad_fabric_settings_are_named(settings, fragment):
    groups, hostvars = inventory(everyone=settings)
    errors = dataplane.fabric_plan(groups, hostvars)["errors"]
    assert any(fragment in e for e in errors), errors
    assert all("Fix: " in e for e in errors)


def test_hosts_that_disagree_on_the_fabric_are_refused():
    groups, hostvars = inventory(everyone=fabric(), worker_1=dict(fabric_vni=7))
    (error,) = dataplane.fabric_plan(groups, hostvars)["errors"]
    assert error.startswith("fabric_vni differs between the fabric's hosts (4242, 7)")


def test_the_underlay_follows_the_fabric_and_swarm_variables():
    groups, hostvars = inventory(everyone=fabric(), manager_1=dict(fabric_underlay_addr="198.51.100.7"))
    members = dataplane.fabric_plan(groups, hostvars)["members"]
    assert members["manager-1"]["local"] == "198.51.100.7"
    assert members["worker-1"]["peers"] == ["198.51.100.7"]
    hostvars["worker-1"]["swarm_probe"]["host"]["interface_ipv4"]["ens4"] = "198.51.100.8"
    hostvars["worker-1"]["fabric_underlay_interface"] = "ens4"
    members = dataplane.fabric_plan(groups, hostvars)["members"]
    assert (members["worker-1"]["local"], members["worker-1"]["device"]) == ("198.51.100.8", "ens4")


def test_an_unreachable_host_stays_a_peer_at_its_ansible_host_address():
    groups, hostvars = inventory(workers=("worker-1", "worker-2"), everyone=fabric())
    hostvars["worker-2"] = dict(fabric(), ansible_host="192.168.231.13", swarm_probe=dict(unreachable=True))
    plan = dataplane.fabric_plan(groups, hostvars)
    assert "192.168.231.13" in plan["members"]["manager-1"]["peers"]
    hostvars["worker-2"] = dict(fabric(), ansible_host="worker-2.example", swarm_probe=dict(unreachable=True))
    plan = dataplane.fabric_plan(groups, hostvars)
    assert "worker-2" not in plan["members"]
    assert plan["warnings"][0].startswith("host worker-2: no underlay address is known")


# --------------------------------------------------------------------------- edge


SERVICES = [
    dict(name="myweb", publish=[dict(target=8000, published=8080)]),
    dict(name="dns", publish=[dict(target=53, published=53, protocol="udp")]),
    dict(name="hostport", publish=[dict(target=9000, published=9000, mode="host")]),
    dict(name="gone", state="absent", publish=[dict(target=1, published=7070)]),
]
LB = dict(edge_lb_vip="192.168.231.100")


def test_one_virtual_service_per_ingress_port_over_every_node():
    groups, hostvars = inventory(
        workers=("worker-1", "worker-2"), loadbalancers=("lb-1",), lb_1=dict(LB, edge_lb_ports={8080: 80})
    )
    plan = dataplane.edge_lb_plan(groups, hostvars, SERVICES)
    assert plan["errors"] == []
    services = plan["balancers"]["lb-1"]["services"]
    assert [(s["protocol"], s["address"], s["port"], s["scheduler"]) for s in services] == [
        ("tcp", "192.168.231.100", 80, "rr"),
        ("udp", "192.168.231.100", 53, "rr"),
    ]
    assert services[0]["real_servers"] == [
        dict(address="192.168.231.11", port=8080, forwarding="nat", weight=1),
        dict(address="192.168.231.12", port=8080, forwarding="nat", weight=1),
        dict(address="192.168.231.13", port=8080, forwarding="nat", weight=1),
    ]


def test_a_node_removed_from_the_inventory_is_no_longer_a_real_server():
    groups, hostvars = inventory(workers=("worker-1", "worker-2"), loadbalancers=("lb-1",), lb_1=LB)
    groups["workers"].remove("worker-2")
    plan = dataplane.edge_lb_plan(groups, hostvars, SERVICES)
    addresses = [rs["address"] for rs in plan["balancers"]["lb-1"]["services"][0]["real_servers"]]
    assert addresses == ["192.168.231.11", "192.168.231.12"]


def test_an_unreachable_node_stays_a_real_server_at_its_ansible_host():
    groups, hostvars = inventory(loadbalancers=("lb-1",), lb_1=LB)
    hostvars["worker-1"] = dict(ansible_host="192.168.231.12", swarm_probe=dict(unreachable=True))
    plan = dataplane.edge_lb_plan(groups, hostvars, SERVICES)
    assert "192.168.231.12" in [rs["address"] for rs in plan["balancers"]["lb-1"]["services"][0]["real_servers"]]


def test_real_servers_can_be_the_nodes_fabric_addresses():
    groups, hostvars = inventory(loadbalancers=("lb-1",), everyone=fabric(), lb_1=dict(LB, edge_lb_via_fabric=True))
    plan = dataplane.edge_lb_plan(groups, hostvars, SERVICES)
    fabric_plan = dataplane.fabric_plan(groups, hostvars)
    addresses = [rs["address"] for rs in plan["balancers"]["lb-1"]["services"][0]["real_servers"]]
    assert addresses == [fabric_plan["members"][h]["address"].split("/")[0] for h in ("manager-1", "worker-1")]


@pytest.mark.parametrize(
    "lb_vars, fragment",
    [
        (dict(), "host lb-1 is in loadbalancers but edge_lb_vip is not set"),
        (dict(edge_lb_vip="not-an-ip"), "host lb-1: edge_lb_vip=not-an-ip is not an IPv4 address"),
        (dict(edge_lb_vip="fd00::100"), "host lb-1: edge_lb_vip=fd00::100 is not an IPv4 address"),
        (dict(edge_lb_vip="192.168.231.12"), "host lb-1: edge_lb_vip=192.168.231.12 is already an address of a host"),
        (dict(LB, edge_lb_scheduler="fastest"), "host lb-1: edge_lb_scheduler=fastest is not an IPVS scheduler"),
        (
            dict(LB, edge_lb_forwarding="dr"),
            "host lb-1: edge_lb_forwarding=dr: the load balancers forward with NAT only",
        ),
        (dict(LB, edge_lb_ports={8080: 70000}), "host lb-1: edge_lb_ports[8080]=70000 is not a port"),
        (dict(LB, edge_lb_ports={8080: 53}), "host lb-1: services myweb and dns-tcp would share port 53/tcp"),
        (dict(LB, edge_lb_via_fabric=True), "host lb-1: edge_lb_via_fabric is true but there is no fabric"),
    ],
)
def test_bad_balancer_declarations_are_named(lb_vars, fragment):
    services = SERVICES + [dict(name="dns-tcp", publish=[dict(target=53, published=53)])]
    groups, hostvars = inventory(loadbalancers=("lb-1",), lb_1=lb_vars)
    errors = dataplane.edge_lb_plan(groups, hostvars, services)["errors"]
    assert any(e.startswith(fragment) for e in errors), errors
    assert all("Fix: " in e for e in errors)


def test_two_ingress_ports_mapped_to_one_vip_port_are_refused():
    services = [
        dict(name="a", publish=[dict(target=1, published=8080)]),
        dict(name="b", publish=[dict(target=1, published=8081)]),
    ]
    groups, hostvars = inventory(loadbalancers=("lb-1",), lb_1=dict(LB, edge_lb_ports={8081: 8080}))
    (error,) = dataplane.edge_lb_plan(groups, hostvars, services)["errors"]
    assert error.startswith("host lb-1: services a and b would share port 8080/tcp on the VIP")


def test_the_vip_a_balancer_already_holds_is_not_a_conflict():
    groups, hostvars = inventory(loadbalancers=("lb-1",), lb_1=LB)
    facts = hostvars["lb-1"]["swarm_probe"]["host"]
    facts["interface_ipv4"]["swarmplane-vip"] = "192.168.231.100"
    facts["all_ipv4_addresses"].append("192.168.231.100")
    assert dataplane.edge_lb_plan(groups, hostvars, SERVICES)["errors"] == []
    facts["interface_ipv4"]["ens4"] = facts["interface_ipv4"].pop("swarmplane-vip")
    assert dataplane.edge_lb_plan(groups, hostvars, SERVICES)["errors"] != []


def test_two_balancers_cannot_share_a_vip():
    groups, hostvars = inventory(loadbalancers=("lb-1", "lb-2"), lb_1=LB, lb_2=LB)
    (error,) = dataplane.edge_lb_plan(groups, hostvars, SERVICES)["errors"]
    assert error.startswith("host lb-2: edge_lb_vip=192.168.231.100 is also the VIP of lb-1")


def test_a_balancer_that_is_a_node_cannot_use_an_ingress_port_on_its_vip():
    groups, hostvars = inventory(workers=("worker-1",), worker_1=LB)
    groups["loadbalancers"] = ["worker-1"]
    errors = dataplane.edge_lb_plan(groups, hostvars, SERVICES)["errors"]
    assert [e.split(":")[0] for e in errors] == ["host worker-1 is a load balancer and a swarm node"] * 2
    assert "VIP port 8080/tcp (service myweb)" in errors[0]
    hostvars["worker-1"]["edge_lb_ports"] = {8080: 80, 53: 5353}
    assert dataplane.edge_lb_plan(groups, hostvars, SERVICES)["errors"] == []


def test_preflight_collects_fabric_and_edge_errors():
    groups, hostvars = inventory(
        workers=("worker-1", "worker-2", "worker-3"), loadbalancers=("lb-1",), everyone=fabric("10.77.0.0/30")
    )
    result = dataplane.dataplane_errors(groups, hostvars, SERVICES)
    assert [e.split(" ")[0] for e in result["errors"]] == ["fabric_subnet=10.77.0.0/30", "host"]


def test_a_cluster_without_fabric_or_balancers_has_nothing_to_check():
    groups, hostvars = inventory()
    assert dataplane.dataplane_errors(groups, hostvars, SERVICES) == dict(errors=[], warnings=[])


def test_settings_are_the_roles_defaults_unless_the_inventory_sets_them():
    assert dataplane.role_settings({}, "edge_lb")["edge_lb_scheduler"] == "rr"
    assert dataplane.role_settings({"edge_lb_scheduler": "wlc"}, "edge_lb")["edge_lb_scheduler"] == "wlc"
    assert dataplane.role_settings({}, "fabric")["fabric_interface"] == "fabric0"
    assert dataplane.role_settings({"edge_lb_ports": {"8080": "80"}}, "edge_lb")["edge_lb_ports"] == {8080: 80}


# --------------------------------------------------------------------------- verify


def test_verify_probes_every_node_and_vip_on_every_ingress_tcp_port():
    groups, hostvars = inventory(loadbalancers=("lb-1",), lb_1=dict(LB, edge_lb_ports={8080: 80}))
    targets = dataplane.verify_targets(groups, hostvars, SERVICES)
    assert [(t["name"], t["host"], t["port"]) for t in targets] == [
        ("myweb via manager-1", "192.168.231.11", 8080),
        ("myweb via worker-1", "192.168.231.12", 8080),
        ("myweb via lb-1 VIP", "192.168.231.100", 80),
    ]


def probe_result(name, meta, answered, replies=None, errors=()):
    return dict(
        name=name,
        host="192.168.231.11",
        port=8080,
        requests=6,
        answered=answered,
        replies=replies or {},
        errors=list(errors),
        meta=meta,
    )


def test_a_node_that_does_not_serve_is_named_with_its_kernels_reason():
    results = [
        probe_result(
            "myweb via manager-1", dict(service="myweb", port=8080, node="manager-1"), 6, {"a v1": 3, "b v1": 3}
        ),
        probe_result(
            "myweb via worker-1",
            dict(service="myweb", port=8080, node="worker-1"),
            0,
            errors=["[Errno 111] Connection refused"],
        ),
    ]
    meshes = {
        "manager-1": dict(
            available=True,
            services=[
                dict(
                    key="fwmark 256",
                    fwmark=256,
                    scheduler="rr",
                    real_servers=[dict(address="10.0.0.5"), dict(address="10.0.0.6")],
                )
            ],
        ),
        "worker-1": dict(available=False, reason="the kernel has no IPVS (6.18.44): the ip_vs module is not loaded"),
    }
    report = dataplane.verify_report(results, meshes)
    assert report["failed"] == ["myweb via worker-1"]
    assert report["lines"] == [
        "myweb 8080 via manager-1 (192.168.231.11:8080): 6/6 answered by a v1 (3), b v1 (3)",
        "myweb 8080 via worker-1 (192.168.231.11:8080): 0/6 answered; errors: [Errno 111] Connection refused; "
        "routing mesh: the kernel has no IPVS (6.18.44): the ip_vs module is not loaded",
        "manager-1: routing mesh: fwmark 256 rr -> 10.0.0.5, 10.0.0.6",
        "worker-1: routing mesh: the kernel has no IPVS (6.18.44): the ip_vs module is not loaded",
    ]

"""The ipvs module's pure logic: validation, the reconcile plan (drain and purge), the netlink codec and rendering.

Live tables come from tests/unit/data/ipvs/, recorded on a Debian 12 kernel (see record.md there): the raw netlink
answers of the kernel, decoded here by the same code the module uses.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from ansible_collections.swarmplane.cluster.plugins.module_utils import ipvs as nl
from ansible_collections.swarmplane.cluster.plugins.module_utils.ipvs import CMD_DEL_DEST, CMD_DEL_SERVICE, CMD_SET_DEST
from ansible_collections.swarmplane.cluster.plugins.modules import ipvs as ipvs_module
from ansible_collections.swarmplane.cluster.plugins.modules.ipvs import (
    bind_changes,
    missing_schedulers,
    normalize_services,
    plan_changes,
    predicted_table,
)

DATA = Path(__file__).parent / "data" / "ipvs"


def recorded_table(name):
    """A table as IpvsKernel.services() returns it, decoded from the recorded netlink answers."""
    record = json.loads((DATA / name).read_text())
    services = []
    for entry in record["services"]:
        service = nl.decode_service(nl.parse_attrs(bytes.fromhex(entry["service"]))[nl.CMD_ATTR_SERVICE])
        af = nl.FAMILIES[service["family"]]
        service["real_servers"] = [
            nl.decode_real_server(nl.parse_attrs(bytes.fromhex(dest))[nl.CMD_ATTR_DEST], af) for dest in entry["dests"]
        ]
        services.append(service)
    return services


def declare(*services):
    wanted, errors = normalize_services(list(services))
    assert errors == []
    return wanted


def web(*real_servers, **extra):
    return dict(
        dict(address="192.168.231.100", port=8080, scheduler="rr"),
        real_servers=[dict(address=a, port=8080) for a in real_servers],
        **extra,
    )


# --------------------------------------------------------------------------- codec


def test_a_service_encoded_for_the_kernel_decodes_to_itself():
    (service,) = declare(dict(web("10.0.0.1"), persistence_timeout=300, persistence_netmask="24"))
    payload = nl.parse_attrs(nl.encode_service(service))[nl.CMD_ATTR_SERVICE]
    decoded = nl.decode_service(payload)
    assert decoded["address"] == "192.168.231.100"
    assert decoded["port"] == 8080
    assert decoded["protocol"] == "tcp"
    assert decoded["scheduler"] == "rr"
    assert decoded["persistence_timeout"] == 300
    assert decoded["persistence_netmask"] == "255.255.255.0"


def test_ports_travel_in_network_order_and_addresses_in_sixteen_bytes():
    (service,) = declare(web("10.0.0.1"))
    attrs = nl.parse_attrs(nl.parse_attrs(nl.encode_service(service, full=False))[nl.CMD_ATTR_SERVICE])
    assert attrs[nl.SVC_ATTR_PORT] == b"\x1f\x90"
    assert attrs[nl.SVC_ATTR_ADDR] == socket.inet_aton("192.168.231.100") + b"\0" * 12
    assert set(attrs) == {nl.SVC_ATTR_AF, nl.SVC_ATTR_PROTOCOL, nl.SVC_ATTR_ADDR, nl.SVC_ATTR_PORT}


def test_an_ipv6_fwmark_service_round_trips():
    (service,) = declare(dict(fwmark=7, family="ipv6", scheduler="sh", scheduler_flags=["sh-port"]))
    decoded = nl.decode_service(nl.parse_attrs(nl.encode_service(service))[nl.CMD_ATTR_SERVICE])
    assert (decoded["fwmark"], decoded["family"], decoded["address"]) == (7, "ipv6", None)
    assert decoded["scheduler_flags"] == ["sh-port"]
    assert decoded["persistence_netmask"] == "128"


def test_a_real_server_round_trips_with_its_forwarding_method():
    rs = dict(address="10.0.0.9", port=80, forwarding="dr", weight=3, u_threshold=10, l_threshold=2)
    decoded = nl.decode_real_server(nl.parse_attrs(nl.encode_real_server(rs))[nl.CMD_ATTR_DEST], socket.AF_INET)
    assert {k: decoded[k] for k in rs} == rs


def test_attributes_are_padded_to_four_bytes():
    data = nl.attr_str(nl.SVC_ATTR_SCHED_NAME, "rr")  # 4 + 3 bytes
    assert len(data) == 8
    assert nl.parse_attrs(data + nl.attr_u32(9, 5)) == {nl.SVC_ATTR_SCHED_NAME: b"rr\0", 9: b"\x05\0\0\0"}


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "service, fragment",
    [
        (dict(web("10.0.0.1"), scheduler="fastest"), "services[0] (tcp 192.168.231.100:8080): scheduler=fastest"),
        (dict(address="10.0.0.1", port=70000), "services[0]: port=70000 is not a port"),
        (dict(address="10.0.0.1", port=0), "port=0 is not a port"),
        (dict(address="not-an-ip", port=80), "address=not-an-ip is not an IP address"),
        (dict(port=80), "no address and no fwmark"),
        (dict(fwmark=5, real_servers=[dict(address="10.0.0.1")]), "real_servers[0] (10.0.0.1:0): no port"),
        (dict(fwmark=5, address="10.0.0.1"), "fwmark=5 with address or port"),
        (dict(web("10.0.0.1"), scheduler_flags=["mh-port"]), "scheduler_flags=mh-port does not belong to scheduler rr"),
        (
            dict(address="10.0.0.1", port=80, real_servers=[dict(address="10.0.0.2", port=81, forwarding="dr")]),
            "port=81 differs from the service's port",
        ),
        (dict(address="10.0.0.1", port=80, real_servers=[dict(address="fd00::1")]), "not an ipv4 address"),
        (dict(web("10.0.0.1", "10.0.0.1")), "declared twice. Fix: keep one entry"),
        (dict(address="10.0.0.1", port=80, real_servers=[dict(address="10.0.0.2", weight=-1)]), "weight=-1"),
        (dict(web(), persistence_timeout=60, persistence_netmask="255.0.255.0"), "persistence_netmask=255.0.255.0"),
    ],
)
def test_bad_declarations_name_the_item_and_the_field(service, fragment):
    _services, errors = normalize_services([service])
    assert any(fragment in e for e in errors), errors
    assert all("Fix: " in e for e in errors)


def test_two_declarations_of_one_virtual_service_are_refused():
    _services, errors = normalize_services([web("10.0.0.1"), web("10.0.0.2")])
    assert errors == [
        "services[1] (tcp 192.168.231.100:8080): declared twice (also services[0]): a virtual service is one address, "
        "port and protocol, or one firewall mark. Fix: merge the two entries."
    ]


def test_the_same_address_and_port_over_tcp_and_udp_are_two_services():
    _services, errors = normalize_services([web(), dict(web(), protocol="udp")])
    assert errors == []


def test_real_servers_inherit_the_service_port_and_fwmark_ones_may_keep_the_client_port():
    (service,) = declare(dict(address="10.0.0.1", port=80, real_servers=[dict(address="10.0.0.2")]))
    assert service["real_servers"][0]["port"] == 80
    (mark,) = declare(dict(fwmark=256, real_servers=[dict(address="10.0.0.2", port=0)]))
    assert mark["real_servers"][0]["port"] == 0


def test_schedulers_missing_from_the_kernel_are_named():
    services = declare(web(), dict(web(), port=81, scheduler="mh"))
    assert missing_schedulers(services, lambda name: name != "ip_vs_mh") == ["mh"]


# --------------------------------------------------------------------------- the plan


def live_table(*services):
    """A live table in the model's shape: declared services as the kernel would return them."""
    table = []
    for service in declare(*services):
        service = dict(service, flags=0)
        service.pop("state")
        service["real_servers"] = [
            dict(rs, active_connections=0, inactive_connections=0, persistent_connections=0)
            for rs in service["real_servers"]
        ]
        table.append(service)
    return table


def test_an_empty_table_gets_services_before_their_real_servers():
    plan = plan_changes([], declare(web("10.0.0.1", "10.0.0.2")))
    assert plan.changes() == [
        "-A -t 192.168.231.100:8080 -s rr",
        "-a -t 192.168.231.100:8080 -r 10.0.0.1:8080 -m -w 1",
        "-a -t 192.168.231.100:8080 -r 10.0.0.2:8080 -m -w 1",
    ]


def test_a_table_that_matches_needs_no_change():
    plan = plan_changes(live_table(web("10.0.0.1", "10.0.0.2")), declare(web("10.0.0.2", "10.0.0.1")))
    assert plan.empty()


def test_only_changed_entries_are_touched():
    live = live_table(*[dict(web("10.0.0.1", "10.0.0.2"), port=p) for p in range(8000, 8100)])
    wanted = [dict(web("10.0.0.1", "10.0.0.2"), port=p) for p in range(8000, 8100)]
    wanted[5]["scheduler"] = "wrr"
    wanted[7]["real_servers"][0]["weight"] = 5
    plan = plan_changes(live, declare(*wanted))
    assert plan.changes() == [
        "-E -t 192.168.231.100:8005 -s wrr",
        "-e -t 192.168.231.100:8007 -r 10.0.0.1:8080 -m -w 5",
    ]


def test_a_real_server_left_out_is_drained_not_deleted_at_once():
    live = live_table(web("10.0.0.1", "10.0.0.2"))
    plan = plan_changes(live, declare(web("10.0.0.1")))
    assert plan.apply == []
    assert [(nl.service_key(s), nl.real_server_key(rs)) for s, rs in plan.drain] == [
        ("tcp 192.168.231.100:8080", "10.0.0.2:8080")
    ]
    assert plan.remove == []


def test_undeclared_services_stay_unless_purged():
    live = live_table(web("10.0.0.1"), dict(fwmark=256, real_servers=[dict(address="10.0.0.5", port=0)]))
    assert plan_changes(live, declare(web("10.0.0.1"))).empty()
    purged = plan_changes(live, declare(web("10.0.0.1")), purge=True)
    assert [nl.service_key(s) for s in purged.remove] == ["fwmark 256"]
    assert [nl.real_server_key(rs) for _s, rs in purged.drain] == ["10.0.0.5:0"]


def test_an_absent_service_is_drained_then_removed():
    live = live_table(web("10.0.0.1", "10.0.0.2"))
    plan = plan_changes(live, declare(dict(web(), state="absent")))
    assert len(plan.drain) == 2
    assert [nl.service_key(s) for s in plan.remove] == ["tcp 192.168.231.100:8080"]
    assert plan.changes()[-1] == "-D -t 192.168.231.100:8080"
    assert plan_changes([], declare(dict(web(), state="absent"))).empty()


def test_nat_to_an_own_address_reads_back_as_local_and_is_not_a_change():
    live = live_table(web("10.0.0.1"))
    live[0]["real_servers"][0]["forwarding"] = "local"
    assert plan_changes(live, declare(web("10.0.0.1"))).empty()


def test_the_netmask_of_a_service_without_persistence_is_not_compared():
    live = live_table(web("10.0.0.1"))
    live[0]["persistence_netmask"] = "0.0.0.0"
    assert plan_changes(live, declare(web("10.0.0.1"))).empty()


def test_a_settings_change_keeps_the_kernels_own_flags():
    live = live_table(web("10.0.0.1"))
    live[0]["flags"] = 0x4  # one-packet scheduling, not managed here
    plan = plan_changes(live, declare(dict(web("10.0.0.1"), scheduler="wrr")))
    assert plan.apply[0][1]["flags"] == 0x4


def test_the_predicted_table_is_the_declared_one():
    live = live_table(web("10.0.0.1", "10.0.0.2"), dict(web("10.0.0.9"), port=9000))
    wanted = declare(dict(web("10.0.0.2", "10.0.0.3"), scheduler="wrr"))
    after = predicted_table(live, plan_changes(live, wanted, purge=True))
    assert nl.render_rules(after) == [
        "-A -t 192.168.231.100:8080 -s wrr",
        "-a -t 192.168.231.100:8080 -r 10.0.0.2:8080 -m -w 1",
        "-a -t 192.168.231.100:8080 -r 10.0.0.3:8080 -m -w 1",
    ]


def test_bound_addresses_follow_the_declared_services():
    services = declare(web(), dict(web(), address="192.168.231.101", state="absent"))
    current = ["192.168.231.101/32", "192.168.231.150/32"]
    assert bind_changes(current, services, purge=False) == (["192.168.231.100/32"], ["192.168.231.101/32"])
    assert bind_changes(current, services, purge=True) == (
        ["192.168.231.100/32"],
        ["192.168.231.101/32", "192.168.231.150/32"],
    )


# --------------------------------------------------------------------------- rendering


def test_rules_read_like_ipvsadm_save():
    services = declare(
        dict(
            address="fd00::10",
            port=53,
            protocol="udp",
            scheduler="sh",
            scheduler_flags=["sh-port"],
            real_servers=[dict(address="fd00::1", forwarding="tunnel")],
        ),
        dict(
            fwmark=9,
            persistence_timeout=60,
            persistence_netmask="255.255.255.0",
            real_servers=[dict(address="10.0.0.1", port=0, weight=0)],
        ),
    )
    assert nl.render_rules(services) == [
        "-A -f 9 -s wlc -p 60 -M 255.255.255.0",
        "-a -f 9 -r 10.0.0.1:0 -m -w 0",
        "-A -u [fd00::10]:53 -s sh -b sh-port",
        "-a -u [fd00::10]:53 -r [fd00::1]:53 -i -w 1",
    ]


# --------------------------------------------------------------------------- recorded kernel tables


def test_a_recorded_table_decodes_to_what_ipvsadm_saved():
    """table.json is the kernel's answer for the table ipvsadm built and saved to table.ipvsadm-save."""
    saved = (DATA / "table.ipvsadm-save").read_text().splitlines()
    # ipvsadm -S leaves out thresholds and prints the tunnel type; this code prints thresholds and no tunnel type.
    saved = [line.replace(" --tun-type ipip", "") for line in saved]
    saved[saved.index("-a -t 192.0.2.10:80 -r 10.0.0.13:8080 -m -w 3")] += " -x 100 -y 10"
    assert sorted(nl.render_rules(recorded_table("table.json"))) == sorted(saved)


def test_a_recorded_table_carries_connections_and_family():
    table = {nl.service_key(s): s for s in recorded_table("table.json")}
    assert sorted(table) == [
        "fwmark 256",
        "fwmark 7 ipv6",
        "tcp 192.0.2.10:80",
        "tcp 192.0.2.11:443",
        "tcp [2001:db8::10]:80",
        "udp 192.0.2.10:53",
    ]
    web = table["tcp 192.0.2.10:80"]
    assert sorted((rs["address"], rs["weight"], rs["active_connections"]) for rs in web["real_servers"]) == [
        ("10.0.0.11", 1, 0),
        ("10.0.0.12", 0, 0),
        ("10.0.0.13", 3, 0),
    ]
    assert table["udp 192.0.2.10:53"]["scheduler_flags"] == ["sh-fallback", "sh-port"]
    assert table["udp 192.0.2.10:53"]["real_servers"][0]["forwarding"] == "dr"
    assert table["tcp 192.0.2.11:443"]["persistence_netmask"] == "255.255.255.0"


def declared_from_table(table):
    """The declaration that matches a live table exactly."""
    keep = ("protocol", "address", "port", "fwmark", "family", "scheduler", "scheduler_flags", "persistence_timeout")
    services = []
    for service in table:
        item = {k: service[k] for k in keep if service.get(k) is not None}
        if service["persistence_timeout"]:
            item["persistence_netmask"] = service["persistence_netmask"]
        item["real_servers"] = [
            {k: rs[k] for k in ("address", "port", "weight", "forwarding", "u_threshold", "l_threshold")}
            for rs in service["real_servers"]
        ]
        services.append(item)
    return services


def test_declaring_the_recorded_table_is_a_no_op():
    table = recorded_table("table.json")
    assert plan_changes(table, declare(*declared_from_table(table)), purge=True).empty()


def test_a_change_to_the_recorded_table_touches_only_what_changed():
    table = recorded_table("table.json")
    declared = declared_from_table(table)
    web = next(s for s in declared if s.get("port") == 80 and s.get("address") == "192.0.2.10")
    web["real_servers"] = [rs for rs in web["real_servers"] if rs["address"] != "10.0.0.13"]
    web["real_servers"].append(dict(address="10.0.0.14", port=8080))
    declared = [s for s in declared if s.get("fwmark") != 256]
    plan = plan_changes(table, declare(*declared), purge=True)
    assert plan.changes() == [
        "-a -t 192.0.2.10:80 -r 10.0.0.14:8080 -m -w 1",
        "-d -t 192.0.2.10:80 -r 10.0.0.13:8080",
        "-d -f 256 -r 10.0.0.5:0",
        "-d -f 256 -r 10.0.0.6:0",
        "-D -f 256",
    ]
    assert plan_changes(table, declare(*declared), purge=False).changes() == plan.changes()[:2]


def test_dockers_routing_mesh_table_decodes_and_declaring_it_changes_nothing():
    """ingress_sbox.json: the ingress_sbox table of a swarm node (Docker 20.10) with a 2-replica published service."""
    table = recorded_table("ingress_sbox.json")
    saved = (DATA / "ingress_sbox.ipvsadm-save").read_text().splitlines()
    assert nl.render_rules(table) == saved
    # Docker leaves the persistence netmask at 0 on a service without persistence: not a difference.
    assert table[0]["persistence_netmask"] == "0.0.0.0"
    assert plan_changes(table, declare(*declared_from_table(table))).empty()


def test_counters_are_decoded_only_when_asked_for():
    entry = json.loads((DATA / "ingress_sbox.json").read_text())["services"][0]
    payload = nl.parse_attrs(bytes.fromhex(entry["service"]))[nl.CMD_ATTR_SERVICE]
    assert "stats" not in nl.decode_service(payload)
    counters = nl.decode_service(payload, stats=True)["stats"]
    assert set(counters) == {"connections", "packets_in", "packets_out", "bytes_in", "bytes_out"}
    assert counters["connections"] > 0  # the recorded mesh had served requests


# --------------------------------------------------------------------------- draining, against a scripted kernel


class ScriptedKernel:
    """Answers real_servers() from a script of active-connection counts, one step per poll; records what is applied."""

    def __init__(self, live, active_per_poll):
        self.live = {nl.service_key(s): s for s in live}
        self.script = list(active_per_poll)
        self.applied = []

    def real_servers(self, service):
        active = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        rows = []
        for rs in self.live[nl.service_key(service)]["real_servers"]:
            if ("del", nl.real_server_key(rs)) not in {(a[0], a[1]) for a in self.applied}:
                rows.append(dict(rs, active_connections=active.get(nl.real_server_key(rs), 0)))
        return rows

    def apply(self, operations):
        for command, service, rs in operations:
            kind = {CMD_SET_DEST: "weight", CMD_DEL_DEST: "del", CMD_DEL_SERVICE: "delsvc"}.get(command, "other")
            self.applied.append((kind, nl.real_server_key(rs) if rs else nl.service_key(service), rs and rs["weight"]))
        return []


class Clock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@pytest.fixture
def drain(monkeypatch, fake_module):
    clock = Clock()
    monkeypatch.setattr(ipvs_module.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(ipvs_module.time, "sleep", clock.sleep)

    def run(live, wanted, active_per_poll, timeout=30, purge=False):
        kernel = ScriptedKernel(live, active_per_poll)
        manager = ipvs_module.IpvsManager(fake_module(params=dict(netns=None, drain_timeout=timeout)))
        reports = manager._drain(kernel, plan_changes(live, declare(*wanted), purge=purge))
        return reports, kernel.applied

    return run


def test_a_removed_real_server_gets_weight_0_then_is_deleted_once_its_connections_end(drain):
    live = live_table(web("10.0.0.1", "10.0.0.2"))
    reports, applied = drain(live, [web("10.0.0.1")], [{"10.0.0.2:8080": 3}, {"10.0.0.2:8080": 1}, {}])
    assert applied == [("weight", "10.0.0.2:8080", 0), ("del", "10.0.0.2:8080", 1)]
    assert reports == [
        dict(
            service="tcp 192.168.231.100:8080",
            real_server="10.0.0.2:8080",
            waited=1.0,
            active_connections=0,
            timed_out=False,
        )
    ]


def test_a_real_server_that_keeps_its_connections_is_deleted_when_the_timeout_passes(drain):
    live = live_table(web("10.0.0.1", "10.0.0.2"))
    reports, applied = drain(live, [web("10.0.0.1")], [{"10.0.0.2:8080": 5}], timeout=2)
    assert applied[-1] == ("del", "10.0.0.2:8080", 1)
    assert reports[0]["timed_out"] is True
    assert reports[0]["active_connections"] == 5
    assert reports[0]["waited"] == 2.0


def test_a_drain_timeout_of_0_deletes_at_once_without_touching_the_weight(drain):
    live = live_table(web("10.0.0.1", "10.0.0.2"))
    reports, applied = drain(live, [web("10.0.0.1")], [{"10.0.0.2:8080": 5}], timeout=0)
    assert applied == [("del", "10.0.0.2:8080", 1)]
    assert reports[0]["waited"] == 0.0


def test_an_absent_service_is_deleted_after_all_its_real_servers(drain):
    live = live_table(web("10.0.0.1", "10.0.0.2"))
    _reports, applied = drain(live, [dict(web(), state="absent")], [{}])
    assert [a[0] for a in applied] == ["weight", "weight", "del", "del", "delsvc"]

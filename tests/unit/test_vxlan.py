"""Pure logic of plugins/modules/vxlan.py, on iproute2 JSON recorded from a real kernel (tests/unit/data/vxlan/):
the view of a live interface, the checks of a task, the commands that take one to the other, and the manager's
handling of a kernel without VXLAN support.

The recorded namespace (iproute2 6.1, kernel 6.18) holds: eth0 (veth, MTU 1400, 192.168.77.1/24); vx0 (VNI 100,
port 4789, local 192.168.77.1 on eth0, no learning, MTU 1350, up) in bridge br-ov (up, 10.77.0.1/24) with peers
192.168.77.2 and .3; vx1 (VNI 200, port 4790, no local or device, learning, down, 10.88.0.1/24 and 10.88.0.9/24);
vx2 (VNI 300, down) in bridge br-busy (down) next to the veth spare0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ansible_collections.swarmplane.cluster.plugins.modules.vxlan import (
    VxlanError,
    VxlanManager,
    batch_failure,
    failed_batch_line,
    fdb_peers,
    is_missing_vxlan_support,
    links_by_name,
    plan_absent,
    plan_present,
    recreate_warning,
    resolve_on_host,
    validate_present,
    vxlan_view,
)

DATA = Path(__file__).resolve().parent / "data" / "vxlan"


def recorded(name):
    return json.loads((DATA / name).read_text())


def links(name="ip_addr_vxlans.json"):
    """`ip -j -d addr show` of the recorded namespace, by interface name (a fresh copy to modify)."""
    return links_by_name(recorded(name))


FDB_VX0 = recorded("bridge_fdb_vx0.json")
FDB_VX1 = recorded("bridge_fdb_vx1.json")  # no entries
UNKNOWN_TYPE_STDERR = (DATA / "ip_batch_unknown_type.stderr").read_text()
PEERS = ["192.168.77.1", "192.168.77.2", "192.168.77.3"]


def params(**given):
    """Module params as AnsibleModule hands them over: unset options None, the defaults filled in."""
    values = dict(
        name="vx0",
        state="present",
        vni=100,
        port=4789,
        local="192.168.77.1",
        device=None,
        mtu=None,
        learning=False,
        address=None,
        bridge=None,
        peers=None,
        netns=None,
    )
    values.update(given)
    return values


def wanted(live=None, **given):
    """The resolved wanted state of a task against the recorded namespace (or the given links)."""
    return resolve_on_host(validate_present(params(**given)), live or links(), "in netns test")


def vx0_view(live=None, holder="br-ov"):
    return vxlan_view(live or links(), FDB_VX0, "vx0", holder)


def vx0_task(**given):
    """The task that created the recorded vx0."""
    return dict(dict(vni=100, bridge="br-ov", address="10.77.0.1/24", peers=PEERS), **given)


def plan_vx0(**given):
    """The plan of a task on the recorded vx0, its view read as the module reads it (address of the bridge named)."""
    live = links()
    task = vx0_task(**given)
    view = vx0_view(live, holder=task["bridge"] or "vx0")
    return plan_present("vx0", view, wanted(live, **task), live)


# ----------------------------------------------------------------- the view of a live interface


def test_a_bridged_interface_reads_as_its_options():
    assert vx0_view() == dict(
        vni=100,
        port=4789,
        local="192.168.77.1",
        device="eth0",
        mtu=1350,
        learning=False,
        address="10.77.0.1/24",
        bridge="br-ov",
        peers=["192.168.77.2", "192.168.77.3"],
        up=True,
    )


def test_an_interface_without_local_or_device_with_two_addresses_and_learning():
    assert vxlan_view(links(), FDB_VX1, "vx1", "vx1") == dict(
        vni=200,
        port=4790,
        local=None,
        device=None,
        mtu=1500,
        learning=True,
        address=["10.88.0.1/24", "10.88.0.9/24"],
        bridge=None,
        peers=[],
        up=False,
    )


def test_the_address_is_read_from_the_interface_the_task_manages():
    assert vx0_view(holder="vx0")["address"] is None
    assert vx0_view(holder="br-new")["address"] is None


def test_an_interface_that_is_up_in_a_bridge_that_is_down_is_not_up():
    live = links()
    live["vx2"]["flags"].append("UP")
    assert vxlan_view(live, [], "vx2", "br-busy")["up"] is False
    live["br-busy"]["flags"].append("UP")
    assert vxlan_view(live, [], "vx2", "br-busy")["up"] is True


def test_a_missing_interface_has_no_view():
    assert vxlan_view(links("ip_addr_underlay_only.json"), [], "vx0", "vx0") is None


def test_another_kind_of_interface_with_the_name_is_refused():
    with pytest.raises(VxlanError, match=r"name=eth0 is a veth interface, not a VXLAN one\. Fix: "):
        vxlan_view(links(), [], "eth0", "eth0")


def test_peers_are_the_all_zeros_entries_with_a_destination():
    # The recorded FDB also has the bridge's own entry for the port's MAC: not a peer.
    assert fdb_peers(FDB_VX0) == ["192.168.77.2", "192.168.77.3"]
    assert fdb_peers([]) == []


def test_peers_sort_by_address_and_other_macs_are_not_peers():
    entries = [
        dict(mac="00:00:00:00:00:00", dst="192.168.77.10", flags=["self"], state="permanent"),
        dict(mac="00:00:00:00:00:00", dst="192.168.77.9", flags=["self"], state="permanent"),
        dict(mac="0a:58:0a:4d:00:02", dst="192.168.77.4", flags=["self"], state="permanent"),
    ]
    assert fdb_peers(entries) == ["192.168.77.9", "192.168.77.10"]


# ----------------------------------------------------------------- checks of the task


def test_a_task_normalizes_to_the_wanted_interface():
    task = params(
        address=" 10.77.0.1/24",
        bridge="br-ov",
        peers=["192.168.77.3", "192.168.77.1", "192.168.77.10", "192.168.77.3", "192.168.77.2"],
        learning=None,
    )
    assert validate_present(task) == dict(
        name="vx0",
        vni=100,
        port=4789,
        local="192.168.77.1",
        device=None,
        mtu=None,
        learning=False,
        address="10.77.0.1/24",
        bridge="br-ov",
        peers=["192.168.77.2", "192.168.77.3", "192.168.77.10"],
    )


def test_unset_peers_are_not_managed_and_an_empty_list_is():
    assert validate_present(params())["peers"] is None
    assert validate_present(params(peers=[]))["peers"] == []
    assert validate_present(params(peers=["192.168.77.1"]))["peers"] == []


@pytest.mark.parametrize(
    "given, fragment",
    [
        (dict(vni=0), "vni=0 is out of range: a VXLAN network identifier is 1 to 16777215"),
        (dict(vni=16777216), "vni=16777216 is out of range"),
        (dict(port=0), "port=0 is out of range: a UDP port is 1 to 65535"),
        (dict(port=65536), "port=65536 is out of range"),
        (dict(local="eth0"), "local=eth0 is not an IPv4 address"),
        (dict(local="fd00::1"), "local=fd00::1 is not an IPv4 address"),
        (dict(address="10.77.0.1"), "address=10.77.0.1 is not an IPv4 address in CIDR form"),
        (dict(address="10.77.0.300/24"), "address=10.77.0.300/24 is not an IPv4 address in CIDR form"),
        (dict(address="10.77.0.1/33"), "address=10.77.0.1/33 is not an IPv4 address in CIDR form"),
        (dict(address="fd00::1/64"), "address=fd00::1/64 is not an IPv4 address in CIDR form"),
        (dict(peers=["192.168.77.2", "host-3"]), "peers[1]=host-3 is not an IPv4 address"),
        (dict(peers=["239.1.1.1"]), "peers[0]=239.1.1.1 is not a unicast address"),
        (dict(peers=["0.0.0.0"]), "peers[0]=0.0.0.0 is not a unicast address"),
        (dict(mtu=67), "mtu=67 is below the smallest MTU of IPv4 (68)"),
        (dict(name="vxlan-overlay-100"), "name=vxlan-overlay-100 is not a usable interface name"),
        (dict(bridge="br ov"), "bridge=br ov is not a usable interface name"),
        (dict(device="eth0/1"), "device=eth0/1 is not a usable interface name"),
        (dict(bridge="vx0"), "bridge=vx0 is the VXLAN interface or its underlay"),
        (dict(device="eth0", bridge="eth0"), "bridge=eth0 is the VXLAN interface or its underlay"),
        (dict(device="vx0"), "device=vx0 is the VXLAN interface itself"),
    ],
)
def test_a_bad_option_fails_naming_it_its_value_and_the_fix(given, fragment):
    with pytest.raises(VxlanError) as failure:
        validate_present(params(**given))
    assert fragment in str(failure.value)
    assert " Fix: " in str(failure.value)


def test_the_underlay_is_the_interface_holding_local_and_the_mtu_leaves_50_bytes():
    resolved = wanted(live=links("ip_addr_underlay_only.json"))
    assert (resolved["device"], resolved["mtu"]) == ("eth0", 1350)


def test_an_mtu_up_to_the_underlay_mtu_minus_50_is_taken():
    assert wanted(mtu=1350)["mtu"] == 1350
    assert wanted(mtu=1280)["mtu"] == 1280


def test_an_mtu_above_the_underlay_mtu_minus_50_names_both_numbers():
    with pytest.raises(VxlanError) as failure:
        wanted(mtu=1400)
    message = str(failure.value)
    assert message.startswith("mtu=1400 is larger than the underlay can carry: eth0 has MTU 1400")
    assert "the largest is 1350. Fix: set mtu to 1350 or less" in message


def test_an_mtu_is_checked_against_the_device_the_task_names():
    live = links()
    live["uplink"]["mtu"] = 9000
    assert wanted(live, device="uplink", mtu=8950)["mtu"] == 8950


def test_a_device_that_does_not_exist_fails_naming_it():
    with pytest.raises(VxlanError, match=r"^device=eth9: no such interface in netns test\. Fix: .* use eth0"):
        wanted(device="eth9")


def test_a_local_address_no_interface_holds_fails_naming_it():
    with pytest.raises(VxlanError, match=r"^local=192\.168\.77\.9: no interface in netns test holds this address"):
        wanted(local="192.168.77.9")


def test_a_bridge_name_taken_by_another_kind_of_interface_fails():
    with pytest.raises(VxlanError, match=r"^bridge=uplink is a veth interface, not a bridge\. Fix: "):
        wanted(bridge="uplink")


def test_a_vni_another_interface_uses_on_the_same_port_fails_before_a_recreate_could_lose_ours():
    with pytest.raises(VxlanError, match=r"^vni=300: vx2 already uses VNI 300 with port 4789 in netns test.*Fix: "):
        wanted(vni=300)
    assert wanted(vni=300, port=4790)["vni"] == 300
    assert wanted(vni=100)["vni"] == 100  # our own interface holds it


# ----------------------------------------------------------------- what state=present changes


def test_creating_on_a_bare_underlay_is_one_ip_batch_and_one_bridge_batch():
    live = links("ip_addr_underlay_only.json")
    plan = plan_present("vx0", None, wanted(live, **vx0_task()), live)
    assert plan["ip"] == [
        "link add vx0 mtu 1350 type vxlan id 100 dstport 4789 local 192.168.77.1 dev eth0 nolearning",
        "link add br-ov type bridge",
        "link set vx0 master br-ov",
        "link set vx0 up",
        "link set br-ov up",
        "addr add 10.77.0.1/24 dev br-ov",
    ]
    assert plan["bridge"] == [
        "fdb append 00:00:00:00:00:00 dev vx0 dst 192.168.77.2 self permanent",
        "fdb append 00:00:00:00:00:00 dev vx0 dst 192.168.77.3 self permanent",
    ]
    assert plan["recreate"] == []
    assert plan["target"] == vx0_view()
    assert plan["changes"]["vni"] == dict(before=None, after=100)


def test_creating_with_learning_and_without_a_bridge_puts_the_address_on_the_interface():
    live = links("ip_addr_underlay_only.json")
    plan = plan_present("vx0", None, wanted(live, learning=True, mtu=1300, port=8472, address="10.77.0.1/24"), live)
    assert plan["ip"] == [
        "link add vx0 mtu 1300 type vxlan id 100 dstport 8472 local 192.168.77.1 dev eth0 learning",
        "link set vx0 up",
        "addr add 10.77.0.1/24 dev vx0",
    ]
    assert plan["bridge"] == []


def test_the_task_that_made_the_interface_changes_nothing():
    plan = plan_vx0()
    assert (plan["ip"], plan["bridge"], plan["changes"], plan["recreate"]) == ([], [], {}, [])


def test_mtu_learning_peers_and_address_change_in_place():
    plan = plan_vx0(
        mtu=1300,
        learning=True,
        peers=["192.168.77.2", "192.168.77.4"],
        address="10.77.0.11/24",
    )
    assert plan["recreate"] == []
    assert plan["ip"] == [
        "link set vx0 mtu 1300",
        "link set vx0 type vxlan learning",
        "addr del 10.77.0.1/24 dev br-ov",
        "addr add 10.77.0.11/24 dev br-ov",
    ]
    assert plan["bridge"] == [
        "fdb append 00:00:00:00:00:00 dev vx0 dst 192.168.77.4 self permanent",
        "fdb del 00:00:00:00:00:00 dev vx0 dst 192.168.77.3 self",
    ]
    assert plan["changes"] == dict(
        mtu=dict(before=1350, after=1300),
        learning=dict(before=False, after=True),
        address=dict(before="10.77.0.1/24", after="10.77.0.11/24"),
        peers=dict(before=["192.168.77.2", "192.168.77.3"], after=["192.168.77.2", "192.168.77.4"]),
    )


def test_an_empty_peer_list_removes_every_peer():
    plan = plan_vx0(peers=[])
    assert plan["bridge"] == [
        "fdb del 00:00:00:00:00:00 dev vx0 dst 192.168.77.2 self",
        "fdb del 00:00:00:00:00:00 dev vx0 dst 192.168.77.3 self",
    ]
    assert plan["ip"] == []


def test_the_interface_holds_exactly_the_address_of_the_task():
    live = links()
    live["vx0"].pop("master")
    live["vx0"]["addr_info"] = live["vx1"]["addr_info"]
    view = vxlan_view(live, FDB_VX0, "vx0", "vx0")
    plan = plan_present("vx0", view, wanted(live, peers=PEERS, address="10.88.0.9/24"), live)
    assert plan["ip"] == ["addr del 10.88.0.1/24 dev vx0"]
    assert plan["changes"] == dict(address=dict(before=["10.88.0.1/24", "10.88.0.9/24"], after="10.88.0.9/24"))


def test_a_new_bridge_is_created_up_and_given_the_address():
    plan = plan_vx0(bridge="br-new")
    assert plan["ip"] == [
        "link add br-new type bridge",
        "link set vx0 master br-new",
        "link set br-new up",
        "addr add 10.77.0.1/24 dev br-new",
    ]
    assert plan["changes"] == dict(
        address=dict(before=None, after="10.77.0.1/24"),
        bridge=dict(before="br-ov", after="br-new"),
    )


def test_an_interface_that_is_down_is_brought_up_with_its_bridge():
    live = links()
    live["vx0"]["flags"].remove("UP")
    live["br-ov"]["flags"].remove("UP")
    view = vxlan_view(live, FDB_VX0, "vx0", "br-ov")
    plan = plan_present("vx0", view, wanted(live, **vx0_task()), live)
    assert plan["ip"] == ["link set vx0 up", "link set br-ov up"]
    assert plan["changes"] == dict(up=dict(before=False, after=True))


def test_options_left_unset_keep_the_live_bridge_address_and_peers():
    plan = plan_vx0(bridge=None, address=None, peers=None)
    assert (plan["ip"], plan["bridge"], plan["changes"]) == ([], [], {})
    # Without a bridge in the task, the address is the interface's own (it has none).
    assert plan["target"] == vx0_view(holder="vx0")


@pytest.mark.parametrize(
    "given, prop",
    [
        (dict(vni=101), "vni"),
        (dict(port=4790), "port"),
        (dict(device="uplink"), "device"),
    ],
)
def test_what_the_kernel_cannot_change_in_place_recreates_the_interface(given, prop):
    plan = plan_vx0(**given)
    assert plan["recreate"] == [prop]
    assert plan["ip"][0] == "link del vx0"
    assert plan["ip"][1].startswith("link add vx0 mtu 1350 type vxlan")
    assert plan["ip"][2:] == ["link set vx0 master br-ov", "link set vx0 up"]  # the bridge keeps its address
    # Deleting the interface empties its FDB: every peer goes back in.
    assert plan["bridge"] == [
        "fdb append 00:00:00:00:00:00 dev vx0 dst 192.168.77.2 self permanent",
        "fdb append 00:00:00:00:00:00 dev vx0 dst 192.168.77.3 self permanent",
    ]


def test_a_recreate_with_unset_options_puts_back_the_live_bridge_and_peers():
    plan = plan_vx0(vni=101, bridge=None, address=None, peers=None)
    assert plan["ip"] == [
        "link del vx0",
        "link add vx0 mtu 1350 type vxlan id 101 dstport 4789 local 192.168.77.1 dev eth0 nolearning",
        "link set vx0 master br-ov",
        "link set vx0 up",
    ]
    assert len(plan["bridge"]) == 2
    assert plan["changes"] == dict(vni=dict(before=100, after=101))


def test_a_recreate_of_an_unbridged_interface_puts_its_addresses_back():
    live = links()
    view = vxlan_view(live, [], "vx1", "vx1")
    plan = plan_present("vx1", view, wanted(live, name="vx1", vni=200, port=4790, learning=True), live)
    assert plan["recreate"] == ["local", "device"]
    assert plan["ip"] == [
        "link del vx1",
        "link add vx1 mtu 1350 type vxlan id 200 dstport 4790 local 192.168.77.1 dev eth0 learning",
        "link set vx1 up",
        "addr add 10.88.0.1/24 dev vx1",
        "addr add 10.88.0.9/24 dev vx1",
    ]


@pytest.mark.parametrize(
    "given",
    [
        dict(),
        dict(mtu=1300),
        dict(vni=101),
        dict(peers=[]),
        dict(bridge="br-new"),
        dict(bridge=None, address=None, peers=None),
        dict(learning=True, address="10.77.0.11/24"),
    ],
)
def test_a_change_is_reported_exactly_when_there_is_a_command_to_run(given):
    plan = plan_vx0(**given)
    assert bool(plan["changes"]) == bool(plan["ip"] or plan["bridge"])


def test_the_recreate_warning_says_what_changes_and_that_traffic_stops():
    changes = dict(vni=dict(before=100, after=101), mtu=dict(before=1350, after=1300))
    assert recreate_warning("vx0", changes, ["vni"], True) == (
        "vxlan vx0: vni 100 -> 101 cannot change in place: the interface would be deleted and created again, "
        "and traffic over it stops briefly."
    )
    assert "the interface is deleted" in recreate_warning("vx0", changes, ["vni"], False)


# ----------------------------------------------------------------- what state=absent changes


def test_absent_deletes_the_interface_and_the_bridge_it_was_alone_in():
    live = links()
    assert plan_absent("vx0", vx0_view(live), "br-ov", live) == ["link del vx0", "link del br-ov"]


def test_absent_keeps_a_bridge_with_other_ports_and_one_not_named():
    live = links()
    assert plan_absent("vx2", vxlan_view(live, [], "vx2", "br-busy"), "br-busy", live) == ["link del vx2"]
    assert plan_absent("vx0", vx0_view(live), None, live) == ["link del vx0"]


def test_absent_when_already_gone_changes_nothing_and_a_non_bridge_is_never_deleted():
    live = links("ip_addr_underlay_only.json")
    assert plan_absent("vx0", None, None, live) == []
    assert plan_absent("vx0", None, "eth0", live) == []


# ----------------------------------------------------------------- ip -batch failures


def test_the_failing_line_of_a_batch_is_found_in_its_stderr():
    lines = ["link add vx9 type vxlan id 5 dstport 4789", "link set vx9 up"]
    assert failed_batch_line(UNKNOWN_TYPE_STDERR, lines) == 0
    assert failed_batch_line("Error: ...\nCommand failed -:2\n", lines) == 1
    assert failed_batch_line("Command failed -:7", lines) is None
    assert failed_batch_line("", lines) is None


def test_a_batch_failure_names_the_command_the_error_and_what_was_applied():
    lines = [
        "link del vx0",
        "link add vx0 mtu 1350 type vxlan id 7 dstport 4789 local 192.168.77.1 dev eth0 nolearning",
    ]
    stderr = "Error: A VXLAN device with the specified VNI already exists.\nCommand failed -:2\n"
    assert batch_failure("ip", lines, stderr) == (
        "`ip link add vx0 mtu 1350 type vxlan id 7 dstport 4789 local 192.168.77.1 dev eth0 nolearning` failed: "
        "Error: A VXLAN device with the specified VNI already exists. (the 1 command(s) before it were applied). "
        "Fix: correct what the error names and run the task again; it applies what is missing."
    )
    assert "(nothing was applied)" in batch_failure("ip", lines, UNKNOWN_TYPE_STDERR)
    assert batch_failure("bridge", lines, "").startswith("bridge -batch failed: no error message. Fix: ")


def test_unknown_device_type_on_the_vxlan_line_means_no_vxlan_in_the_kernel():
    create = "link add vx0 mtu 1350 type vxlan id 100 dstport 4789 local 192.168.77.1 dev eth0 nolearning"
    assert is_missing_vxlan_support(create, UNKNOWN_TYPE_STDERR)
    assert not is_missing_vxlan_support("link add br-ov type bridge", UNKNOWN_TYPE_STDERR)
    assert not is_missing_vxlan_support(create, "Error: A VXLAN device with the specified VNI already exists.")


# ----------------------------------------------------------------- the manager, on a scripted host


class ModuleFailed(Exception):
    def __init__(self, result):
        super().__init__(result["msg"])
        self.result = result


@pytest.fixture
def scripted_module(fake_module):
    """Factory of FakeModules on the recorded underlay-only host: scripted_module(script, check_mode, **options).

    Each command is answered by the first unused script entry (argv prefix, (rc, stdout, stderr)) it matches,
    else succeeds silently; the stdin of each command is recorded, and fail_json raises ModuleFailed.
    """

    class ScriptedModule(fake_module):
        def __init__(self, script, check_mode, options):
            super().__init__(params=params(**options), check_mode=check_mode)
            self.script = list(script)
            self.stdin = []
            self.modprobe = "/usr/sbin/modprobe"

        def get_bin_path(self, name, required=False):
            return {"ip": "/usr/sbin/ip", "bridge": "/usr/sbin/bridge", "modprobe": self.modprobe}[name]

        def run_command(self, args, data=None, **kwargs):
            self.calls.append(list(args))
            self.stdin.append(data)
            for index, (prefix, answer) in enumerate(self.script):
                if list(args[: len(prefix)]) == prefix:
                    del self.script[index]
                    return answer
            return (0, "", "")

        def fail_json(self, **result):
            raise ModuleFailed(result)

    read = (READ_LINKS, (0, (DATA / "ip_addr_underlay_only.json").read_text(), ""))
    return lambda script, check_mode=False, **options: ScriptedModule([read, *script], check_mode, options)


READ_LINKS = ["/usr/sbin/ip", "-j", "-d", "addr", "show"]
IP_BATCH = ["/usr/sbin/ip", "-batch", "-"]
UNKNOWN_TYPE = (IP_BATCH, (1, "", UNKNOWN_TYPE_STDERR))


def test_a_kernel_without_vxlan_gets_modprobe_once_then_the_batch_again(scripted_module):
    module = scripted_module([UNKNOWN_TYPE], peers=PEERS)
    result = VxlanManager(module).execute()
    assert result["changed"] is True
    assert module.calls == [
        READ_LINKS,
        IP_BATCH,
        ["/usr/sbin/modprobe", "vxlan"],
        IP_BATCH,
        ["/usr/sbin/bridge", "-batch", "-"],
    ]
    assert module.stdin[1] == module.stdin[3]  # the create was the first line: nothing had been applied
    assert module.stdin[1].startswith("link add vx0 mtu 1350 type vxlan id 100 dstport 4789 local 192.168.77.1")


def test_a_kernel_without_vxlan_where_modprobe_fails_says_so_and_what_to_do(scripted_module):
    module = scripted_module(
        [UNKNOWN_TYPE, (["/usr/sbin/modprobe"], (1, "", "modprobe: FATAL: Module vxlan not found in directory"))]
    )
    with pytest.raises(ModuleFailed) as failure:
        VxlanManager(module).execute()
    message = str(failure.value)
    assert message.startswith("vxlan vx0: this kernel (")
    assert "has no VXLAN support: `ip link add vx0 mtu 1350 type vxlan" in message
    assert "says Error: Unknown device type., and modprobe vxlan failed: modprobe: FATAL: Module vxlan" in message
    assert "Fix: load the vxlan module" in message
    assert module.calls.count(IP_BATCH) == 1


def test_a_kernel_without_vxlan_and_without_modprobe_says_so(scripted_module):
    module = scripted_module([UNKNOWN_TYPE])
    module.modprobe = None
    with pytest.raises(ModuleFailed, match=r"no VXLAN support: .*modprobe is not installed \(package kmod\)\. Fix: "):
        VxlanManager(module).execute()


def test_a_failed_batch_reports_rc_stdout_stderr_and_the_commands(scripted_module):
    stderr = "Error: Nexthop has invalid gateway.\nCommand failed -:3\n"
    module = scripted_module([(IP_BATCH, (1, "", stderr))], address="10.77.0.1/24")
    with pytest.raises(ModuleFailed) as failure:
        VxlanManager(module).execute()
    result = failure.value.result
    assert (result["rc"], result["stdout"], result["stderr"]) == (1, "", stderr)
    assert result["commands"][2] == "addr add 10.77.0.1/24 dev vx0"
    assert result["msg"].startswith("vxlan vx0: `ip addr add 10.77.0.1/24 dev vx0` failed: Error: Nexthop")


def test_check_mode_only_reads(scripted_module):
    module = scripted_module([], check_mode=True)
    result = VxlanManager(module).execute()
    assert result["changed"] is True
    assert result["commands"][0].startswith("ip link add vx0 mtu 1350 type vxlan id 100")
    assert module.calls == [READ_LINKS]


def test_a_namespace_that_does_not_exist_fails_before_any_command(scripted_module):
    module = scripted_module([], netns="spvx-nowhere-%d" % os.getpid())
    with pytest.raises(ModuleFailed, match=r"^vxlan vx0: netns=spvx-nowhere-\d+: the network namespace does not exist"):
        VxlanManager(module).execute()
    assert module.calls == []


def test_a_bad_option_fails_before_any_command(scripted_module):
    module = scripted_module([], vni=0)
    with pytest.raises(ModuleFailed, match=r"^vxlan vx0: vni=0 is out of range"):
        VxlanManager(module).execute()
    assert module.calls == []

"""Pure logic of plugins/modules/swarm_network.py: the module's view of a live network, the changes a task asks
for, the create body, and which services use a network (and their specs without it)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.swarmplane.cluster.plugins.modules.swarm_network import (
    create_body,
    network_changes,
    network_view,
    service_network_targets,
    services_using,
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


def test_without_network_removes_only_that_attachment_and_returns_it():
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
    new_spec, removed = without_network(spec, NET_ID, "backend")
    assert removed == dict(Target=NET_ID, Aliases=["web", "www"])
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
    new_spec, removed = without_network(spec, NET_ID, "backend")
    assert removed == dict(Target="backend")
    assert new_spec["TaskTemplate"]["Networks"] == [dict(Target="frontend")]


def test_without_network_on_a_spec_not_attached_returns_no_attachment():
    spec = dict(Name="web", TaskTemplate=dict(Networks=[dict(Target="frontend-id")]))
    new_spec, removed = without_network(spec, NET_ID, "backend")
    assert removed is None
    assert new_spec == spec
    new_spec, removed = without_network(dict(Name="cron"), NET_ID, "backend")
    assert removed is None
    assert new_spec == dict(Name="cron", TaskTemplate=dict(Networks=[]))


def test_without_network_removes_an_attachment_in_the_deprecated_spec_networks():
    svc = service("legacy", spec_networks=[NET_ID, "frontend-id"])
    assert services_using([svc], NET_ID, "backend") == ["legacy"]
    new_spec, removed = without_network(svc["Spec"], NET_ID, "backend")
    assert removed == dict(Target=NET_ID)
    assert NET_ID not in service_network_targets(dict(Spec=new_spec))

"""Pure logic of swarm services: plugins/module_utils/swarm_service_spec.py (the wanted spec, its parts and the
difference between specs, the validation of a play's service list, the nodes a service can run on, what a
rebuild keeps, env values hidden in output) and the helpers timestamp() and summary() of the service manager."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_manager import summary, timestamp
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import (
    CLI_DEFAULT_SPEC,
    HIDDEN,
    HIDDEN_CHANGED,
    ServiceSpecError,
    attachment,
    constraint_matches,
    describe_spec,
    duration_ns,
    eligible_nodes,
    env_list,
    healthcheck,
    image_matches,
    masked_changes,
    masked_env,
    masked_params,
    mode_of,
    mount,
    nano_cpus,
    platform_matches,
    port_configs,
    rebuild_reasons,
    reference,
    restorable_spec,
    set_container,
    set_endpoint,
    set_mode,
    set_placement,
    set_resources,
    size_bytes,
    spec_differences,
    update_config,
    validate_service_list,
    wanted_spec,
)

NS = 1_000_000_000
DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64

# Every option of the swarm_service module: AnsibleModule passes the ones the task leaves out as None.
SERVICE_OPTIONS = (
    "image",
    "command",
    "args",
    "mode",
    "replicas",
    "publish",
    "networks",
    "env",
    "labels",
    "container_labels",
    "constraints",
    "placement_preferences",
    "max_replicas_per_node",
    "limits",
    "reservations",
    "restart_policy",
    "update_config",
    "rollback_config",
    "healthcheck",
    "mounts",
    "secrets",
    "configs",
    "endpoint_mode",
    "hostname",
    "user",
    "workdir",
    "stop_grace_period",
)
NO_RESOLVED = dict(networks={}, secrets={}, configs={})

CLI_UPDATE = dict(Parallelism=1, FailureAction="pause", Monitor=5 * NS, MaxFailureRatio=0, Order="stop-first")


def params(**given):
    """Module params as AnsibleModule hands them over: every option present, the unset ones None."""
    values = dict.fromkeys(SERVICE_OPTIONS)
    values.update(state="present", wait=True, wait_timeout=120, rollback_on_failure=True)
    values.update(name="web")
    values.update(given)
    return values


def live_spec():
    """A service spec as `docker service inspect` returns it for a running service."""
    return dict(
        Name="web",
        Labels={"team": "ops"},
        TaskTemplate=dict(
            ContainerSpec=dict(
                Image="registry.example.com/web:v1@" + DIGEST,
                Env=["A=1", "B=2"],
                StopGracePeriod=10 * NS,
                Isolation="default",
            ),
            Resources=dict(Limits=dict(MemoryBytes=256 * 1024**2), Reservations={}),
            RestartPolicy=dict(Condition="on-failure", Delay=5 * NS, MaxAttempts=3),
            Placement=dict(Constraints=["node.role==worker"]),
            Networks=[dict(Target="net-backend-id", Aliases=["web"])],
            ForceUpdate=0,
            Runtime="container",
        ),
        Mode=dict(Replicated=dict(Replicas=2)),
        UpdateConfig=dict(
            Parallelism=3,
            Delay=10 * NS,
            FailureAction="rollback",
            Monitor=15 * NS,
            MaxFailureRatio=0.1,
            Order="start-first",
        ),
        RollbackConfig=dict(CLI_UPDATE),
        EndpointSpec=dict(
            Mode="vip",
            Ports=[dict(Protocol="tcp", TargetPort=80, PublishedPort=8080, PublishMode="ingress")],
        ),
    )


# ----------------------------------------------------------------- a new service: the docker CLI's defaults


def test_new_service_gets_the_docker_cli_update_and_rollback_defaults_not_the_sdks():
    spec = wanted_spec(params(image="web:v1"), None, NO_RESOLVED)
    expected = dict(Parallelism=1, FailureAction="pause", Monitor=5 * NS, MaxFailureRatio=0, Order="stop-first")
    assert spec["UpdateConfig"] == expected
    assert spec["RollbackConfig"] == expected
    # The SDK's would be parallelism 0 (all tasks at once) and failure action continue.
    assert spec["UpdateConfig"]["Parallelism"] != 0
    assert spec["UpdateConfig"]["FailureAction"] != "continue"


def test_new_service_gets_restart_any_one_replica_and_a_vip_endpoint():
    spec = wanted_spec(params(image="web:v1"), None, NO_RESOLVED)
    assert spec["Name"] == "web"
    assert spec["TaskTemplate"]["ContainerSpec"] == dict(Image="web:v1", StopGracePeriod=10 * NS)
    assert spec["TaskTemplate"]["RestartPolicy"] == dict(Condition="any", Delay=5 * NS, MaxAttempts=0)
    assert spec["Mode"] == dict(Replicated=dict(Replicas=1))
    assert spec["EndpointSpec"] == dict(Mode="vip")
    assert mode_of(spec) == "replicated"


def test_cli_default_spec_has_the_documented_values():
    assert CLI_DEFAULT_SPEC["UpdateConfig"] == CLI_UPDATE
    assert CLI_DEFAULT_SPEC["RollbackConfig"] == CLI_UPDATE
    assert CLI_DEFAULT_SPEC["TaskTemplate"]["RestartPolicy"]["Condition"] == "any"
    assert CLI_DEFAULT_SPEC["Mode"] == dict(Replicated=dict(Replicas=1))
    assert CLI_DEFAULT_SPEC["EndpointSpec"] == dict(Mode="vip")


def test_new_service_does_not_alter_the_cli_default_spec():
    before = copy.deepcopy(CLI_DEFAULT_SPEC)
    spec = wanted_spec(
        params(image="web:v1", update_config=dict(parallelism=4), constraints=["node.role==worker"], replicas=3),
        None,
        NO_RESOLVED,
    )
    assert spec["UpdateConfig"]["Parallelism"] == 4
    spec["TaskTemplate"]["RestartPolicy"]["Condition"] = "none"
    assert before == CLI_DEFAULT_SPEC
    # A second new service starts from the untouched defaults again.
    again = wanted_spec(params(name="api", image="api:v1"), None, NO_RESOLVED)
    assert again["UpdateConfig"]["Parallelism"] == 1
    assert again["TaskTemplate"]["Placement"] == {}
    assert again["Mode"] == dict(Replicated=dict(Replicas=1))


def test_new_service_update_config_overrides_only_the_given_cli_defaults():
    spec = wanted_spec(params(image="web:v1", update_config=dict(order="start-first")), None, NO_RESOLVED)
    assert spec["UpdateConfig"] == dict(CLI_UPDATE, Order="start-first")
    assert spec["RollbackConfig"] == CLI_UPDATE


# ----------------------------------------------------------------- an update: unset options keep live values


def test_update_with_only_replicas_changes_only_the_replica_count():
    live = live_spec()
    wanted = wanted_spec(params(replicas=4), live, NO_RESOLVED)
    assert spec_differences(live, wanted) == {"Mode.Replicated.Replicas": dict(before=2, after=4)}
    assert wanted["TaskTemplate"]["ContainerSpec"]["Image"] == "registry.example.com/web:v1@" + DIGEST
    assert wanted["TaskTemplate"]["ContainerSpec"]["Env"] == ["A=1", "B=2"]
    assert wanted["TaskTemplate"]["Placement"] == dict(Constraints=["node.role==worker"])
    assert wanted["UpdateConfig"]["Parallelism"] == 3


def test_update_does_not_modify_the_live_spec_it_starts_from():
    live = live_spec()
    wanted_spec(params(replicas=4, env=dict(C="3"), update_config=dict(parallelism=1)), live, NO_RESOLVED)
    assert live == live_spec()


def test_update_with_nothing_set_but_the_name_changes_nothing():
    live = live_spec()
    assert spec_differences(live, wanted_spec(params(), live, NO_RESOLVED)) == {}


def test_update_with_the_same_values_as_live_changes_nothing():
    live = live_spec()
    wanted = wanted_spec(
        params(
            image="registry.example.com/web:v1",
            replicas=2,
            env=["A=1", "B=2"],
            constraints=["node.role==worker"],
            labels=dict(team="ops"),
            publish=[dict(target=80, published=8080)],
            update_config=dict(parallelism=3, order="start-first"),
        ),
        live,
        NO_RESOLVED,
    )
    assert spec_differences(live, wanted) == {}


def test_update_env_replaces_only_the_env():
    live = live_spec()
    wanted = wanted_spec(params(env=dict(B="2", A="1", C=None)), live, NO_RESOLVED)
    assert spec_differences(live, wanted) == {
        "TaskTemplate.ContainerSpec.Env": dict(before=["A=1", "B=2"], after=["A=1", "B=2", "C="])
    }


def test_update_config_with_only_parallelism_keeps_the_other_live_fields():
    live = live_spec()
    wanted = wanted_spec(params(update_config=dict(parallelism=2)), live, NO_RESOLVED)
    assert wanted["UpdateConfig"] == dict(live["UpdateConfig"], Parallelism=2)
    assert wanted["UpdateConfig"]["FailureAction"] == "rollback"
    assert wanted["UpdateConfig"]["Monitor"] == 15 * NS
    assert spec_differences(live, wanted) == {"UpdateConfig.Parallelism": dict(before=3, after=2)}


def test_update_config_of_a_live_spec_without_one_starts_from_the_cli_defaults():
    live = live_spec()
    del live["RollbackConfig"]
    wanted = wanted_spec(params(rollback_config=dict(failure_action="continue", delay="2s")), live, NO_RESOLVED)
    assert wanted["RollbackConfig"] == dict(CLI_UPDATE, FailureAction="continue", Delay=2 * NS)


def test_restart_policy_with_only_a_condition_keeps_the_live_delay_and_attempts():
    live = live_spec()
    wanted = wanted_spec(params(restart_policy=dict(condition="any", window="1m")), live, NO_RESOLVED)
    assert wanted["TaskTemplate"]["RestartPolicy"] == dict(Condition="any", Delay=5 * NS, MaxAttempts=3, Window=60 * NS)


def test_limits_are_converted_to_nano_cpus_and_bytes():
    wanted = wanted_spec(
        params(image="web:v1", limits=dict(cpus=0.5, memory="64M"), reservations=dict(memory=1024)),
        None,
        NO_RESOLVED,
    )
    assert wanted["TaskTemplate"]["Resources"] == dict(
        Limits=dict(NanoCPUs=500_000_000, MemoryBytes=64 * 1024 * 1024), Reservations=dict(MemoryBytes=1024)
    )


def test_invalid_memory_in_limits_names_the_option():
    with pytest.raises(ServiceSpecError, match=r"^limits\.memory: 'lots' is not a size"):
        wanted_spec(params(image="web:v1", limits=dict(memory="lots")), None, NO_RESOLVED)


def test_placement_preferences_and_max_replicas_per_node():
    wanted = wanted_spec(
        params(placement_preferences=[dict(spread="node.labels.zone")], max_replicas_per_node=2),
        live_spec(),
        NO_RESOLVED,
    )
    assert wanted["TaskTemplate"]["Placement"] == dict(
        Constraints=["node.role==worker"],
        Preferences=[dict(Spread=dict(SpreadDescriptor="node.labels.zone"))],
        MaxReplicas=2,
    )


def test_container_options_are_set_on_the_container_spec():
    wanted = wanted_spec(
        params(
            image="web:v1",
            command=["/bin/web"],
            args=["--port", "80"],
            hostname="{{.Task.Name}}",
            user="app",
            workdir="/srv",
            container_labels=dict(version=2),
            labels=dict(tier=1),
            stop_grace_period="30s",
        ),
        None,
        NO_RESOLVED,
    )
    assert wanted["TaskTemplate"]["ContainerSpec"] == dict(
        Image="web:v1",
        Command=["/bin/web"],
        Args=["--port", "80"],
        Hostname="{{.Task.Name}}",
        User="app",
        Dir="/srv",
        Labels={"version": "2"},
        StopGracePeriod=30 * NS,
    )
    assert wanted["Labels"] == {"tier": "1"}


def test_invalid_stop_grace_period_names_the_option():
    with pytest.raises(ServiceSpecError, match=r"^stop_grace_period: 'soon' is not a duration"):
        wanted_spec(params(image="web:v1", stop_grace_period="soon"), None, NO_RESOLVED)


# ----------------------------------------------------------------- images pinned by digest


def test_tag_of_a_digest_pinned_live_image_is_no_change():
    live = live_spec()
    wanted = wanted_spec(params(image="registry.example.com/web:v1"), live, NO_RESOLVED)
    assert wanted["TaskTemplate"]["ContainerSpec"]["Image"] == "registry.example.com/web:v1@" + DIGEST
    assert spec_differences(live, wanted) == {}


def test_another_tag_is_a_change():
    live = live_spec()
    wanted = wanted_spec(params(image="registry.example.com/web:v2"), live, NO_RESOLVED)
    assert spec_differences(live, wanted) == {
        "TaskTemplate.ContainerSpec.Image": dict(
            before="registry.example.com/web:v1@" + DIGEST, after="registry.example.com/web:v2"
        )
    }


def test_an_explicit_digest_other_than_the_live_one_is_a_change():
    live = live_spec()
    wanted = wanted_spec(params(image="registry.example.com/web:v1@" + OTHER_DIGEST), live, NO_RESOLVED)
    assert spec_differences(live, wanted) == {
        "TaskTemplate.ContainerSpec.Image": dict(
            before="registry.example.com/web:v1@" + DIGEST, after="registry.example.com/web:v1@" + OTHER_DIGEST
        )
    }


def test_the_live_digest_given_explicitly_is_no_change():
    live = live_spec()
    wanted = wanted_spec(params(image="registry.example.com/web:v1@" + DIGEST), live, NO_RESOLVED)
    assert spec_differences(live, wanted) == {}


@pytest.mark.parametrize(
    ("live", "wanted", "matches"),
    [
        ("web:v1@" + DIGEST, "web:v1", True),
        ("web:v1", "web:v1", True),
        ("web:v1@" + DIGEST, "web:v1@" + DIGEST, True),
        ("web:v1@" + DIGEST, "web:v2", False),
        ("web:v1@" + DIGEST, "web:v1@" + OTHER_DIGEST, False),
        ("web:v1", "web:v1@" + DIGEST, False),
        ("web:v1@" + DIGEST, "web", False),
        (None, "web:v1", False),
        ("", "web:v1", False),
    ],
)
def test_image_matches(live, wanted, matches):
    assert image_matches(live, wanted) is matches


def test_untagged_image_matches_the_latest_tag_the_docker_cli_pinned():
    assert image_matches("nginx:latest@" + DIGEST, "nginx") is True


# ----------------------------------------------------------------- durations, sizes, CPUs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10, 10 * NS),
        (1.5, 1_500_000_000),
        (0, 0),
        ("10", 10 * NS),
        ("2.5", 2_500_000_000),
        ("10s", 10 * NS),
        ("1m30s", 90 * NS),
        ("500ms", 500_000_000),
        ("2h", 7200 * NS),
        ("1h2m3s", 3723 * NS),
        ("1.5s", 1_500_000_000),
        ("250us", 250_000),
        ("100ns", 100),
        (" 5s ", 5 * NS),
    ],
)
def test_duration_ns(value, expected):
    assert duration_ns(value, "delay") == expected


def test_duration_of_none_is_none():
    assert duration_ns(None, "delay") is None


@pytest.mark.parametrize("value", ["abc", "10x", "1m30", "s", "-5s", "10 s", "1d", "", True])
def test_invalid_duration_raises_naming_the_option(value):
    with pytest.raises(ServiceSpecError) as raised:
        duration_ns(value, "healthcheck.interval")
    assert str(raised.value).startswith("healthcheck.interval: %r is not a duration" % (value,))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("64M", 64 * 1024 * 1024),
        ("64m", 64 * 1024 * 1024),
        ("64MB", 64 * 1024 * 1024),
        ("64MiB", 64 * 1024 * 1024),
        ("1g", 1024**3),
        ("1.5G", 1536 * 1024**2),
        ("512k", 512 * 1024),
        ("2t", 2 * 1024**4),
        ("100", 100),
        ("100b", 100),
        (512, 512),
        (0, 0),
    ],
)
def test_size_bytes(value, expected):
    assert size_bytes(value, "limits.memory") == expected


def test_size_of_none_is_none():
    assert size_bytes(None, "limits.memory") is None


@pytest.mark.parametrize("value", ["lots", "64X", "-1M", "", "M", "1.2.3M", True])
def test_invalid_size_raises_naming_the_option(value):
    with pytest.raises(ServiceSpecError) as raised:
        size_bytes(value, "reservations.memory")
    assert str(raised.value) == "reservations.memory: %r is not a size (bytes, or like 64M, 1G)" % (value,)


@pytest.mark.parametrize(("value", "expected"), [(0.5, 500_000_000), ("1.5", 1_500_000_000), (2, 2 * NS), (None, None)])
def test_nano_cpus(value, expected):
    assert nano_cpus(value, "limits.cpus") == expected


@pytest.mark.parametrize("value", ["many", [1], ""])
def test_invalid_cpus_raise_naming_the_option(value):
    with pytest.raises(ServiceSpecError) as raised:
        nano_cpus(value, "limits.cpus")
    assert str(raised.value) == "limits.cpus: %r is not a number of CPUs" % (value,)


# ----------------------------------------------------------------- env, update_config


def test_env_dict_becomes_sorted_key_value_strings():
    assert env_list(dict(B="2", A=1, EMPTY=None)) == ["A=1", "B=2", "EMPTY="]


def test_env_list_is_kept_in_order():
    assert env_list(["B=2", "A=1"]) == ["B=2", "A=1"]


def test_env_none_is_none():
    assert env_list(None) is None


def test_update_config_maps_every_field():
    fields = update_config(
        dict(
            parallelism="2",
            failure_action="rollback",
            order="start-first",
            max_failure_ratio="0.25",
            delay="10s",
            monitor=30,
        ),
        "update_config",
    )
    assert fields == dict(
        Parallelism=2,
        FailureAction="rollback",
        Order="start-first",
        MaxFailureRatio=0.25,
        Delay=10 * NS,
        Monitor=30 * NS,
    )


def test_update_config_gives_only_the_fields_set():
    assert update_config(dict(parallelism=2, delay=None, order=None), "update_config") == dict(Parallelism=2)
    assert update_config({}, "update_config") == {}
    assert update_config(None, "update_config") is None


def test_update_config_invalid_duration_names_the_option_and_key():
    with pytest.raises(ServiceSpecError, match=r"^rollback_config\.monitor: 'later' is not a duration"):
        update_config(dict(monitor="later"), "rollback_config")


# ----------------------------------------------------------------- publish


def test_port_configs_are_sorted_with_tcp_and_ingress_defaults():
    ports = port_configs(
        [
            dict(target=443, published=8443),
            dict(target=53, published=53, protocol="udp", mode="host"),
            dict(target=53, published=5353),
            dict(target=80),
        ]
    )
    assert ports == [
        dict(Protocol="tcp", TargetPort=53, PublishMode="ingress", PublishedPort=5353),
        dict(Protocol="udp", TargetPort=53, PublishMode="host", PublishedPort=53),
        dict(Protocol="tcp", TargetPort=80, PublishMode="ingress"),
        dict(Protocol="tcp", TargetPort=443, PublishMode="ingress", PublishedPort=8443),
    ]


def test_port_configs_explicit_none_protocol_and_mode_get_the_defaults():
    assert port_configs([dict(target=80, published=None, protocol=None, mode=None)]) == [
        dict(Protocol="tcp", TargetPort=80, PublishMode="ingress")
    ]


@pytest.mark.parametrize("target", [0, 65536, -1, None, "80"])
def test_invalid_target_raises_with_the_index(target):
    with pytest.raises(ServiceSpecError) as raised:
        port_configs([dict(target=80), dict(target=target)])
    assert str(raised.value) == "publish[1].target: %r is not a port (1-65535)" % (target,)


@pytest.mark.parametrize("published", [0, 65536, 70000])
def test_invalid_published_raises_with_the_index(published):
    with pytest.raises(ServiceSpecError) as raised:
        port_configs([dict(target=80, published=published), dict(target=81, published=81)])
    assert str(raised.value) == "publish[0].published: %r is not a port (1-65535)" % (published,)


def test_publish_sets_the_endpoint_ports_and_keeps_the_endpoint_mode():
    live = live_spec()
    wanted = wanted_spec(params(publish=[dict(target=80, published=80)]), live, NO_RESOLVED)
    assert wanted["EndpointSpec"] == dict(
        Mode="vip", Ports=[dict(Protocol="tcp", TargetPort=80, PublishMode="ingress", PublishedPort=80)]
    )
    assert spec_differences(live, wanted) == {
        "EndpointSpec.Ports": dict(
            before=[dict(Protocol="tcp", TargetPort=80, PublishedPort=8080, PublishMode="ingress")],
            after=[dict(Protocol="tcp", TargetPort=80, PublishMode="ingress", PublishedPort=80)],
        )
    }


def test_endpoint_mode_dnsrr():
    wanted = wanted_spec(params(image="web:v1", endpoint_mode="dnsrr"), None, NO_RESOLVED)
    assert wanted["EndpointSpec"] == dict(Mode="dnsrr")


# ----------------------------------------------------------------- networks, secrets, configs, mounts, healthcheck


def test_attachment_of_a_name_resolves_the_id():
    assert attachment("backend", dict(backend="net-1")) == dict(Target="net-1")


def test_attachment_with_aliases():
    assert attachment(dict(name="backend", aliases=["api", "api-v1"]), dict(backend="net-1")) == dict(
        Target="net-1", Aliases=["api", "api-v1"]
    )


def test_attachment_with_empty_aliases_has_none():
    assert attachment(dict(name="backend", aliases=[]), dict(backend="net-1")) == dict(Target="net-1")


def test_networks_are_resolved_sorted_and_leave_the_deprecated_place():
    live = live_spec()
    live["Networks"] = [dict(Target="old-net")]
    resolved = dict(NO_RESOLVED, networks=dict(frontend="net-b", backend="net-a"))
    wanted = wanted_spec(params(networks=["frontend", dict(name="backend", aliases=["api"])]), live, resolved)
    assert wanted["TaskTemplate"]["Networks"] == [dict(Target="net-a", Aliases=["api"]), dict(Target="net-b")]
    assert "Networks" not in wanted


def test_reference_defaults_to_root_and_mode_0444():
    assert reference(dict(source="db_password"), "sec-1", "SecretID", "SecretName") == dict(
        SecretID="sec-1",
        SecretName="db_password",
        File=dict(Name="db_password", UID="0", GID="0", Mode=0o444),
    )


def test_reference_with_target_uid_gid_and_mode():
    ref = dict(source="app.conf", target="/etc/app.conf", uid=1000, gid="1001", mode=0o440)
    assert reference(ref, "cfg-1", "ConfigID", "ConfigName") == dict(
        ConfigID="cfg-1",
        ConfigName="app.conf",
        File=dict(Name="/etc/app.conf", UID="1000", GID="1001", Mode=0o440),
    )


def test_reference_string_mode_is_octal():
    ref = dict(source="db_password", mode="0440")
    assert reference(ref, "sec-1", "SecretID", "SecretName")["File"]["Mode"] == 0o440


def test_secrets_and_configs_are_resolved_to_ids():
    resolved = dict(NO_RESOLVED, secrets=dict(db_password="sec-1"), configs=dict(nginx_conf="cfg-9"))
    wanted = wanted_spec(
        params(
            image="web:v1",
            secrets=[dict(source="db_password")],
            configs=[dict(source="nginx_conf", target="/etc/nginx/nginx.conf")],
        ),
        None,
        resolved,
    )
    container = wanted["TaskTemplate"]["ContainerSpec"]
    assert container["Secrets"] == [
        dict(SecretID="sec-1", SecretName="db_password", File=dict(Name="db_password", UID="0", GID="0", Mode=0o444))
    ]
    assert container["Configs"] == [
        dict(
            ConfigID="cfg-9",
            ConfigName="nginx_conf",
            File=dict(Name="/etc/nginx/nginx.conf", UID="0", GID="0", Mode=0o444),
        )
    ]


def test_mount_defaults_to_a_writable_volume():
    assert mount(dict(source="data", target="/data"), 0) == dict(Type="volume", Target="/data", Source="data")


def test_mount_bind_readonly_and_tmpfs_without_source():
    assert mount(dict(type="bind", source="/etc/ssl", target="/ssl", readonly=True), 0) == dict(
        Type="bind", Target="/ssl", ReadOnly=True, Source="/etc/ssl"
    )
    assert mount(dict(type="tmpfs", target="/tmp"), 1) == dict(Type="tmpfs", Target="/tmp")


@pytest.mark.parametrize("m", [dict(source="data"), dict(source="data", target=""), dict(target=None)])
def test_mount_needs_a_target(m):
    with pytest.raises(ServiceSpecError) as raised:
        mount(m, 2)
    assert str(raised.value) == "mounts[2].target is required"


def test_wanted_spec_reports_the_index_of_the_mount_without_target():
    with pytest.raises(ServiceSpecError, match=r"^mounts\[1\]\.target is required$"):
        wanted_spec(params(image="web:v1", mounts=[dict(target="/a"), dict(source="b")]), None, NO_RESOLVED)


def test_unchanged_writable_mount_is_no_change():
    live = live_spec()
    live["TaskTemplate"]["ContainerSpec"]["Mounts"] = [dict(Type="volume", Source="data", Target="/data")]
    wanted = wanted_spec(params(mounts=[dict(source="data", target="/data")]), live, NO_RESOLVED)
    assert spec_differences(live, wanted) == {}


def test_healthcheck_string_is_a_shell_command_with_durations():
    check = dict(test="curl -f http://localhost/", interval="30s", timeout=5, start_period="1m", retries=3)
    assert healthcheck(check) == dict(
        Test=["CMD-SHELL", "curl -f http://localhost/"],
        Interval=30 * NS,
        Timeout=5 * NS,
        StartPeriod=60 * NS,
        Retries=3,
    )


def test_healthcheck_list_is_kept_and_no_test_disables_it():
    assert healthcheck(dict(test=["CMD", "/healthy"])) == dict(Test=["CMD", "/healthy"])
    assert healthcheck({}) == dict(Test=["NONE"])


def test_healthcheck_invalid_duration_names_the_key():
    with pytest.raises(ServiceSpecError, match=r"^healthcheck\.timeout: 'x' is not a duration"):
        healthcheck(dict(test="true", timeout="x"))


# ----------------------------------------------------------------- mode


def test_mode_global_on_a_replicated_service():
    live = live_spec()
    wanted = wanted_spec(params(mode="global"), live, NO_RESOLVED)
    assert wanted["Mode"] == dict(Global={})
    assert mode_of(live) == "replicated"
    assert mode_of(wanted) == "global"


def test_mode_replicated_on_a_global_service_without_replicas_gets_one():
    live = live_spec()
    live["Mode"] = dict(Global={})
    wanted = wanted_spec(params(mode="replicated"), live, NO_RESOLVED)
    assert wanted["Mode"] == dict(Replicated=dict(Replicas=1))
    assert mode_of(wanted) == "replicated"


def test_mode_replicated_without_replicas_keeps_the_live_count():
    wanted = wanted_spec(params(mode="replicated"), live_spec(), NO_RESOLVED)
    assert wanted["Mode"] == dict(Replicated=dict(Replicas=2))


def test_zero_replicas_is_kept_and_is_a_change():
    live = live_spec()
    wanted = wanted_spec(params(replicas=0), live, NO_RESOLVED)
    assert wanted["Mode"] == dict(Replicated=dict(Replicas=0))
    assert spec_differences(live, wanted) == {"Mode.Replicated.Replicas": dict(before=2, after=0)}


@pytest.mark.parametrize(
    ("spec", "mode"),
    [
        (dict(Mode=dict(Global={})), "global"),
        (dict(Mode=dict(Replicated=dict(Replicas=3))), "replicated"),
        (dict(Mode=None), "replicated"),
        ({}, "replicated"),
        (None, "replicated"),
    ],
)
def test_mode_of(spec, mode):
    assert mode_of(spec) == mode


# ----------------------------------------------------------------- spec_differences


@pytest.mark.parametrize("empty", [None, {}, [], ""])
def test_spec_differences_ignores_empty_containers_on_either_side(empty):
    full = dict(Name="web", Labels=dict(a="1"))
    assert spec_differences(full, dict(full, Extra=empty)) == {}
    assert spec_differences(dict(full, Extra=empty), full) == {}
    assert spec_differences(dict(full, Labels=dict(a="1", b=empty)), full) == {}


def test_spec_differences_of_empty_specs():
    assert spec_differences(None, None) == {}
    assert spec_differences({}, dict(Labels={}, Networks=[])) == {}


def test_spec_differences_reports_nested_leaf_paths():
    before = dict(Name="web", TaskTemplate=dict(ContainerSpec=dict(Image="a", User="root"), ForceUpdate=0))
    after = dict(Name="web", TaskTemplate=dict(ContainerSpec=dict(Image="b", User="root"), ForceUpdate=1))
    assert spec_differences(before, after) == {
        "TaskTemplate.ContainerSpec.Image": dict(before="a", after="b"),
        "TaskTemplate.ForceUpdate": dict(before=0, after=1),
    }


def test_spec_differences_added_and_removed_keys():
    assert spec_differences(dict(A=dict(B=1)), dict(A=dict(C=2))) == {
        "A.B": dict(before=1, after=None),
        "A.C": dict(before=None, after=2),
    }


def test_spec_differences_zero_and_false_are_values_not_empties():
    assert spec_differences({}, dict(Replicas=0, ReadOnly=False)) == {
        "ReadOnly": dict(before=None, after=False),
        "Replicas": dict(before=None, after=0),
    }


def test_spec_differences_compares_lists_whole():
    before = dict(Env=["A=1", "B=2"])
    assert spec_differences(before, dict(Env=["B=2", "A=1"])) == {
        "Env": dict(before=["A=1", "B=2"], after=["B=2", "A=1"])
    }


def test_spec_differences_ignores_empty_containers_inside_list_items():
    before = dict(Mounts=[dict(Type="volume", Target="/d", VolumeOptions={})])
    assert spec_differences(before, dict(Mounts=[dict(Type="volume", Target="/d")])) == {}


def test_spec_differences_of_a_new_service_lists_every_leaf():
    changes = spec_differences({}, dict(Name="web", Mode=dict(Replicated=dict(Replicas=1))))
    assert changes == {
        "Mode": dict(before=None, after=dict(Replicated=dict(Replicas=1))),
        "Name": dict(before=None, after="web"),
    }


def test_spec_differences_ignores_a_dict_of_only_empty_containers():
    assert spec_differences({}, dict(EndpointSpec=dict(Ports=[]))) == {}
    assert spec_differences({}, dict(A=dict(B={}, C=[], D=None))) == {}
    assert spec_differences(dict(T=dict(x=1)), dict(T=dict(x=1, P=dict(Q=dict(R={}))))) == {}


# ----------------------------------------------------------------- validate_service_list


def test_validate_a_valid_list_gives_no_errors():
    services = [
        dict(name="web", replicas=2, publish=[dict(target=80, published=80)]),
        dict(name="dns", publish=[dict(target=53, published=53, protocol="udp"), dict(target=53, published=53)]),
        dict(name="worker", replicas=0, publish=[dict(target=9000)]),
        dict(name="api", publish=[dict(target=80, published=80, protocol="udp")]),
    ]
    assert validate_service_list(services) == []
    assert validate_service_list([]) == []
    assert validate_service_list(None) == []


def test_validate_missing_name():
    assert validate_service_list([dict(name="web"), dict(image="x", replicas=-1), dict(name="")]) == [
        "swarm_services[1] has no name. Fix: give every service a name.",
        "swarm_services[2] has no name. Fix: give every service a name.",
    ]


def test_validate_duplicate_names_give_both_indexes():
    errors = validate_service_list([dict(name="web"), dict(name="api"), dict(name="web")])
    assert errors == ["service web is declared twice (swarm_services[0] and [2]). Fix: keep one."]


@pytest.mark.parametrize("replicas", [-1, "2", 1.5, True, False])
def test_validate_replicas_must_be_a_whole_number(replicas):
    assert validate_service_list([dict(name="web", replicas=replicas)]) == [
        "service web: replicas=%r is not a whole number >= 0." % (replicas,)
    ]


@pytest.mark.parametrize(
    ("port", "key", "value"),
    [
        (dict(target=0), "target", 0),
        (dict(target=65536), "target", 65536),
        (dict(target=None), "target", None),
        (dict(target="80"), "target", "80"),
        (dict(target=True), "target", True),
        (dict(target=80, published=0), "published", 0),
        (dict(target=80, published=70000), "published", 70000),
    ],
)
def test_validate_ports_out_of_range(port, key, value):
    errors = validate_service_list([dict(name="web", publish=[dict(target=443, published=443), port])])
    assert errors == ["service web: publish[1].%s=%r is not a port (1-65535)." % (key, value)]


def test_validate_same_published_port_on_two_services_names_both():
    errors = validate_service_list(
        [
            dict(name="web", publish=[dict(target=80, published=8080)]),
            dict(name="api", publish=[dict(target=3000, published=8080, protocol="tcp")]),
        ]
    )
    assert errors == ["service api: published port 8080/tcp is also published by service web. Fix: use another port."]


def test_validate_same_published_port_with_another_protocol_is_no_conflict():
    services = [
        dict(name="dns-tcp", publish=[dict(target=53, published=53)]),
        dict(name="dns-udp", publish=[dict(target=53, published=53, protocol="udp")]),
    ]
    assert validate_service_list(services) == []


@pytest.mark.parametrize("absent_first", [True, False])
def test_validate_removed_service_does_not_count_for_port_conflicts(absent_first):
    old = dict(name="old-web", state="absent", publish=[dict(target=80, published=80)])
    new = dict(name="web", state="present", publish=[dict(target=8080, published=80)])
    services = [old, new] if absent_first else [new, old]
    assert validate_service_list(services) == []


def test_validate_reports_every_error():
    errors = validate_service_list(
        [
            dict(name="web", replicas=-2, publish=[dict(target=80, published=80)]),
            dict(name="web", publish=[dict(target=99999, published=80)]),
        ]
    )
    assert errors == [
        "service web: replicas=-2 is not a whole number >= 0.",
        "service web is declared twice (swarm_services[0] and [1]). Fix: keep one.",
        "service web: publish[0].target=99999 is not a port (1-65535).",
    ]


# ----------------------------------------------------------------- swarm_service.py: timestamp, summary


def test_timestamp_with_a_fraction():
    expected = datetime(2026, 11, 25, 21, 30, 1, tzinfo=timezone.utc).timestamp() + 0.5
    assert timestamp("2026-11-25T21:30:01.5Z") == expected
    assert timestamp("2026-11-25T21:30:01.5Z") == 1795642201.5


def test_timestamp_with_nanoseconds_and_without_a_fraction():
    assert timestamp("2026-11-25T21:30:01.123456789Z") == pytest.approx(1795642201.123456789, abs=1e-6)
    assert timestamp("2026-11-25T21:30:01Z") == 1795642201.0
    assert timestamp("1970-01-01T00:00:00Z") == 0.0


@pytest.mark.parametrize("text", ["", None])
def test_timestamp_of_nothing_is_zero(text):
    assert timestamp(text) == 0


def test_summary_of_a_replicated_service():
    service = dict(ID="svc-1", Spec=live_spec())
    assert summary(service) == dict(
        name="web", id="svc-1", mode="replicated", replicas=2, image="registry.example.com/web:v1@" + DIGEST
    )


def test_summary_of_a_global_service_has_no_replicas():
    spec = live_spec()
    spec["Mode"] = dict(Global={})
    assert summary(dict(ID="svc-2", Spec=spec)) == dict(
        name="web", id="svc-2", mode="global", replicas=None, image="registry.example.com/web:v1@" + DIGEST
    )


@pytest.mark.parametrize("service", [None, {}])
def test_summary_of_no_service_is_empty(service):
    assert summary(service) == {}


# --------------------------------------------------------------------------- the sections of the spec


def test_each_section_sets_only_its_own_part_of_the_spec():
    given = params(
        image="web:2",
        env=dict(A="1"),
        constraints=["node.role==worker"],
        limits=dict(memory="64M"),
        restart_policy=dict(condition="on-failure"),
        replicas=3,
        publish=[dict(target=80, published=8080)],
    )
    container, placement, task, mode, endpoint = {}, {}, {}, {}, {}
    set_container(container, given, NO_RESOLVED, keep_image=False)
    set_placement(placement, given)
    set_resources(task, given)
    set_mode(mode, given)
    set_endpoint(endpoint, given)
    assert container == dict(Image="web:2", Env=["A=1"])
    assert placement == dict(Constraints=["node.role==worker"])
    assert task == dict(
        Resources=dict(Limits=dict(MemoryBytes=64 * 1024**2)), RestartPolicy=dict(Condition="on-failure")
    )
    assert mode == dict(Mode=dict(Replicated=dict(Replicas=3)))
    assert endpoint == dict(Ports=[dict(Protocol="tcp", TargetPort=80, PublishMode="ingress", PublishedPort=8080)])


def test_a_constraint_without_an_operator_names_its_index():
    with pytest.raises(ServiceSpecError, match=r"constraints\[1\]: 'node.role=worker' is not a constraint"):
        wanted_spec(params(constraints=["node.role==worker", "node.role=worker"]), live_spec(), NO_RESOLVED)


# --------------------------------------------------------------------------- nodes a service can run on


def api_node(node_id="n1", role="worker", state="ready", availability="active", labels=None, **extra):
    description = dict(
        Hostname=extra.get("hostname", node_id),
        Platform=dict(Architecture=extra.get("arch", "x86_64"), OS=extra.get("os", "linux")),
        Engine=dict(Labels=extra.get("engine_labels") or {}),
    )
    return dict(
        ID=node_id,
        Spec=dict(Role=role, Availability=availability, Labels=labels or {}),
        Status=dict(State=state, Addr=extra.get("addr", "10.1.2.3")),
        Description=description,
    )


@pytest.mark.parametrize(
    ("constraint", "matches"),
    [
        ("node.role==worker", True),
        ("node.role == WORKER", True),  # spaces and case do not matter for values
        ("node.role!=worker", False),
        ("node.hostname==n1", True),
        ("node.id!=n1", False),
        ("node.labels.zone==eu", True),
        ("node.labels.Zone==eu", False),  # label names keep their case
        ("node.labels.rack!=r1", True),  # a missing label is ''
        ("engine.labels.ssd==true", True),
        ("node.platform.os==linux", True),
        ("node.platform.arch==x86_64", True),
        ("node.ip==10.1.2.3", True),
        ("node.ip==10.1.0.0/16", True),
        ("node.ip!=10.9.0.0/16", True),
        ("node.ip==not-an-address", False),
        ("node.unknown==x", False),
        ("no operator", False),
    ],
)
def test_constraints_match_nodes_as_the_engine_does(constraint, matches):
    worker = api_node(labels={"zone": "eu"}, engine_labels={"ssd": "true"})
    assert constraint_matches(constraint, worker) is matches


def test_platforms_match_with_the_engines_architecture_names():
    amd64 = api_node(arch="x86_64")
    assert platform_matches([], amd64)
    assert platform_matches([dict(Architecture="amd64", OS="linux")], amd64)
    assert platform_matches([dict(Architecture="", OS="linux")], amd64)
    assert not platform_matches([dict(Architecture="arm64", OS="linux")], amd64)
    assert platform_matches([dict(Architecture="arm64")], api_node(arch="aarch64"))


def test_eligible_nodes_are_ready_active_and_match_constraints_and_platforms():
    nodes = [
        api_node("ok"),
        api_node("manager", role="manager"),
        api_node("down", state="down"),
        api_node("drained", availability="drain"),
        api_node("paused", availability="pause"),
        api_node("arm", arch="aarch64"),
    ]
    spec = dict(
        TaskTemplate=dict(
            Placement=dict(Constraints=["node.role==worker"], Platforms=[dict(Architecture="amd64", OS="linux")])
        )
    )
    assert [n["ID"] for n in eligible_nodes(nodes, spec)] == ["ok"]
    assert len(eligible_nodes(nodes, dict(TaskTemplate={}))) == 3  # ok, manager, arm


# --------------------------------------------------------------------------- rebuilds


def test_only_a_mode_change_needs_a_rebuild():
    replicated, global_ = dict(Mode=dict(Replicated=dict(Replicas=2))), dict(Mode=dict(Global={}))
    assert rebuild_reasons(replicated, global_) == ["mode replicated -> global"]
    assert rebuild_reasons(global_, replicated) == ["mode global -> replicated"]
    assert rebuild_reasons(replicated, dict(Mode=dict(Replicated=dict(Replicas=5)))) == []
    assert rebuild_reasons(None, global_) == []


def test_a_restorable_spec_pins_the_ports_the_swarm_picked_and_keeps_the_rest():
    service = dict(
        Spec=dict(
            Name="web",
            EndpointSpec=dict(
                Ports=[
                    dict(TargetPort=80, Protocol="tcp", PublishMode="ingress"),
                    dict(TargetPort=53, Protocol="udp", PublishedPort=5353, PublishMode="ingress"),
                ]
            ),
        ),
        Endpoint=dict(
            Ports=[
                dict(TargetPort=80, Protocol="tcp", PublishMode="ingress", PublishedPort=30001),
                dict(TargetPort=53, Protocol="udp", PublishMode="ingress", PublishedPort=5353),
            ]
        ),
    )
    spec = restorable_spec(service)
    assert [p["PublishedPort"] for p in spec["EndpointSpec"]["Ports"]] == [30001, 5353]
    assert "PublishedPort" not in service["Spec"]["EndpointSpec"]["Ports"][0]  # the live object is untouched


def test_describe_spec_names_what_a_restore_brings_back():
    spec = dict(
        Mode=dict(Replicated=dict(Replicas=1)),
        TaskTemplate=dict(
            ContainerSpec=dict(
                Image="web:v1@" + DIGEST,
                Secrets=[dict(SecretName="db_1")],
                Configs=[dict(ConfigName="site_2")],
            ),
            Networks=[dict(Target="id-front")],
        ),
        EndpointSpec=dict(Ports=[dict(TargetPort=80, PublishedPort=8080, Protocol="tcp")]),
    )
    assert describe_spec(spec, {"id-front": "front"}) == (
        "replicated, 1 replica of web:v1; ports 8080->80/tcp; networks front; secrets db_1; configs site_2"
    )
    assert describe_spec(dict(Mode=dict(Global={}), TaskTemplate=dict(ContainerSpec=dict(Image="a")))) == "global of a"


# --------------------------------------------------------------------------- env values in output


def test_masked_env_keeps_key_names_and_marks_changed_values():
    assert masked_env(["A=1", "B=secret", "INHERITED"]) == ["A=" + HIDDEN, "B=" + HIDDEN, "INHERITED"]
    assert masked_env(["A=1", "B=new", "C=x"], compare_with=["A=1", "B=old"]) == [
        "A=" + HIDDEN,
        "B=" + HIDDEN_CHANGED,
        "C=" + HIDDEN,
    ]


def test_masked_changes_hide_env_values_and_leave_other_changes_alone():
    changes = {
        "TaskTemplate.ContainerSpec.Env": dict(before=["PASSWORD=old"], after=["PASSWORD=new", "USER=app"]),
        "Mode.Replicated.Replicas": dict(before=1, after=2),
    }
    masked = masked_changes(changes)
    assert masked["TaskTemplate.ContainerSpec.Env"] == dict(
        before=["PASSWORD=" + HIDDEN], after=["PASSWORD=" + HIDDEN_CHANGED, "USER=" + HIDDEN]
    )
    assert masked["Mode.Replicated.Replicas"] == dict(before=1, after=2)
    assert changes["TaskTemplate.ContainerSpec.Env"]["before"] == ["PASSWORD=old"]  # the plan itself is untouched
    added = masked_changes({"TaskTemplate.ContainerSpec.Env": dict(before=None, after=["PASSWORD=x"])})
    assert added["TaskTemplate.ContainerSpec.Env"] == dict(before=None, after=["PASSWORD=" + HIDDEN])


def test_a_new_service_shows_its_env_keys_only():
    spec = wanted_spec(params(image="web", env=dict(PASSWORD="hunter2")), None, NO_RESOLVED)
    shown = masked_changes(spec_differences({}, spec))
    assert "hunter2" not in repr(shown)


def test_masked_params_hide_env_values_given_as_a_dict_or_a_list():
    assert masked_params(dict(name="web", env=dict(PASSWORD="x")))["env"] == dict(PASSWORD=HIDDEN)
    assert masked_params(dict(name="web", env=["PASSWORD=x"]))["env"] == ["PASSWORD=" + HIDDEN]
    assert masked_params(dict(name="web", env=None)) == dict(name="web", env=None)


def test_env_given_as_a_string_on_the_command_line_is_read_as_a_dict_never_split_into_letters():
    # `ansible host -m swarm_service -a "env={'PW':'secret'}"` hands the module a string
    assert env_list("{'PW': 'pass-1'}") == env_list('{"PW": "pass-1"}') == ["PW=pass-1"]
    assert env_list("A=1 B=2") == ["A=1", "B=2"]
    assert masked_params(dict(name="web", env="{'PW': 'pass-1'}"))["env"] == ["PW=<hidden>"]
    with pytest.raises(ServiceSpecError) as caught:
        env_list("pass-1")
    assert "pass-1" not in str(caught.value) and "its text is not shown" in str(caught.value)
    assert masked_params(dict(name="web", env="pass-1"))["env"] == "<hidden>"

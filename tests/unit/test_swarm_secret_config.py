"""Versioned swarm secrets and configs: the pure logic of plugins/module_utils/swarm_versioned.py, and the
runs of swarm_secret / swarm_config against an in-memory engine."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import EngineClient, SwarmDecisionError
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_versioned import (
    CONFIG,
    HASH_LABEL,
    NAME_LABEL,
    SECRET,
    VersionedObjectManager,
    check_name,
    check_size,
    choose_prune,
    content_hash,
    created_key,
    find_for_hash,
    object_hash,
    resolve_data,
    service_refs,
    services_using,
    version_name,
    versions_of,
    wanted_labels,
)

HELLO_SHA256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"


def api_object(name, obj_id=None, labels=None, created="2026-01-01T00:00:00Z", index=1, data=None):
    """A secret or config as the engine lists it (configs carry Spec.Data, base64)."""
    spec = dict(Name=name, Labels=labels or {})
    if data is not None:
        spec["Data"] = base64.b64encode(data).decode("ascii")
    return dict(ID=obj_id or "id-" + name, Spec=spec, CreatedAt=created, Version=dict(Index=index))


def version(name, value, created, obj_id=None):
    digest = content_hash(value)
    return api_object(version_name(name, value), obj_id, labels={NAME_LABEL: name, HASH_LABEL: digest}, created=created)


def api_service(name, secrets=(), configs=(), previous_secrets=(), credential_config=None):
    def spec(secret_refs):
        container = dict(
            Image="web",
            Secrets=[dict(SecretID=i, SecretName=n, File=dict(Name=n)) for i, n in secret_refs],
            Configs=[dict(ConfigID=i, ConfigName=n, File=dict(Name=n)) for i, n in configs],
        )
        if credential_config:
            container["Privileges"] = dict(CredentialSpec=dict(Config=credential_config))
        return dict(Name=name, TaskTemplate=dict(ContainerSpec=container))

    service = dict(ID="svc-" + name, Spec=spec(secrets))
    if previous_secrets:
        service["PreviousSpec"] = spec(previous_secrets)
    return service


# --------------------------------------------------------------------------- names and values


def test_version_name_is_the_name_and_the_first_12_hex_of_the_sha256():
    assert content_hash(b"hello") == HELLO_SHA256
    assert version_name("db_password", b"hello") == "db_password_2cf24dba5fb0"
    assert version_name("db_password", "hello") == version_name("db_password", b"hello")


def test_different_values_give_different_version_names():
    assert version_name("db", "one") != version_name("db", "two")
    assert version_name("db", "one") != version_name("web", "one")


@pytest.mark.parametrize("name", ["db", "db_password", "a.b-c_d", "x" * 51])
def test_valid_names_pass(name):
    check_name(name, versioned=True, kind=SECRET)


@pytest.mark.parametrize("name", ["", "-db", "db_", "db password", "db/password", "é"])
def test_names_the_engine_refuses_fail_with_the_rule(name):
    with pytest.raises(SwarmDecisionError, match="may only hold letters, digits"):
        check_name(name, versioned=True, kind=SECRET)


def test_a_versioned_name_leaves_room_for_the_suffix():
    with pytest.raises(SwarmDecisionError, match="at most 51 once the version suffix"):
        check_name("x" * 52, versioned=True, kind=CONFIG)
    check_name("x" * 64, versioned=False, kind=CONFIG)
    with pytest.raises(SwarmDecisionError, match="a config name holds at most 64: choose a shorter name"):
        check_name("x" * 65, versioned=False, kind=CONFIG)


def test_resolve_data_takes_text_base64_or_a_file(tmp_path):
    assert resolve_data("pässword") == "pässword".encode()
    assert resolve_data(base64.b64encode(b"\x00\xffbin").decode(), data_is_b64=True) == b"\x00\xffbin"
    source = tmp_path / "key"
    source.write_bytes(b"\x01file\n")
    assert resolve_data(data_src=str(source)) == b"\x01file\n"


def test_resolve_data_explains_bad_input(tmp_path):
    with pytest.raises(SwarmDecisionError, match="data_is_b64 is true but data is not valid base64"):
        resolve_data("not base64!", data_is_b64=True)
    with pytest.raises(SwarmDecisionError, match=r"cannot read data_src .*missing.*read there, not on the controller"):
        resolve_data(data_src=str(tmp_path / "missing"))
    with pytest.raises(SwarmDecisionError, match="needs data or data_src"):
        resolve_data()


def test_check_size_follows_the_engine_limits():
    with pytest.raises(SwarmDecisionError, match="empty"):
        check_size(b"", SECRET)
    with pytest.raises(SwarmDecisionError, match="smaller than 512000 bytes"):
        check_size(b"x" * 500 * 1024, SECRET)
    check_size(b"x" * 600 * 1024, CONFIG)
    with pytest.raises(SwarmDecisionError, match="a swarm config must be smaller than 1024000 bytes"):
        check_size(b"x" * 1000 * 1024, CONFIG)


def test_wanted_labels_are_strings_and_swarmplane_labels_win():
    assert wanted_labels("db", "abc", {"tier": 1, NAME_LABEL: "other"}) == {
        "tier": "1",
        NAME_LABEL: "db",
        HASH_LABEL: "abc",
    }


# --------------------------------------------------------------------------- versions and hashes


def test_object_hash_reads_the_label_or_a_configs_data():
    assert object_hash(api_object("a", labels={HASH_LABEL: "abc"}), SECRET) == "abc"
    assert object_hash(api_object("a", data=b"hello"), CONFIG) == HELLO_SHA256
    # the engine never returns secret data: without the label the hash is unknown
    assert object_hash(api_object("a"), SECRET) is None
    assert object_hash(api_object("a", data=b"hello"), SECRET) is None


def test_created_key_orders_times_whose_trailing_zeros_are_dropped():
    times = [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00.123456789Z",
        "2026-01-01T00:00:00.5Z",
        "2026-01-01T00:00:01.00001Z",
    ]
    objects = [api_object(str(i), created=t) for i, t in enumerate(times)]
    assert sorted(reversed(objects), key=created_key) == objects


def test_versions_of_a_name_are_its_labelled_objects_and_the_exact_name_newest_first():
    old = version("db", "one", "2026-01-01T00:00:00Z")
    new = version("db", "two", "2026-01-02T00:00:00Z")
    plain = api_object("db", created="2026-01-01T12:00:00Z")
    others = [
        api_object("db2"),
        api_object("db_2cf24dba5fb0"),  # looks like a version, but is not labelled as one
        version("dbx", "one", "2026-01-03T00:00:00Z"),
    ]
    assert versions_of([old, *others, new, plain], "db") == [new, plain, old]
    assert versions_of([], "db") == []


def test_find_for_hash_finds_the_version_holding_the_value():
    one = version("db", "one", "2026-01-01T00:00:00Z")
    two = version("db", "two", "2026-01-02T00:00:00Z")
    assert find_for_hash([two, one], content_hash("one"), SECRET) is one
    assert find_for_hash([two, one], content_hash("three"), SECRET) is None


def test_find_for_hash_prefers_the_wanted_name_when_several_hold_the_value():
    digest = content_hash("one")
    plain = api_object("db", labels={NAME_LABEL: "db", HASH_LABEL: digest}, created="2026-01-02T00:00:00Z")
    versioned = version("db", "one", "2026-01-01T00:00:00Z")
    assert find_for_hash([plain, versioned], digest, SECRET, prefer=version_name("db", "one")) is versioned
    assert find_for_hash([plain, versioned], digest, SECRET) is plain


# --------------------------------------------------------------------------- services


def test_services_using_an_object_match_its_id_or_name():
    secret = api_object("db_abc", obj_id="s1")
    services = [
        api_service("by-id", secrets=[("s1", "other-name")]),
        api_service("by-name", secrets=[("", "db_abc")]),
        api_service("unrelated", secrets=[("s2", "db_def")]),
        api_service("config-only", configs=[("s1", "db_abc")]),
    ]
    assert services_using(services, secret, SECRET) == ["by-id", "by-name"]
    assert services_using(services, secret, CONFIG) == ["config-only"]
    assert services_using([], secret, SECRET) == []


def test_a_previous_spec_counts_only_when_asked():
    secret = api_object("db_old", obj_id="old")
    service = api_service("app", secrets=[("new", "db_new")], previous_secrets=[("old", "db_old")])
    assert services_using([service], secret, SECRET) == []
    assert services_using([service], secret, SECRET, previous=True) == ["app"]


def test_a_credential_spec_uses_a_config():
    service = api_service("win", credential_config="c9")
    assert "c9" in service_refs(service, CONFIG)
    assert services_using([service], api_object("gmsa", obj_id="c9"), CONFIG) == ["win"]
    assert services_using([service], api_object("gmsa", obj_id="c9"), SECRET) == []


def test_a_service_without_container_spec_uses_nothing():
    assert service_refs(dict(Spec=dict(Name="x", TaskTemplate={})), SECRET) == set()
    assert service_refs(dict(), CONFIG) == set()


# --------------------------------------------------------------------------- pruning


def test_prune_keeps_the_current_and_the_newest_old_versions():
    ordered = ["v5", "v4", "v3", "v2", "v1"]
    assert choose_prune(ordered, 2, in_use=()) == ["v2", "v1"]
    assert choose_prune(ordered, 0, in_use=()) == ["v4", "v3", "v2", "v1"]
    assert choose_prune(ordered, 4, in_use=()) == []
    assert choose_prune(ordered, 10, in_use=()) == []
    assert choose_prune(["v1"], 0, in_use=()) == []


def test_prune_never_removes_a_version_in_use_nor_the_current_one():
    ordered = ["v5", "v4", "v3", "v2", "v1"]
    assert choose_prune(ordered, 1, in_use={"v2"}) == ["v3", "v1"]
    assert choose_prune(ordered, 0, in_use={"v5", "v4", "v3", "v2", "v1"}) == []
    assert "v5" not in choose_prune(ordered, 0, in_use=())


def test_prune_refuses_a_negative_keep():
    with pytest.raises(SwarmDecisionError, match="keep_versions is -1: give 0 or more"):
        choose_prune(["a", "b"], -1, in_use=())


# --------------------------------------------------------------------------- runs against an in-memory engine


class Failed(Exception):
    def __init__(self, msg, **kwargs):
        super().__init__(msg)
        self.msg = msg
        self.result = kwargs


class FakeModule:
    def __init__(self, params, check_mode=False):
        self.params = params
        self.check_mode = check_mode


class FakeApi:
    """The engine's secrets, configs and services, with its rule that an object in use cannot be removed."""

    def __init__(self, kind, objects=(), services=()):
        self.kind = kind
        self.objects = list(objects)
        self.service_list = list(services)
        self.writes = []

    def _list(self):
        return [json.loads(json.dumps(o)) for o in self.objects]

    def secrets(self):
        assert self.kind is SECRET
        return self._list()

    def configs(self):
        assert self.kind is CONFIG
        return self._list()

    def services(self):
        return self.service_list

    def _remove(self, obj_id):
        obj = next(o for o in self.objects if o["ID"] == obj_id)
        users = services_using(self.service_list, obj, self.kind)
        assert not users, "the engine refuses to remove %s: in use by %s" % (obj_id, users)
        self.objects.remove(obj)
        self.writes.append(("rm", obj["Spec"]["Name"]))

    remove_secret = remove_config = _remove


class FakeClient:
    """EngineClient's interface over FakeApi."""

    def __init__(self, api, manager=True):
        self.api = api
        self.manager = manager
        self.clock = 0

    def fail(self, msg, **kwargs):
        raise Failed(msg, **kwargs)

    def info(self):
        return dict(Swarm=dict(LocalNodeState="active", ControlAvailable=self.manager))

    require_manager = EngineClient.require_manager

    def call(self, doing, func, *args, **kwargs):
        return func(*args, **kwargs)

    def post_json(self, doing, path, body, params=None):
        api = self.api
        if path.endswith("/create"):
            assert path == api.kind.path + "/create"
            assert body["Name"] not in {o["Spec"]["Name"] for o in api.objects}, "name conflict"
            self.clock += 1
            spec = dict(Name=body["Name"], Labels=body["Labels"])
            if api.kind.data_readable:
                spec["Data"] = body["Data"]
            obj_id = "new-%d" % self.clock
            api.objects.append(
                dict(ID=obj_id, Spec=spec, CreatedAt="2026-06-01T00:00:%02dZ" % self.clock, Version=dict(Index=1))
            )
            api.writes.append(("create", body["Name"], base64.b64decode(body["Data"])))
            return json.dumps(dict(ID=obj_id))
        obj_id = path.split("/")[2]
        obj = next(o for o in api.objects if o["ID"] == obj_id)
        assert path == "%s/%s/update" % (api.kind.path, obj_id)
        assert params == dict(version=obj["Version"]["Index"])
        assert set(body) == {"Name", "Labels"} and body["Name"] == obj["Spec"]["Name"]
        obj["Spec"]["Labels"] = body["Labels"]
        obj["Version"]["Index"] += 1
        api.writes.append(("labels", obj["Spec"]["Name"]))
        return ""


def params(**kwargs):
    base = dict(
        name="db_password",
        data=None,
        data_src=None,
        data_is_b64=False,
        labels=None,
        state="present",
        versioned=True,
        keep_versions=2,
        docker_host=None,
        timeout=60,
    )
    base.update(kwargs)
    return base


class Engine:
    """An in-memory swarm: run(...) runs the module's logic on it and returns its result."""

    def __init__(self, kind=SECRET, objects=(), services=(), manager=True):
        self.api = FakeApi(kind, objects, services)
        self.client = FakeClient(self.api, manager)

    def run(self, check_mode=False, **kwargs):
        module = FakeModule(params(**kwargs), check_mode=check_mode)
        return VersionedObjectManager(module, self.api.kind, client=self.client).run()

    def names(self):
        return sorted(o["Spec"]["Name"] for o in self.api.objects)

    def use(self, service_name, object_name):
        """A service (new or existing) references the object now, as `docker service update --secret-add` does."""
        obj = next(o for o in self.api.objects if o["Spec"]["Name"] == object_name)
        ref = (obj["ID"], object_name)
        self.api.service_list = [s for s in self.api.service_list if s["Spec"]["Name"] != service_name]
        if self.api.kind is SECRET:
            self.api.service_list.append(api_service(service_name, secrets=[ref]))
        else:
            self.api.service_list.append(api_service(service_name, configs=[ref]))


def test_first_run_creates_the_versioned_secret_with_its_labels():
    engine = Engine()
    result = engine.run(data="hello", labels={"app": "web"})
    name = "db_password_2cf24dba5fb0"
    assert result["changed"] is True
    assert result["name"] == name
    assert result["id"] == "new-1"
    assert result["sha256"] == HELLO_SHA256
    assert result["versions"] == [name] and result["pruned"] == [] and result["services"] == []
    assert engine.api.writes == [("create", name, b"hello")]
    assert engine.api.objects[0]["Spec"]["Labels"] == {
        "app": "web",
        NAME_LABEL: "db_password",
        HASH_LABEL: HELLO_SHA256,
    }


def test_an_unchanged_value_is_a_no_op():
    engine = Engine()
    first = engine.run(data="hello", labels={"app": "web"})
    again = engine.run(data="hello", labels={"app": "web"})
    assert again["changed"] is False
    assert (again["name"], again["id"], again["versions"]) == (first["name"], first["id"], first["versions"])
    assert again["diff"]["before"] == again["diff"]["after"]
    assert len(engine.api.writes) == 1


def test_unset_labels_keep_the_live_ones_and_changed_labels_are_updated_in_place():
    engine = Engine()
    engine.run(data="hello", labels={"app": "web"})
    assert engine.run(data="hello")["changed"] is False
    result = engine.run(data="hello", labels={"app": "api"})
    assert result["changed"] is True
    assert engine.api.writes[-1] == ("labels", "db_password_2cf24dba5fb0")
    assert engine.api.objects[0]["Spec"]["Labels"]["app"] == "api"
    assert result["diff"]["before"]["labels"]["app"] == "web" and result["diff"]["after"]["labels"]["app"] == "api"


def test_check_mode_writes_nothing_and_tells_the_same_changed():
    engine = Engine()
    result = engine.run(check_mode=True, data="hello")
    assert result["changed"] is True and result["id"] is None
    assert result["name"] == "db_password_2cf24dba5fb0" and result["versions"] == [result["name"]]
    assert engine.api.objects == [] and engine.api.writes == []
    engine.run(data="hello")
    assert engine.run(check_mode=True, data="hello")["changed"] is False


def test_a_new_value_rotates_to_a_new_version_and_keeps_the_old_one():
    engine = Engine()
    old = engine.run(data="one")["name"]
    engine.use("app", old)
    result = engine.run(data="two")
    assert result["changed"] is True
    assert result["name"] == version_name("db_password", "two") != old
    assert result["versions"] == [result["name"], old]
    assert result["pruned"] == [] and result["services"] == ["app"]
    assert engine.names() == sorted([old, result["name"]])


def test_versions_beyond_keep_versions_that_no_service_uses_are_pruned():
    engine = Engine()
    names = [engine.run(data=value)["name"] for value in ("v1", "v2", "v3")]
    assert engine.names() == sorted(names)
    engine.use("app", names[0])  # the oldest stays in use
    result = engine.run(data="v4", keep_versions=1)
    assert result["versions"] == [version_name("db_password", "v4"), names[2], names[0]]
    assert result["pruned"] == [names[1]]
    engine.use("app", result["name"])  # the service moved on: the oldest goes on the next run
    follow_up = engine.run(data="v4", keep_versions=1)
    assert follow_up["changed"] is True and follow_up["pruned"] == [names[0]]
    assert engine.run(data="v4", keep_versions=1)["changed"] is False


def test_pruning_in_check_mode_reports_without_removing():
    engine = Engine()
    for value in ("v1", "v2", "v3"):
        engine.run(data=value, keep_versions=5)
    before = engine.names()
    result = engine.run(check_mode=True, data="v3", keep_versions=0)
    assert result["changed"] is True and result["pruned"] == [version_name("db_password", v) for v in ("v2", "v1")]
    assert engine.names() == before


def test_a_version_a_rollback_needs_is_not_pruned():
    engine = Engine()
    v1 = engine.run(data="v1")["name"]
    v2 = engine.run(data="v2")["name"]
    v1_obj = next(o for o in engine.api.objects if o["Spec"]["Name"] == v1)
    v2_obj = next(o for o in engine.api.objects if o["Spec"]["Name"] == v2)
    engine.api.service_list = [api_service("app", secrets=[(v2_obj["ID"], v2)], previous_secrets=[(v1_obj["ID"], v1)])]
    result = engine.run(data="v2", keep_versions=0)
    assert result["pruned"] == [] and result["versions"] == [v2, v1]


def test_going_back_to_an_old_value_reuses_its_version():
    engine = Engine()
    v1 = engine.run(data="v1")["name"]
    v2 = engine.run(data="v2")["name"]
    result = engine.run(data="v1")
    assert result["changed"] is False
    assert result["name"] == v1 and result["versions"] == [v1, v2]


def test_absent_removes_every_unused_version():
    engine = Engine()
    for value in ("v1", "v2"):
        engine.run(data=value)
    engine.api.objects.append(api_object("other"))
    check = engine.run(check_mode=True, state="absent")
    assert check["changed"] is True and len(check["pruned"]) == 2 and len(engine.names()) == 3
    result = engine.run(state="absent")
    assert result["changed"] is True and result["versions"] == [] and len(result["pruned"]) == 2
    assert engine.names() == ["other"]
    assert engine.run(state="absent") == dict(
        changed=False,
        versions=[],
        pruned=[],
        services=[],
        diff=dict(before=dict(versions=[]), after=dict(versions=[])),
    )


def test_absent_fails_naming_the_versions_and_services_still_in_use():
    engine = Engine()
    v1 = engine.run(data="v1")["name"]
    v2 = engine.run(data="v2")["name"]
    engine.use("app", v1)
    with pytest.raises(Failed) as failed:
        engine.run(state="absent")
    assert failed.value.msg == (
        "secret db_password: this version is still used by services, so not removed: %s (used by app). "
        "Remove the secret from those services (docker service update --secret-rm NAME SERVICE) or remove the "
        "services, then run again (the unused versions %s were removed)" % (v1, v2)
    )
    assert failed.value.result["changed"] is True and failed.value.result["pruned"] == [v2]
    assert failed.value.result["versions"] == [v1] and failed.value.result["services"] == ["app"]
    assert engine.names() == [v1]


def test_unversioned_secret_is_named_exactly_and_recreated_when_unused():
    engine = Engine()
    first = engine.run(data="one", versioned=False)
    assert first["name"] == "db_password" and engine.names() == ["db_password"]
    assert engine.run(data="one", versioned=False)["changed"] is False
    result = engine.run(data="two", versioned=False)
    assert result["changed"] is True and result["name"] == "db_password" and result["id"] != first["id"]
    assert engine.api.writes[-2:] == [("rm", "db_password"), ("create", "db_password", b"two")]
    assert result["diff"]["before"]["sha256"] == content_hash("one")
    assert result["diff"]["after"]["sha256"] == content_hash("two")


def test_unversioned_secret_in_use_cannot_change():
    engine = Engine()
    engine.run(data="one", versioned=False)
    engine.use("web", "db_password")
    engine.use("api", "db_password")
    with pytest.raises(Failed) as failed:
        engine.run(data="two", versioned=False)
    message = failed.value.msg
    assert message.startswith("secret db_password: its value changed, and a swarm secret cannot change in place")
    assert "services use it: api, web" in message and "Set versioned: true" in message
    assert engine.names() == ["db_password"] and engine.api.writes[-1][0] == "create"


def test_a_hand_made_secret_in_use_cannot_be_compared():
    engine = Engine(objects=[api_object("db_password", obj_id="h1")])
    engine.use("web", "db_password")
    with pytest.raises(Failed, match="it has no swarmplane.sha256 label, so its value cannot be compared"):
        engine.run(data="one", versioned=False)


def test_switching_to_versioned_keeps_the_plain_secret_as_an_old_version():
    engine = Engine()
    engine.run(data="one", versioned=False)
    same = engine.run(data="one")
    assert same["changed"] is False and same["name"] == "db_password"
    rotated = engine.run(data="two", keep_versions=0)
    assert rotated["name"] == version_name("db_password", "two") and rotated["pruned"] == ["db_password"]


def test_an_unlabelled_object_with_the_version_name_is_a_clash():
    engine = Engine(objects=[api_object(version_name("db_password", "one"))])
    with pytest.raises(Failed, match=r"exists but is not a version of db_password .*docker secret rm db_password_"):
        engine.run(data="one")


def test_the_secret_data_is_never_in_the_result():
    engine = Engine()
    engine.run(data="first-s3cr3t")
    result = engine.run(data="second-s3cr3t", labels={"a": "b"})
    text = json.dumps(result)
    assert "s3cr3t" not in text
    assert base64.b64encode(b"second-s3cr3t").decode() not in text
    assert result["diff"]["after"]["versions"][0] == dict(name=result["name"], sha256=content_hash("second-s3cr3t"))


def test_it_must_run_on_a_manager():
    engine = Engine(manager=False)
    with pytest.raises(
        Failed, match="^secret db_password: swarm_secret must run on a swarm manager; this host is a worker"
    ):
        engine.run(data="x")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(name="bad name", data="x"), "^secret bad name: the name may only hold"),
        (dict(data="x", keep_versions=-1), "^secret db_password: keep_versions is -1"),
        (dict(data=""), "^secret db_password: the data is empty"),
        (dict(data="%%%", data_is_b64=True), "^secret db_password: data_is_b64 is true"),
    ],
)
def test_bad_options_fail_naming_the_secret(kwargs, match):
    with pytest.raises(Failed, match=match):
        Engine().run(**kwargs)


def test_configs_rotate_like_secrets():
    engine = Engine(kind=CONFIG)
    first = engine.run(name="nginx_conf", data="a")
    engine.use("web", first["name"])
    second = engine.run(name="nginx_conf", data="b")
    assert second["name"] == version_name("nginx_conf", "b") and second["versions"] == [second["name"], first["name"]]
    assert second["services"] == ["web"]
    with pytest.raises(Failed, match="^config nginx_conf: this version is still used by services"):
        engine.run(name="nginx_conf", state="absent")


def test_a_hand_made_config_with_the_same_content_is_adopted_by_labelling_it():
    engine = Engine(kind=CONFIG, objects=[api_object("motd", obj_id="c1", labels={"x": "y"}, data=b"hi")])
    result = engine.run(name="motd", data="hi", versioned=False)
    assert result["changed"] is True and result["id"] == "c1"
    assert engine.api.writes == [("labels", "motd")]
    assert engine.api.objects[0]["Spec"]["Labels"] == {"x": "y", NAME_LABEL: "motd", HASH_LABEL: content_hash("hi")}
    assert engine.run(name="motd", data="hi", versioned=False)["changed"] is False


def test_a_config_from_a_file_on_the_target(tmp_path):
    source = tmp_path / "app.conf"
    source.write_bytes(b"listen 80;\n")
    engine = Engine(kind=CONFIG)
    result = engine.run(name="app_conf", data_src=str(source))
    assert result["sha256"] == content_hash(b"listen 80;\n")
    assert engine.api.writes == [("create", version_name("app_conf", b"listen 80;\n"), b"listen 80;\n")]

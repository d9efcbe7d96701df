"""Versioned swarm secrets and configs: the pure logic of plugins/module_utils/swarm_versioned.py, and the
runs of swarm_secret / swarm_config against an in-memory engine (keyed names, migration of versions named by
earlier releases, what a rollback still needs)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from docker.errors import APIError
from fake_swarm import FakeModule
from requests.exceptions import ReadTimeout

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import EngineClient, SwarmDecisionError
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_versioned import (
    CONFIG,
    DIGEST_LABEL,
    KEY_CONFIG,
    LEGACY_HASH_LABEL,
    NAME_LABEL,
    SECRET,
    VersionedObjectManager,
    check_name,
    check_size,
    choose_prune,
    created_key,
    derive_key,
    find_holder,
    holds,
    needed_by,
    resolve_data,
    rollback_targets,
    services_using,
    spec_refs,
    version_digest,
    version_name,
    versions_of,
    wanted_labels,
)

TOKEN = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"
KEY = derive_key(TOKEN)


def sha256(value):
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()


def keyed(name, value, kind=SECRET, key=KEY):
    return version_name(name, version_digest(key, kind, name, value.encode() if isinstance(value, str) else value))


def api_object(name, obj_id=None, labels=None, created="2026-01-01T00:00:00Z", index=1, data=None):
    """A secret or config as the engine lists it (configs carry Spec.Data, base64)."""
    spec = dict(Name=name, Labels=labels or {})
    if data is not None:
        spec["Data"] = base64.b64encode(data).decode("ascii")
    return dict(ID=obj_id or "id-" + name, Spec=spec, CreatedAt=created, Version=dict(Index=index))


def version(name, value, created, kind=SECRET, obj_id=None):
    digest = version_digest(KEY, kind, name, value.encode())
    return api_object(
        version_name(name, digest), obj_id, labels={NAME_LABEL: name, DIGEST_LABEL: digest}, created=created
    )


def legacy_version(name, value, created="2025-06-01T00:00:00Z", obj_id=None):
    """A version as releases before the keyed digest made it: <name>_<sha256 prefix>, labelled with the sha256."""
    digest = sha256(value)
    labels = {NAME_LABEL: name, LEGACY_HASH_LABEL: digest}
    return api_object("%s_%s" % (name, digest[:12]), obj_id, labels=labels, created=created)


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


# --------------------------------------------------------------------------- keys, digests and names


def test_the_naming_key_is_derived_one_way_from_the_manager_token():
    assert derive_key(TOKEN) == KEY and len(KEY) == 64
    assert TOKEN.encode() not in KEY
    assert derive_key(TOKEN.replace("1awx", "2awx")) != KEY


def test_a_version_name_changes_with_the_value_and_differs_between_names_kinds_and_keys():
    one = keyed("db", "one")
    assert one.startswith("db_") and len(one) == len("db_") + 12
    assert keyed("db", "one") == one  # stable
    assert keyed("db", "two") != one
    assert keyed("db2", "one")[len("db2_") :] != one[len("db_") :]  # equal values do not show as equal
    assert keyed("db", "one", kind=CONFIG) != one
    assert keyed("db", "one", key=derive_key("another swarm")) != one


@pytest.mark.parametrize("value", ["hunter2", "password", "x", "é" * 100])
def test_a_version_name_and_digest_reveal_no_sha256_of_the_value(value):
    digest = version_digest(KEY, SECRET, "db", value.encode())
    assert sha256(value)[:12] not in keyed("db", value)
    assert digest != sha256(value) and sha256(value)[:12] not in digest
    assert digest != sha256("db\0" + value) and digest != sha256(KEY.decode() + value)


@pytest.mark.parametrize("name", ["db", "db_password", "a.b-c_d", "x" * 51])
def test_valid_names_pass(name):
    check_name(name, versioned=True, kind=SECRET)


@pytest.mark.parametrize("name", ["", "-db", "db_", "db password", "db/password", "é"])
def test_names_the_engine_refuses_fail_with_the_rule(name):
    with pytest.raises(SwarmDecisionError, match="may only hold letters, digits"):
        check_name(name, versioned=True, kind=SECRET)


def test_a_versioned_name_leaves_room_for_the_suffix_and_the_key_name_is_reserved():
    with pytest.raises(SwarmDecisionError, match="at most 51 once the version suffix"):
        check_name("x" * 52, versioned=True, kind=CONFIG)
    check_name("x" * 64, versioned=False, kind=CONFIG)
    with pytest.raises(SwarmDecisionError, match="a config name holds at most 64. Fix: choose a shorter name"):
        check_name("x" * 65, versioned=False, kind=CONFIG)
    with pytest.raises(SwarmDecisionError, match="is the swarm's naming key"):
        check_name(KEY_CONFIG, versioned=False, kind=CONFIG)


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


def test_wanted_labels_are_strings_and_swarmplane_labels_win_and_the_legacy_hash_goes():
    given = {"tier": 1, NAME_LABEL: "other", LEGACY_HASH_LABEL: sha256("x")}
    assert wanted_labels("db", "abc", given) == {"tier": "1", NAME_LABEL: "db", DIGEST_LABEL: "abc"}


# --------------------------------------------------------------------------- which object holds a value


def test_holds_reads_a_configs_data_else_the_keyed_label_else_the_legacy_label():
    digest = version_digest(KEY, SECRET, "a", b"hello")
    assert holds(api_object("a", data=b"hello"), b"hello", "whatever", CONFIG) is True
    assert holds(api_object("a", data=b"hello"), b"bye", digest, CONFIG) is False
    assert holds(api_object("a", labels={DIGEST_LABEL: digest}), b"hello", digest, SECRET) is True
    assert holds(api_object("a", labels={DIGEST_LABEL: digest}), b"bye", "other", SECRET) is False
    assert holds(legacy_version("a", "hello"), b"hello", digest, SECRET) is True
    assert holds(legacy_version("a", "hello"), b"bye", digest, SECRET) is False
    # the engine never returns secret data: without a label nothing tells
    assert holds(api_object("a"), b"hello", digest, SECRET) is None
    assert holds(api_object("a", data=b"hello"), b"hello", digest, SECRET) is None


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
    legacy = legacy_version("db", "zero")
    others = [
        api_object("db2"),
        api_object("db_2cf24dba5fb0"),  # looks like a version, but is not labelled as one
        version("dbx", "one", "2026-01-03T00:00:00Z"),
        api_object(KEY_CONFIG),
    ]
    assert versions_of([old, *others, new, legacy, plain], "db") == [new, plain, old, legacy]
    assert versions_of([], "db") == []


def test_find_holder_prefers_the_wanted_name_when_several_hold_the_value():
    digest = version_digest(KEY, SECRET, "db", b"one")
    plain = api_object("db", labels={NAME_LABEL: "db", DIGEST_LABEL: digest}, created="2026-01-02T00:00:00Z")
    versioned = version("db", "one", "2026-01-01T00:00:00Z")
    two = version("db", "two", "2026-01-03T00:00:00Z")
    assert find_holder([two, plain, versioned], b"one", digest, SECRET, prefer=keyed("db", "one")) is versioned
    assert find_holder([two, plain, versioned], b"one", digest, SECRET) is plain
    assert find_holder([two], b"one", digest, SECRET) is None


# --------------------------------------------------------------------------- what services need


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


def test_a_rollback_target_is_a_previous_spec_that_uses_what_the_current_one_does_not():
    old = api_object("db_old", obj_id="old")
    new = api_object("db_new", obj_id="new")
    moved = api_service("app", secrets=[("new", "db_new")], previous_secrets=[("old", "db_old")])
    assert services_using([moved], old, SECRET) == [] and rollback_targets([moved], old, SECRET) == ["app"]
    assert needed_by([moved], old, SECRET) == ([], ["app"])
    assert needed_by([moved], new, SECRET) == (["app"], [])
    unchanged = api_service("api", secrets=[("new", "db_new")], previous_secrets=[("new", "db_new")])
    assert needed_by([unchanged], new, SECRET) == (["api"], [])


def test_a_credential_spec_uses_a_config():
    service = api_service("win", credential_config="c9")
    assert "c9" in spec_refs(service["Spec"], CONFIG)
    assert services_using([service], api_object("gmsa", obj_id="c9"), CONFIG) == ["win"]
    assert services_using([service], api_object("gmsa", obj_id="c9"), SECRET) == []


def test_a_service_without_container_spec_uses_nothing():
    assert spec_refs(dict(Name="x", TaskTemplate={}), SECRET) == set()
    assert spec_refs(None, CONFIG) == set()


# --------------------------------------------------------------------------- pruning


def test_prune_keeps_the_current_and_the_newest_old_versions():
    ordered = ["v5", "v4", "v3", "v2", "v1"]
    assert choose_prune(ordered, 2, needed=()) == ["v2", "v1"]
    assert choose_prune(ordered, 0, needed=()) == ["v4", "v3", "v2", "v1"]
    assert choose_prune(ordered, 4, needed=()) == []
    assert choose_prune(ordered, 10, needed=()) == []
    assert choose_prune(["v1"], 0, needed=()) == []


def test_prune_never_removes_a_needed_version_nor_the_current_one():
    ordered = ["v5", "v4", "v3", "v2", "v1"]
    assert choose_prune(ordered, 1, needed={"v2"}) == ["v3", "v1"]
    assert choose_prune(ordered, 0, needed={"v5", "v4", "v3", "v2", "v1"}) == []
    assert "v5" not in choose_prune(ordered, 0, needed=())


def test_legacy_versions_hold_no_slot_and_go_as_soon_as_nothing_needs_them():
    ordered = ["v5", "legacy4", "v3", "legacy2"]
    assert choose_prune(ordered, 2, needed=(), legacy={"legacy4", "legacy2"}) == ["legacy4", "legacy2"]
    assert choose_prune(ordered, 2, needed={"legacy2"}, legacy={"legacy4", "legacy2"}) == ["legacy4"]
    assert choose_prune(ordered, 0, needed=(), legacy={"legacy4"}) == ["legacy4", "v3", "legacy2"]


def test_prune_refuses_a_negative_keep():
    with pytest.raises(SwarmDecisionError, match="keep_versions is -1. Fix: give 0 or more"):
        choose_prune(["a", "b"], -1, needed=())


# --------------------------------------------------------------------------- runs against an in-memory engine


class Failed(Exception):
    def __init__(self, msg, **kwargs):
        super().__init__(msg)
        self.msg = msg
        self.result = kwargs


def _copy(objects):
    return [json.loads(json.dumps(o)) for o in objects]


class FakeApi:
    """The engine's secrets, configs and services, with its rules: an object a service's current spec uses
    cannot be removed (one only its previous spec uses can), a name is taken once, secret data is never returned.
    `create_failures` are what the next POST /<kind>s/create calls do, in turn: None works, "refused" is an engine
    error, "lost" times out before the engine creates the object, "applied" after."""

    timeout = 60  # the SDK client's call timeout, which EngineClient reads

    def __init__(self, kind, objects=(), services=()):
        self.kind = kind
        self.create_failures = []
        self.stores = {SECRET: [], CONFIG: []}
        self.stores[kind] = list(objects)
        self.service_list = list(services)
        self.writes = []

    @property
    def objects(self):
        return self.stores[self.kind]

    def secrets(self):
        return [dict(o, Spec={k: v for k, v in o["Spec"].items() if k != "Data"}) for o in _copy(self.stores[SECRET])]

    def configs(self):
        return _copy(self.stores[CONFIG])

    def services(self):
        return self.service_list

    def add(self, kind, name, data, labels):
        """POST /<kind>s/create: returns the new ID."""
        store = self.stores[kind]
        if name in {o["Spec"]["Name"] for o in self.stores[kind]}:
            raise APIError(
                "409 Conflict", explanation="rpc error: code = AlreadyExists desc = %s already exists" % name
            )
        self.writes.append(("create", name, data))
        obj_id = "new-%d" % (len(self.writes))
        spec = dict(Name=name, Labels=dict(labels or {}), Data=base64.b64encode(data).decode("ascii"))
        created = "2026-06-01T00:00:%02dZ" % len(self.writes)
        store.append(dict(ID=obj_id, Spec=spec, CreatedAt=created, Version=dict(Index=1)))
        return obj_id

    def create_config(self, name, data, labels=None):
        return dict(ID=self.add(CONFIG, name, data, labels))

    def _remove(self, obj_id):
        obj = next(o for o in self.objects if o["ID"] == obj_id)
        users = services_using(self.service_list, obj, self.kind)
        assert not users, "the engine refuses to remove %s: in use by %s" % (obj_id, users)
        self.objects.remove(obj)
        self.writes.append(("rm", obj["Spec"]["Name"]))

    remove_secret = remove_config = _remove


class FakeClient:
    """EngineClient's interface over FakeApi."""

    def __init__(self, api, manager=True, token=TOKEN):
        self.api = api
        self.manager = manager
        self.token = token

    def fail(self, msg, **kwargs):
        raise Failed(msg, **kwargs)

    def info(self):
        return dict(Swarm=dict(LocalNodeState="active", ControlAvailable=self.manager))

    require_manager = EngineClient.require_manager

    def join_tokens(self):
        return dict(worker="SWMTKN-worker", manager=self.token)

    def call(self, doing, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except APIError as exc:
            self.fail("%s failed: %s" % (doing, exc.explanation))

    attempt = EngineClient.attempt

    def post_json(self, doing, path, body, params=None):
        return self.call(doing, self._post_json, path, body, params)

    def _post_json(self, path, body, params=None):
        api = self.api
        if path.endswith("/create"):
            assert path == api.kind.path + "/create"
            failure = api.create_failures.pop(0) if api.create_failures else None
            if failure == "refused":
                raise APIError("500", explanation="rpc error: code = Unavailable desc = raft: no elected leader")
            if failure == "lost":
                raise ReadTimeout("Read timed out. (read timeout=60)")
            obj_id = api.add(api.kind, body["Name"], base64.b64decode(body["Data"]), body["Labels"])
            if failure == "applied":
                raise ReadTimeout("Read timed out. (read timeout=60)")
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
        force=False,
        docker_host=None,
        timeout=60,
    )
    base.update(kwargs)
    return base


class Engine:
    """An in-memory swarm: run(...) runs the module's logic on it (as the manager holding `token`)."""

    def __init__(self, kind=SECRET, objects=(), services=(), manager=True):
        self.api = FakeApi(kind, objects, services)
        self.manager = manager
        self.last_module = None

    def run(self, check_mode=False, token=TOKEN, **kwargs):
        self.last_module = FakeModule(params(**kwargs), check_mode=check_mode)
        client = FakeClient(self.api, self.manager, token)
        return VersionedObjectManager(self.last_module, self.api.kind, client=client).run()

    def names(self):
        return sorted(o["Spec"]["Name"] for o in self.api.objects)

    def find(self, name):
        return next(o for o in self.api.objects if o["Spec"]["Name"] == name)

    def use(self, service_name, object_name):
        """A service (new or existing) references the object now, as `docker service update --secret-add` does;
        what it used before becomes its previous spec."""
        obj = self.find(object_name)
        previous = next((s for s in self.api.service_list if s["Spec"]["Name"] == service_name), None)
        self.api.service_list = [s for s in self.api.service_list if s["Spec"]["Name"] != service_name]
        ref = [(obj["ID"], object_name)]
        service = (
            api_service(service_name, secrets=ref)
            if self.api.kind is SECRET
            else api_service(service_name, configs=ref)
        )
        if previous:
            service["PreviousSpec"] = previous["Spec"]
        self.api.service_list.append(service)


def everything_shown(result, engine):
    """The text a CI log could show of a run: its result (with diff), the objects' names and labels."""
    labels = [o["Spec"].get("Labels") for o in engine.api.objects]
    return json.dumps(result) + json.dumps(labels) + json.dumps(engine.names())


def test_first_run_creates_the_naming_key_and_the_keyed_version_with_its_labels():
    engine = Engine()
    result = engine.run(data="hello", labels={"app": "web"})
    name = keyed("db_password", "hello")
    assert result["changed"] is True
    assert result["name"] == name and result["id"] == "new-2"
    assert result["hmac"] == version_digest(KEY, SECRET, "db_password", b"hello")
    assert result["versions"] == [name] and result["pruned"] == [] and result["services"] == []
    assert engine.api.writes == [("create", KEY_CONFIG, KEY), ("create", name, b"hello")]
    assert engine.api.objects[0]["Spec"]["Labels"] == {
        "app": "web",
        NAME_LABEL: "db_password",
        DIGEST_LABEL: result["hmac"],
    }
    assert engine.api.stores[CONFIG][0]["Spec"]["Labels"] == {"swarmplane.role": "version-key"}


def test_no_output_and_no_label_holds_the_data_or_its_sha256():
    engine = Engine()
    engine.run(data="first-s3cr3t")
    result = engine.run(data="second-s3cr3t", labels={"a": "b"})
    shown = everything_shown(result, engine)
    for value in ("first-s3cr3t", "second-s3cr3t"):
        assert value not in shown and base64.b64encode(value.encode()).decode() not in shown
        assert sha256(value)[:12] not in shown
    assert result["diff"]["after"]["versions"][0] == dict(name=result["name"], hmac=result["hmac"])


def test_an_unchanged_value_is_a_no_op():
    engine = Engine()
    first = engine.run(data="hello", labels={"app": "web"})
    again = engine.run(data="hello", labels={"app": "web"})
    assert again["changed"] is False
    assert (again["name"], again["id"], again["versions"]) == (first["name"], first["id"], first["versions"])
    assert again["diff"]["before"] == again["diff"]["after"]
    assert len(engine.api.writes) == 2


def test_check_mode_on_a_new_swarm_names_what_the_real_run_creates_and_writes_nothing():
    engine = Engine()
    check = engine.run(check_mode=True, data="hello")
    assert check["changed"] is True and check["id"] is None
    assert check["name"] == keyed("db_password", "hello") and check["versions"] == [check["name"]]
    assert engine.api.writes == []
    real = engine.run(data="hello")
    assert (real["name"], real["hmac"]) == (check["name"], check["hmac"])
    assert engine.run(check_mode=True, data="hello")["changed"] is False


def test_every_manager_names_a_value_alike_and_a_rotated_join_token_changes_no_name():
    engine = Engine()
    first = engine.run(data="hello")
    # another manager of the same swarm, after `docker swarm join-token --rotate manager`
    other = engine.run(data="hello", token=TOKEN.replace("1awx", "9zzz"))
    assert other["changed"] is False and other["name"] == first["name"]
    assert other["name"] == engine.run(check_mode=True, data="hello", token="SWMTKN-any")["name"]


def test_a_lost_naming_key_is_made_again_with_a_warning_and_the_value_moves_to_a_new_version():
    engine = Engine()
    old = engine.run(data="hello")["name"]
    engine.use("app", old)
    engine.api.stores[CONFIG].clear()  # removed by hand
    result = engine.run(data="hello", token=TOKEN.replace("1awx", "9zzz"))
    assert result["changed"] is True and result["name"] != old and result["versions"] == [result["name"], old]
    assert engine.last_module.warnings == [
        "secret db_password: the naming key (config %s) was missing and was made again from the manager join token; "
        "db_password has keyed versions but none holds this value under that key: either the value changed, or the "
        "join token was rotated since the lost key was made and db_password moves to a new version though its value "
        "did not change" % KEY_CONFIG
    ]


def test_a_lost_naming_key_made_again_from_the_same_join_token_finds_every_version_without_a_word():
    engine = Engine()
    old = engine.run(data="hello")
    engine.use("app", old["name"])
    engine.api.stores[CONFIG].clear()  # removed by hand; the join token was not rotated
    for check_mode in (True, False):
        result = engine.run(check_mode=check_mode, data="hello")
        assert (result["name"], result["id"], result["versions"]) == (old["name"], old["id"], [old["name"]])
        assert result["changed"] is True and engine.last_module.warnings == []  # changed: the key is made
    assert engine.api.writes[-1] == ("create", KEY_CONFIG, KEY)
    assert engine.run(data="hello")["changed"] is False


def test_a_race_between_two_managers_creating_the_key_uses_the_one_stored():
    engine = Engine()
    engine.api.add(CONFIG, KEY_CONFIG, b"the other manager's key", {})
    stored = engine.api.configs

    def listing_before_the_race():  # the first listing misses the key the other manager is creating
        engine.api.configs = stored
        return []

    engine.api.configs = listing_before_the_race
    result = engine.run(data="hello")
    assert result["name"] == keyed("db_password", "hello", key=b"the other manager's key")


def test_unset_labels_keep_the_live_ones_and_changed_labels_are_updated_in_place():
    engine = Engine()
    engine.run(data="hello", labels={"app": "web"})
    assert engine.run(data="hello")["changed"] is False
    result = engine.run(data="hello", labels={"app": "api"})
    assert result["changed"] is True
    assert engine.api.writes[-1] == ("labels", keyed("db_password", "hello"))
    assert engine.api.objects[0]["Spec"]["Labels"]["app"] == "api"
    assert result["diff"]["before"]["labels"]["app"] == "web" and result["diff"]["after"]["labels"]["app"] == "api"


def test_a_new_value_rotates_to_a_new_version_and_keeps_the_old_one():
    engine = Engine()
    old = engine.run(data="one")["name"]
    engine.use("app", old)
    result = engine.run(data="two")
    assert result["changed"] is True
    assert result["name"] == keyed("db_password", "two") != old
    assert result["versions"] == [result["name"], old]
    assert result["pruned"] == [] and result["services"] == ["app"]
    assert engine.names() == sorted([old, result["name"]])


def test_versions_beyond_keep_versions_that_nothing_needs_are_pruned():
    engine = Engine()
    names = [engine.run(data=value)["name"] for value in ("v1", "v2", "v3")]
    engine.use("app", names[0])  # the oldest stays in use
    result = engine.run(data="v4", keep_versions=1)
    assert result["versions"] == [keyed("db_password", "v4"), names[2], names[0]]
    assert result["pruned"] == [names[1]]
    engine.use("app", result["name"])  # the service moved on; its rollback target still needs the oldest
    assert engine.run(data="v4", keep_versions=1)["pruned"] == []
    engine.use("app", result["name"])  # updated again: its previous spec no longer names the oldest
    follow_up = engine.run(data="v4", keep_versions=1)
    assert follow_up["changed"] is True and follow_up["pruned"] == [names[0]]
    assert engine.run(data="v4", keep_versions=1)["changed"] is False


def test_pruning_in_check_mode_reports_without_removing():
    engine = Engine()
    for value in ("v1", "v2", "v3"):
        engine.run(data=value, keep_versions=5)
    before = engine.names()
    result = engine.run(check_mode=True, data="v3", keep_versions=0)
    assert result["changed"] is True and result["pruned"] == [keyed("db_password", v) for v in ("v2", "v1")]
    assert engine.names() == before


def test_going_back_to_an_old_value_reuses_its_version():
    engine = Engine()
    v1 = engine.run(data="v1")["name"]
    v2 = engine.run(data="v2")["name"]
    result = engine.run(data="v1")
    assert result["changed"] is False
    assert result["name"] == v1 and result["versions"] == [v1, v2]


# ----------------------------------------------------------------- migration from versions named by the sha256


def test_a_service_on_a_legacy_version_moves_to_a_keyed_version_of_the_same_value_as_a_rotation():
    legacy = legacy_version("db_password", "hunter2")
    engine = Engine(objects=[legacy])
    object_name = legacy["Spec"]["Name"]
    engine.use("app", object_name)
    check = engine.run(check_mode=True, data="hunter2")
    result = engine.run(data="hunter2")
    assert check["name"] == result["name"] == keyed("db_password", "hunter2")
    assert result["changed"] is True and result["versions"] == [result["name"], object_name]
    assert engine.api.writes[-1] == ("create", result["name"], b"hunter2")
    assert sha256("hunter2") not in json.dumps(result)  # the legacy label is hidden in the diff
    assert result["diff"]["before"]["labels"][LEGACY_HASH_LABEL] == "(hidden)"
    assert result["diff"]["before"]["hmac"] is None

    engine.use("app", result["name"])  # the services path moves it; a rollback would go back to the legacy one
    assert engine.run(data="hunter2")["changed"] is False
    engine.use("app", result["name"])  # once no rollback needs it, it goes whatever keep_versions says
    pruned = engine.run(data="hunter2", keep_versions=5)
    assert pruned["pruned"] == [object_name] and engine.names() == [result["name"]]


def test_a_legacy_version_of_an_old_value_is_no_current_candidate_and_a_plain_legacy_object_is_relabelled():
    plain = api_object("db_password", labels={NAME_LABEL: "db_password", LEGACY_HASH_LABEL: sha256("one")})
    engine = Engine(objects=[plain])
    result = engine.run(data="one", versioned=False)
    assert result["changed"] is True and result["name"] == "db_password" and result["id"] == plain["ID"]
    assert engine.api.writes == [("create", KEY_CONFIG, KEY), ("labels", "db_password")]
    assert engine.find("db_password")["Spec"]["Labels"] == {NAME_LABEL: "db_password", DIGEST_LABEL: result["hmac"]}
    assert engine.run(data="one", versioned=False)["changed"] is False


# ----------------------------------------------------------------- state=absent and what a rollback needs


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


def test_absent_fails_naming_the_versions_and_services_still_using_them():
    engine = Engine()
    v1 = engine.run(data="v1")["name"]
    v2 = engine.run(data="v2")["name"]
    engine.use("app", v1)
    with pytest.raises(Failed) as failed:
        engine.run(state="absent", force=True)  # force never removes what a service uses
    assert failed.value.msg == (
        "secret db_password: this version is still needed, so not removed: %s (used by app). Fix: remove the "
        "secret from those services (docker service update --secret-rm NAME SERVICE) or remove the services, then "
        "run again (the unused versions %s were removed)." % (v1, v2)
    )
    assert failed.value.result["changed"] is True and failed.value.result["pruned"] == [v2]
    assert failed.value.result["versions"] == [v1] and failed.value.result["services"] == ["app"]
    assert engine.names() == [v1]


def rolled_forward(kind=SECRET):
    """app moved from the db_password version holding v1 to a version of new_password: only its rollback
    target needs db_password's version, which the engine would remove without a word."""
    engine = Engine(kind=kind)
    old = engine.run(data="v1")["name"]
    engine.use("app", old)
    new = engine.run(name="new_password", data="v2")["name"]
    engine.use("app", new)
    return engine, old


@pytest.mark.parametrize("check_mode", [True, False])
def test_absent_refuses_a_version_a_rollback_target_needs(check_mode):
    engine, old = rolled_forward()
    with pytest.raises(Failed) as failed:
        engine.run(check_mode=check_mode, state="absent")
    assert failed.value.msg == (
        "secret db_password: this version is still needed, so not removed: %s (rollback target of app: the "
        "previous spec uses it). Fix: update each service whose rollback target needs it once more, so its previous "
        "spec no longer names it (docker service update --force SERVICE; its tasks restart), or set force: true to "
        "remove it anyway (docker service rollback SERVICE then fails), then run again." % old
    )
    assert failed.value.result["changed"] is False and failed.value.result["versions"] == [old]
    assert old in engine.names()


def test_force_removes_a_version_only_a_rollback_target_needs():
    engine, old = rolled_forward()
    result = engine.run(state="absent", force=True)
    assert result["changed"] is True and result["pruned"] == [old] and old not in engine.names()


def test_configs_follow_the_same_rule():
    engine, old = rolled_forward(kind=CONFIG)
    with pytest.raises(
        Failed,
        match=r"^config db_password: this version is still needed, so not removed: .*"
        r"\(rollback target of app: the previous spec uses it\)",
    ):
        engine.run(state="absent")


def test_an_unversioned_secret_a_rollback_target_needs_is_not_replaced_unless_forced():
    engine = Engine()
    engine.run(data="one", versioned=False)
    engine.use("app", "db_password")
    engine.run(name="other", data="x")
    engine.use("app", keyed("other", "x"))
    with pytest.raises(Failed) as failed:
        engine.run(data="two", versioned=False)
    assert failed.value.msg.startswith(
        "secret db_password: its value changed, and replacing it would remove what the rollback target of app uses "
        "(their previous spec). Fix: update each service"
    )
    forced = engine.run(data="two", versioned=False, force=True)
    assert forced["changed"] is True and engine.api.writes[-2:] == [
        ("rm", "db_password"),
        ("create", "db_password", b"two"),
    ]


# ----------------------------------------------------------------- versioned: false, clashes, options


def test_unversioned_secret_is_named_exactly_and_recreated_when_unused():
    engine = Engine()
    first = engine.run(data="one", versioned=False)
    assert first["name"] == "db_password" and engine.names() == ["db_password"]
    assert engine.run(data="one", versioned=False)["changed"] is False
    result = engine.run(data="two", versioned=False)
    assert result["changed"] is True and result["name"] == "db_password" and result["id"] != first["id"]
    assert engine.api.writes[-2:] == [("rm", "db_password"), ("create", "db_password", b"two")]
    assert result["diff"]["before"]["hmac"] == first["hmac"] != result["diff"]["after"]["hmac"]


@pytest.mark.parametrize("kind", [SECRET, CONFIG])
def test_unversioned_object_whose_new_value_cannot_be_created_says_the_old_one_is_gone(kind):
    engine = Engine(kind=kind)
    first = engine.run(data="one", versioned=False)
    engine.api.create_failures = ["refused"]
    with pytest.raises(Failed) as failed:
        engine.run(data="two", versioned=False)
    assert failed.value.msg == (
        "{k} db_password: the old {k} db_password (ID {id}) was removed to make way for the new value, and then "
        "creating {k} db_password failed: rpc error: code = Unavailable desc = raft: no elected leader. The old {k} "
        "is gone and its value is not recoverable from the swarm{why}. Fix: correct what the engine names, then run "
        "this task again with the value (data or data_src): it creates {k} db_password.".format(
            k=kind.name, id=first["id"], why=" (the engine never returns a secret's value)" if kind is SECRET else ""
        )
    )
    assert engine.names() == ([] if kind is SECRET else [KEY_CONFIG])
    assert engine.api.writes[-1] == ("rm", "db_password")
    again = engine.run(data="two", versioned=False)  # the fix the message gives
    assert again["changed"] is True and engine.find("db_password")["Spec"]["Data"] == base64.b64encode(b"two").decode()


@pytest.mark.parametrize("failure", ["lost", "applied"])
def test_unversioned_secret_whose_create_gets_no_answer_says_it_may_exist_and_a_run_again_settles_it(failure):
    engine = Engine()
    engine.run(data="one", versioned=False)
    engine.api.create_failures = [failure]
    with pytest.raises(Failed) as failed:
        engine.run(data="two", versioned=False)
    message = failed.value.msg
    assert message.startswith("secret db_password: the old secret db_password (ID new-2) was removed to make way")
    assert "creating secret db_password failed: no answer within 60 s (Read timed out. (read timeout=60))" in message
    assert "its value is not recoverable from the swarm (the engine never returns a secret's value)" in message
    assert "The engine did not answer, so it may have created secret db_password all the same" in message
    assert engine.names() == (["db_password"] if failure == "applied" else [])
    again = engine.run(data="two", versioned=False)
    assert again["changed"] is (failure == "lost") and engine.names() == ["db_password"]


def test_unversioned_secret_in_use_cannot_change():
    engine = Engine()
    engine.run(data="one", versioned=False)
    engine.use("web", "db_password")
    engine.use("api", "db_password")
    with pytest.raises(Failed) as failed:
        engine.run(data="two", versioned=False)
    message = failed.value.msg
    assert message.startswith("secret db_password: its value changed, and a swarm secret cannot change in place")
    assert "services use it: api, web. Fix: set versioned: true" in message
    assert engine.names() == ["db_password"] and engine.api.writes[-1][0] == "create"


def test_a_hand_made_secret_in_use_cannot_be_compared():
    engine = Engine(objects=[api_object("db_password", obj_id="h1")])
    engine.use("web", "db_password")
    with pytest.raises(Failed, match="it has no swarmplane.hmac label, so its value cannot be compared"):
        engine.run(data="one", versioned=False)


def test_switching_to_versioned_keeps_the_plain_secret_as_an_old_version():
    engine = Engine()
    engine.run(data="one", versioned=False)
    same = engine.run(data="one")
    assert same["changed"] is False and same["name"] == "db_password"
    rotated = engine.run(data="two", keep_versions=0)
    assert rotated["name"] == keyed("db_password", "two") and rotated["pruned"] == ["db_password"]


def test_an_unlabelled_object_with_the_version_name_is_a_clash():
    engine = Engine(objects=[api_object(keyed("db_password", "one"))])
    with pytest.raises(Failed, match=r"exists but is not the version of db_password .*docker secret rm db_password_"):
        engine.run(data="one")


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
    assert second["name"] == keyed("nginx_conf", "b", kind=CONFIG)
    assert second["versions"] == [second["name"], first["name"]] and second["services"] == ["web"]
    with pytest.raises(Failed, match="^config nginx_conf: this version is still needed"):
        engine.run(name="nginx_conf", state="absent")


def test_the_naming_key_config_is_never_a_version():
    engine = Engine(kind=CONFIG)
    engine.run(name="nginx_conf", data="a")
    assert engine.run(name="nginx_conf", state="absent")["pruned"] == [keyed("nginx_conf", "a", kind=CONFIG)]
    assert engine.names() == [KEY_CONFIG]


def test_a_hand_made_config_with_the_same_content_is_adopted_by_labelling_it():
    engine = Engine(kind=CONFIG, objects=[api_object("motd", obj_id="c1", labels={"x": "y"}, data=b"hi")])
    result = engine.run(name="motd", data="hi", versioned=False)
    assert result["changed"] is True and result["id"] == "c1"
    assert engine.api.writes == [("create", KEY_CONFIG, KEY), ("labels", "motd")]
    assert engine.find("motd")["Spec"]["Labels"] == {"x": "y", NAME_LABEL: "motd", DIGEST_LABEL: result["hmac"]}
    assert engine.run(name="motd", data="hi", versioned=False)["changed"] is False


def test_a_config_from_a_file_on_the_target(tmp_path):
    source = tmp_path / "app.conf"
    source.write_bytes(b"listen 80;\n")
    engine = Engine(kind=CONFIG)
    result = engine.run(name="app_conf", data_src=str(source))
    assert result["name"] == keyed("app_conf", b"listen 80;\n", kind=CONFIG)
    assert engine.api.writes[-1] == ("create", result["name"], b"listen 80;\n")

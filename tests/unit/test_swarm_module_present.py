"""swarm state=present on a live manager: join-token rotation and force-new-cluster recovery, against a fake engine."""

import pytest

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_common import SWARM_SPEC_OPTIONS, EngineError
from ansible_collections.swarmplane.cluster.plugins.modules import swarm

SPEC = dict(Orchestration={}, Raft={}, Dispatcher={}, CAConfig={}, EncryptionConfig={}, TaskDefaults={})


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Engine:
    """The EngineClient surface `state: present` uses, over a manager whose swarm has a leader or not (`led`)."""

    def __init__(self, module, wait=0, clock=None, sleep=None):
        self.api = self
        self.led = module.led
        self.restored_state = getattr(module, "restored_state", "active")
        self.posts = []

    def info(self):
        state = "active" if self.led else getattr(self, "restored_state", "active")
        return dict(
            Name="manager-1",
            Swarm=dict(LocalNodeState=state, NodeID="n1", NodeAddr="10.0.0.1", ControlAvailable=True),
        )

    def inspect_swarm(self):
        if not self.led:
            raise EngineError("reading the swarm failed: The swarm does not have a leader.", True)
        return dict(ID="c1", Spec=SPEC, Version=dict(Index=7))

    def attempt(self, doing, func, *args, **kwargs):
        return func(*args, **kwargs)

    def call(self, doing, func, *args, **kwargs):
        return func(*args, **kwargs)

    def post_json(self, doing, path, body, params=None):
        self.posts.append((doing, path, params))
        if path == "/swarm/init":
            self.led = True

    def bounded_by(self, deadline):
        pass

    def unbounded(self):
        pass

    def fail(self, msg, **kwargs):
        raise SystemExit(msg)


def present(monkeypatch, led=True, check_mode=False, restored_state="active", **params):
    class Module:
        def __init__(self):
            self.check_mode = check_mode
            self.led = led
            self.restored_state = restored_state
            self.params = {option: None for option in SWARM_SPEC_OPTIONS}
            self.params.update(
                state="present",
                timeout=30,
                force_new_cluster=False,
                rotate_join_tokens=[],
                return_join_tokens=False,
                listen_addr="0.0.0.0:2377",
                advertise_addr="10.0.0.1",
            )
            self.params.update(params)

        def warn(self, msg):
            pass

    monkeypatch.setattr(swarm, "EngineClient", Engine)
    clock = Clock()
    manager = swarm.SwarmManager(Module(), clock=clock, sleep=clock.sleep)
    return manager, manager.run()


def test_nothing_asked_of_a_live_manager_changes_nothing(monkeypatch):
    manager, result = present(monkeypatch)
    assert (result["changed"], result["action"], manager.client.posts) == (False, "none", [])
    assert "rotated" not in result


@pytest.mark.parametrize(
    ("kinds", "params"),
    [
        (["worker"], {"rotateWorkerToken": "true"}),
        (["manager"], {"rotateManagerToken": "true"}),
        (["worker", "manager", "worker"], {"rotateManagerToken": "true", "rotateWorkerToken": "true"}),
    ],
)
def test_rotation_posts_one_update_with_the_rotate_flags_and_the_swarm_version(monkeypatch, kinds, params):
    manager, result = present(monkeypatch, rotate_join_tokens=kinds)
    assert (result["changed"], result["action"]) == (True, "update")
    assert result["rotated"] == sorted(set(kinds))
    assert manager.client.posts == [("docker swarm update", "/swarm/update", dict(version=7, **params))]


def test_rotation_in_check_mode_says_what_it_would_rotate_and_posts_nothing(monkeypatch):
    manager, result = present(monkeypatch, check_mode=True, rotate_join_tokens=["worker"])
    assert (result["changed"], result["rotated"], manager.client.posts) == (True, ["worker"], [])


def test_force_new_cluster_on_a_manager_without_a_leader_forces_one_and_waits_for_it(monkeypatch):
    manager, result = present(monkeypatch, led=False, force_new_cluster=True)
    assert (result["changed"], result["action"]) == (True, "force_new_cluster")
    assert [p[:2] for p in manager.client.posts] == [("docker swarm init --force-new-cluster", "/swarm/init")]


def test_force_new_cluster_on_a_manager_whose_swarm_has_a_leader_is_a_no_op(monkeypatch):
    manager, result = present(monkeypatch, led=True, force_new_cluster=True)
    assert (result["changed"], result["action"], manager.client.posts) == (False, "none", [])


def test_force_new_cluster_takes_a_restored_manager_left_pending_without_a_leader(monkeypatch):
    manager, result = present(monkeypatch, led=False, restored_state="pending", force_new_cluster=True)
    assert (result["changed"], result["action"], result["swarm_state"]) == (True, "force_new_cluster", "active")

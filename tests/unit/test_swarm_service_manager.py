"""The service manager (plugins/module_utils/swarm_service_manager.py) and the batch module's run
(plugins/modules/swarm_services.py) driven against an in-memory swarm (fake_swarm.py): planning, waiting,
and what is left after each kind of failure."""

from __future__ import annotations

import json
import os
import stat

import pytest
from fake_swarm import WEB, FakeModule, FakeSwarm, node, service_params

from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_manager import (
    ServiceError,
    ServiceFailure,
    ServiceManager,
    progress,
    timeout_text,
)
from ansible_collections.swarmplane.cluster.plugins.module_utils.swarm_service_spec import HIDDEN, HIDDEN_CHANGED
from ansible_collections.swarmplane.cluster.plugins.modules.swarm_services import apply_all

V1, V2, BROKEN, MISSING = WEB + ":v1", WEB + ":v2", WEB + ":broken", WEB + ":gone"


@pytest.fixture
def swarm(tmp_path):
    swarm = FakeSwarm()
    swarm.saved = tmp_path / "saved"
    return swarm


def run(swarm, check_mode=False, planned=None, **params):
    manager = swarm.manager(check_mode=check_mode, planned=planned, **params)
    manager.saved_spec_dir = str(swarm.saved)
    return manager, manager.run(swarm.services())


def failing(swarm, **params):
    manager = swarm.manager(**params)
    manager.saved_spec_dir = str(swarm.saved)
    with pytest.raises(ServiceError) as caught:
        manager.run(swarm.services())
    return manager, " ".join(str(caught.value).split())


def live_spec(swarm, name):
    return swarm.service(name)["Spec"]


# --------------------------------------------------------------------------- structure


def test_the_manager_knows_its_state_from_the_start_and_plans_against_the_snapshot_it_is_given(swarm):
    swarm.deploy("web")
    manager = swarm.manager(name="web", replicas=3)
    assert (manager.live, manager.spec, manager.rebuild, manager.started) == (None, None, [], None)
    snapshot = swarm.services()
    swarm.services_.clear()  # what the engine says later does not matter to the plan
    manager.plan(snapshot)
    assert manager.live["Spec"]["Name"] == "web" and manager.spec["Mode"] == dict(Replicated=dict(Replicas=3))
    assert manager.result["outcome"] == "would change"


def test_an_unchanged_service_is_neither_sent_nor_waited_for(swarm):
    swarm.deploy("web")
    _, result = run(swarm, name="web", image=V1, replicas=2)
    assert result["changed"] is False and result["outcome"] == "unchanged"
    assert swarm.writes == [("create", "web")] and swarm.clock.sleeps == 0


# --------------------------------------------------------------------------- path 0: global services


def test_a_global_service_waits_for_a_task_on_every_eligible_node_and_only_those(swarm):
    swarm.nodes_ += [
        node("drained", availability="drain"),
        node("paused", availability="pause"),
        node("down", state="down"),
        node("gpu", labels={"gpu": "yes"}),
    ]
    _, result = run(swarm, name="agent", image=V1, mode="global", constraints=["node.role==worker"])
    assert result["outcome"] == "changed"
    assert (result["running"], result["wanted"]) == (3, 3)
    assert sorted(t["node"] for t in result["tasks"]) == ["gpu", "worker-1", "worker-2"]


def test_a_new_global_service_whose_tasks_fail_fails_the_run_and_is_removed(swarm):
    manager, message = failing(swarm, name="agent", image=BROKEN, mode="global")
    assert message.startswith("service agent: tasks keep failing: one failed 3 times since the change")
    assert "task: non-zero exit (1)" in message
    assert "The new service was removed again; nothing is left half-created." in message
    assert swarm.service("agent") is None and manager.result["outcome"] == "rolled back"


@pytest.mark.parametrize("mode", ["global", "replicated"])
def test_a_new_service_whose_tasks_start_and_exit_a_moment_later_is_never_reported_running(swarm, mode):
    manager, message = failing(swarm, name="agent", image=WEB + ":flaky", mode=mode)
    assert message.startswith("service agent: tasks keep failing: one failed 3 times since the change")
    assert swarm.service("agent") is None and manager.result["outcome"] == "rolled back"


def test_a_task_counts_once_it_ran_for_the_update_monitor(swarm):
    monitor = dict(Parallelism=1, FailureAction="pause", Monitor=8_000_000_000, Order="stop-first")
    manager, result = run(swarm, name="agent", image=V1, mode="global", update_config=dict(monitor="8s"))
    assert manager.spec["UpdateConfig"] == dict(manager.spec["UpdateConfig"], **monitor)
    assert result["running"] == 3 and 8 <= swarm.clock.sleeps <= 10
    swarm.deploy("quick", UpdateConfig=dict(monitor, Monitor=0))
    before = swarm.clock.sleeps
    run(swarm, name="quick", image=V2)
    assert swarm.clock.sleeps - before < 8


def test_progress_of_a_global_service_counts_eligible_nodes_not_tasks_seen():
    nodes = [node("a"), node("b"), node("c", availability="pause")]
    service = dict(ID="s", Spec=dict(Mode=dict(Global={}), TaskTemplate=dict(ContainerSpec=dict(Image="web"))))

    def task(node_id, state):
        return dict(NodeID=node_id, DesiredState="running", Status=dict(State=state), CreatedAt="")

    assert progress(service, [], nodes, since=0)["wanted"] == 2  # no task listed yet: still 2 wanted
    state = progress(service, [task("a", "running"), task("c", "pending")], nodes, since=0)
    assert (state["running"], state["wanted"], state["converged"]) == (1, 2, False)
    state = progress(service, [task("a", "running"), task("b", "running"), task("c", "pending")], nodes, since=0)
    assert state["converged"] is True  # the task waiting on the paused node is not wanted
    assert "1 of 2 tasks running after 5s (task states: pending, running" in timeout_text(
        progress(service, [task("a", "running"), task("c", "pending")], nodes, since=0), 5
    )


def test_a_change_of_the_placement_alone_that_every_task_fits_converges_without_an_update(swarm):
    swarm.deploy("web", TaskTemplate=dict(ContainerSpec=dict(Image=V1), Placement={}))
    _, result = run(swarm, name="web", constraints=["node.platform.os==linux"])
    assert result["outcome"] == "changed" and "UpdateStatus" not in swarm.service("web")
    assert swarm.clock.sleeps < 3  # no wait for an update the engine never starts


# --------------------------------------------------------------------------- path 1: rebuilds


def publishing_service(swarm):
    return swarm.deploy(
        "modal",
        TaskTemplate=dict(
            ContainerSpec=dict(
                Image=V1,
                Env=["DB_PASSWORD=s3cret"],
                Secrets=[dict(SecretID="sec-db", SecretName="db_password", File=dict(Name="db_password"))],
            ),
            Networks=[dict(Target="net-front", Aliases=["www"])],
            Placement={},
        ),
        EndpointSpec=dict(Mode="vip", Ports=[dict(TargetPort=8000, PublishedPort=8080, Protocol="tcp")]),
    )


def test_a_rebuild_whose_new_service_fails_creates_the_old_one_again_as_it_was(swarm):
    before = publishing_service(swarm)
    manager, message = failing(swarm, name="modal", mode="global", image=BROKEN)
    # the old service is gone meanwhile: the first failed task of the new one ends the wait
    assert message.startswith("service modal: a task of the new service failed (engine says: task: non-zero exit")
    assert (
        "The change (mode replicated -> global) needed the service removed and created again; the new one failed "
        "and was removed, and the previous one was created again from its saved spec (replicated, 2 replicas of "
        "registry.example/web:v1; ports 8080->8000/tcp; networks front; secrets db_password): 2 of 2 tasks run. "
        "Outage: " in message
    )
    assert "nothing is left" not in message
    assert live_spec(swarm, "modal") == before["Spec"]
    assert len(swarm.running("modal")) == 2
    assert manager.result["outcome"] == "rolled back" and manager.result["rolled_back"] is True
    assert list(swarm.saved.iterdir()) == []  # the saved spec is dropped once the service runs again


def test_a_rebuild_the_engine_refuses_creates_the_old_one_again(swarm):
    before = publishing_service(swarm)
    swarm.refuse("create", "modal", "invalid mount config")
    manager, message = failing(swarm, name="modal", mode="global")
    assert message.startswith("service modal: creating the service again as global failed: invalid mount config.")
    assert "the previous one was created again from its saved spec" in message
    assert live_spec(swarm, "modal") == before["Spec"] and manager.result["outcome"] == "rolled back"


def test_a_rebuild_that_cannot_be_undone_says_what_is_left_and_how_to_restore_it(swarm):
    before = publishing_service(swarm)
    swarm.refuse("create", "modal", "invalid mount config")
    swarm.refuse("create", "modal", "raft: no elected cluster leader")
    manager, message = failing(swarm, name="modal", mode="global")
    saved = next(swarm.saved.iterdir())
    assert "the previous one could NOT be created again: creating the previous service again from its saved " in message
    assert "No service named modal exists now: its tasks are gone." in message
    assert (
        "is saved in %s on this manager. Fix: create it with `curl --unix-socket /var/run/docker.sock -H "
        "'Content-Type: application/json' --data @%s http://localhost/services/create`" % (saved, saved) in message
    )
    assert "nothing is left" not in message and manager.result["outcome"] == "failed"
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert json.loads(saved.read_text()) == before["Spec"]  # env values included: the file is root's only
    assert "s3cret" not in message


def test_a_saved_spec_pins_the_port_the_swarm_picked(swarm):
    swarm.deploy("auto", EndpointSpec=dict(Mode="vip", Ports=[dict(TargetPort=8000, Protocol="tcp")]))
    picked = swarm.service("auto")["Endpoint"]["Ports"][0]["PublishedPort"]
    swarm.refuse("create", "auto", "invalid mount config")
    swarm.refuse("create", "auto", "raft: no elected cluster leader")
    failing(swarm, name="auto", mode="global")
    saved = json.loads(next(swarm.saved.iterdir()).read_text())
    assert saved["EndpointSpec"]["Ports"][0]["PublishedPort"] == picked


def test_a_rebuild_to_an_image_missing_from_the_registry_is_refused_before_anything_is_removed(swarm):
    before = publishing_service(swarm)
    manager, message = failing(swarm, name="modal", mode="global", image=MISSING)
    assert (
        "service modal: changing mode replicated -> global needs the service removed and created again, but image "
        "registry.example/web:gone cannot be pulled" in message
    )
    assert "the service is left as it runs (replicated, 2 replicas of registry.example/web:v1" in message
    assert swarm.service("modal") == before and swarm.writes == [("create", "modal")]


def test_a_rebuild_onto_no_eligible_node_is_refused_before_anything_is_removed(swarm):
    before = publishing_service(swarm)
    _, message = failing(swarm, name="modal", mode="global", constraints=["node.labels.zone==mars"])
    assert (
        "but no node can run it (Ready, availability active, matching constraints ['node.labels.zone==mars'])"
        in message
    )
    assert "Fix: correct constraints" in message
    assert swarm.service("modal") == before and swarm.writes == [("create", "modal")]


def test_check_mode_announces_the_rebuild_and_changes_nothing(swarm):
    swarm.deploy("modal")
    _, result = run(swarm, check_mode=True, name="modal", mode="global")
    assert result["rebuilt"] is True and result["outcome"] == "would change"
    assert result["changes"]["Mode"]["after"] == "global (the service is removed and created again)"
    assert swarm.writes == [("create", "modal")]


def test_a_rebuild_not_waited_for_keeps_the_saved_spec_and_says_where(swarm):
    before = publishing_service(swarm)
    _, result = run(swarm, name="modal", mode="global", wait=False)
    saved = next(swarm.saved.iterdir())
    assert result["outcome"] == "changed" and result["saved_spec"] == str(saved)
    assert json.loads(saved.read_text()) == before["Spec"]


def test_a_successful_rebuild_reports_its_outage_and_drops_the_saved_spec(swarm):
    swarm.deploy("modal")
    _, result = run(swarm, name="modal", mode="global")
    assert result["outcome"] == "changed" and result["rebuilt"] is True
    assert result["running"] == result["wanted"] == 3 and result["outage"] >= 1
    assert list(swarm.saved.iterdir()) == []


def test_a_rebuild_removal_the_engine_applied_without_answering_brings_the_old_service_back(swarm):
    before = publishing_service(swarm)
    swarm.no_answer("remove", "modal")
    manager, message = failing(swarm, name="modal", mode="global")
    assert message.startswith("service modal: removing the service to rebuild it failed: no answer within 60 s")
    assert (
        "the engine did not answer the removal, but removed the service, and the previous one was created again "
        "from its saved spec (replicated, 2 replicas of registry.example/web:v1" in message
    )
    assert "2 of 2 tasks run. Outage: " in message and "Nothing was changed" not in message
    assert live_spec(swarm, "modal") == before["Spec"] and len(swarm.running("modal")) == 2
    assert manager.result["outcome"] == "rolled back" and manager.result["changed"] is True
    assert ("create", "modal") not in swarm.writes[1:-1]  # no new service was ever created
    assert list(swarm.saved.iterdir()) == []


def test_a_rebuild_removal_that_got_no_answer_and_was_not_applied_changes_nothing(swarm):
    before = publishing_service(swarm)
    swarm.no_answer("remove", "modal", applied=False)
    manager, message = failing(swarm, name="modal", mode="global")
    assert message.startswith("service modal: removing the service to rebuild it failed: no answer within 60 s")
    assert "Nothing was changed: service modal is still there (replicated, 2 replicas of registry." in message
    assert swarm.service("modal") == before and manager.result["changed"] is False
    assert list(swarm.saved.iterdir()) == []  # nothing was removed: no saved spec left behind


def test_a_rebuild_removal_applied_without_answer_that_cannot_be_undone_gives_the_saved_spec(swarm):
    before = publishing_service(swarm)
    swarm.no_answer("remove", "modal")
    swarm.refuse("create", "modal", "raft: no elected cluster leader")
    manager, message = failing(swarm, name="modal", mode="global")
    saved = next(swarm.saved.iterdir())
    assert "the previous one could NOT be created again" in message
    assert "No service named modal exists now: its tasks are gone." in message
    assert "is saved in %s on this manager. Fix: create it with `curl --unix-socket" % saved in message
    assert json.loads(saved.read_text()) == before["Spec"] and manager.result["outcome"] == "failed"


def test_a_timeout_while_waiting_for_a_rebuilt_service_brings_the_old_one_back(swarm):
    before = publishing_service(swarm)
    swarm.no_answer("tasks", "modal", applied=False)  # the first look at the new service's tasks
    manager, message = failing(swarm, name="modal", mode="global")
    assert message.startswith(
        "service modal: listing tasks failed: no answer within 60 s (UnixHTTPConnectionPool(host='localhost', "
        "port=None): Read timed out. (read timeout=60)) while waiting for the new service."
    )
    assert (
        "The change (mode replicated -> global) needed the service removed and created again; whether the new one "
        "runs could not be read and was removed, and the previous one was created again from its saved spec "
        "(replicated, 2 replicas of registry.example/web:v1" in message
    )
    assert "left as the engine has it" not in message
    assert live_spec(swarm, "modal") == before["Spec"] and len(swarm.running("modal")) == 2
    assert manager.result["outcome"] == "rolled back" and list(swarm.saved.iterdir()) == []


def test_an_engine_that_stops_answering_during_a_rebuild_leaves_the_saved_spec_and_says_where(swarm):
    before = publishing_service(swarm)
    swarm.no_answer("tasks", "modal", applied=False, times=50)
    manager, message = failing(swarm, name="modal", mode="global")
    saved = next(swarm.saved.iterdir())
    assert "while waiting for the new service" in message
    assert "the previous one was created again from its saved spec" in message
    assert "but it does not run either: listing tasks failed: no answer within 60 s" in message
    assert "its saved spec is in %s on this manager" % saved in message
    assert json.loads(saved.read_text()) == before["Spec"] and manager.result["outcome"] == "failed"


# --------------------------------------------------------------------------- calls the engine did not answer


def test_an_update_the_engine_applied_without_answering_is_not_reported_as_nothing_changed(swarm):
    swarm.deploy("web")
    swarm.no_answer("update", "web")
    manager, message = failing(swarm, name="web", image=V2)
    assert message.startswith("service web: updating the service failed: no answer within 60 s")
    assert "The engine applied the update all the same: service web now has the new spec (update state: " in message
    assert "Nothing was changed" not in message
    assert live_spec(swarm, "web")["TaskTemplate"]["ContainerSpec"]["Image"] == V2
    assert manager.result["changed"] is True and manager.result["outcome"] == "failed"


def test_an_update_that_got_no_answer_and_was_not_applied_says_nothing_changed(swarm):
    before = swarm.deploy("web")
    swarm.no_answer("update", "web", applied=False)
    manager, message = failing(swarm, name="web", image=V2)
    assert message.startswith("service web: updating the service failed: no answer within 60 s")
    assert "Nothing was changed: service web runs as before (replicated, 2 replicas of registry.example/web:v1" in (
        message
    )
    assert swarm.service("web") == before and manager.result["changed"] is False


def test_a_creation_the_engine_applied_without_answering_says_the_service_exists(swarm):
    swarm.no_answer("create", "fresh")
    manager, message = failing(swarm, name="fresh", image=V1)
    assert message.startswith("service fresh: creating the service failed: no answer within 60 s")
    assert "The engine created the service all the same: it exists now (replicated" in message
    assert swarm.service("fresh") is not None and manager.result["changed"] is True


def test_a_removal_the_engine_applied_without_answering_says_the_service_is_gone(swarm):
    swarm.deploy("web")
    swarm.no_answer("remove", "web")
    manager, message = failing(swarm, name="web", state="absent")
    assert message == (
        "service web: removing the service failed: no answer within 60 s (UnixHTTPConnectionPool(host='localhost', "
        "port=None): Read timed out. (read timeout=60)). The engine removed the service all the same: no service web "
        "exists now."
    )
    assert swarm.service("web") is None and manager.result["changed"] is True


def test_a_refused_call_still_says_nothing_changed_without_reading_back(swarm):
    before = swarm.deploy("web")
    swarm.refuse("remove", "web", "rpc error: code = Unavailable")
    _, message = failing(swarm, name="web", state="absent")
    assert message == "service web: removing the service failed: rpc error: code = Unavailable. Nothing was changed."
    assert swarm.service("web") == before


# --------------------------------------------------------------------------- path 4: updates and rollbacks


def test_a_failed_update_is_rolled_back_by_the_module_and_said_so_once_the_old_spec_runs(swarm):
    before = swarm.deploy("web")
    manager, message = failing(swarm, name="web", image=BROKEN)
    assert "the update failed (update paused due to failure or early termination of task" in message
    assert message.endswith("The update was rolled back to the previous spec: 2 of 2 tasks run.")
    assert live_spec(swarm, "web") == before["Spec"] and manager.result["rolled_back"] is True
    assert ("rollback", "web") in swarm.writes


def test_the_engines_own_rollback_is_reported_and_not_sent_again(swarm):
    before = swarm.deploy(
        "web", UpdateConfig=dict(Parallelism=1, FailureAction="rollback", Monitor=5_000_000_000, Order="stop-first")
    )
    manager, message = failing(swarm, name="web", image=BROKEN)
    assert "the update failed and the engine rolled it back (rollback completed)" in message
    assert (
        "The engine rolled the update back by itself (update_config.failure_action: rollback): 2 of 2 tasks run."
        in message
    )
    assert "does not have a previous spec" not in message
    assert ("rollback", "web") not in swarm.writes
    assert live_spec(swarm, "web") == before["Spec"] and manager.result["outcome"] == "rolled back"


def test_an_engine_rollback_that_starts_after_the_failure_was_seen_is_followed_not_sent_again(swarm):
    before = swarm.deploy(
        "web", UpdateConfig=dict(Parallelism=1, FailureAction="rollback", Monitor=5_000_000_000, Order="stop-first")
    )
    manager, _ = run(swarm, name="web", image=V2)  # plans, sends and waits: the update completed
    # The module saw the update fail (say a crash loop) a moment before the engine started its own rollback.
    web = swarm.service("web")
    web["Spec"], web["PreviousSpec"] = web["PreviousSpec"], None
    web["UpdateStatus"] = dict(State="rollback_started", StartedAt=swarm.stamp(), Message="update rolled back")
    swarm._replace_tasks(web)
    text = manager.roll_back_update(ServiceFailure("tasks keep failing"))
    assert text == (
        ". The engine rolled the update back by itself (update_config.failure_action: rollback): 2 of 2 tasks run."
    )
    assert ("rollback", "web") not in swarm.writes and live_spec(swarm, "web") == before["Spec"]
    assert manager.result["outcome"] == "rolled back"


def test_an_engine_rollback_that_does_not_finish_is_never_reported_as_rolled_back(swarm):
    swarm.deploy(
        "web", UpdateConfig=dict(Parallelism=1, FailureAction="rollback", Monitor=5_000_000_000, Order="stop-first")
    )
    swarm.stuck_rollback = True
    manager, message = failing(swarm, name="web", image=BROKEN, wait_timeout=5)
    assert "(task states: " in message and "update state: rollback_started" in message
    assert (
        "The engine was rolling the update back by itself (update_config.failure_action: rollback), but the rollback "
        "did not finish" in message
    )
    assert manager.result["rolled_back"] is False and manager.result["outcome"] == "failed"


def test_a_module_rollback_that_does_not_finish_is_never_reported_as_rolled_back(swarm):
    swarm.deploy("web")
    swarm.stuck_rollback = True
    manager, message = failing(swarm, name="web", image=BROKEN, wait_timeout=5)
    assert "The update was being rolled back to the previous spec, but the rollback did not finish" in message
    assert manager.result["rolled_back"] is False and manager.result["outcome"] == "failed"


def test_rollback_on_failure_false_leaves_the_update_as_the_engine_stopped_it(swarm):
    swarm.deploy("web")
    manager, message = failing(swarm, name="web", image=BROKEN, rollback_on_failure=False)
    assert message.endswith("The update is left as the engine stopped it (rollback_on_failure=false).")
    assert manager.result["outcome"] == "failed" and ("rollback", "web") not in swarm.writes


def test_an_image_that_cannot_be_pulled_fails_a_new_service_at_once(swarm):
    _, message = failing(swarm, name="ghost", image=MISSING)
    assert message.startswith("service ghost: image registry.example/web:gone cannot be pulled: No such image")
    assert swarm.clock.sleeps < 5


def test_old_failures_of_a_service_do_not_fail_a_later_change(swarm):
    swarm.deploy("web")
    failing(swarm, name="web", image=BROKEN)
    _, result = run(swarm, name="web", image=V2)
    assert result["outcome"] == "changed" and result["running"] == 2


# --------------------------------------------------------------------------- path 3: a batch of services


def batch(swarm, services, check_mode=False, planned=None):
    module = FakeModule(dict(services=[service_params(**s) for s in services], planned=planned), check_mode)
    return apply_all(module, swarm.client(module), clock=swarm.clock)


def test_services_sent_together_wait_for_their_monitor_side_by_side_not_one_after_another(swarm):
    # Each task counts once it ran for the 8 s monitor by its own status time: the second and third services were
    # running while the first was waited for, so the batch waits about one monitor, not three.
    names = ["first", "second", "third"]
    result, error = batch(swarm, [dict(name=n, image=V1, update_config=dict(monitor="8s")) for n in names])
    assert error is None and [r["outcome"] for r in result["services"]] == ["changed"] * 3
    assert 8 <= swarm.clock.sleeps <= 11


def test_a_task_whose_status_time_is_ahead_of_this_clock_counts_from_when_it_is_seen(swarm):
    # A node clock ahead: a negative age counts as none, the monitor is waited in full.
    swarm.clock_skew = 60
    _, result = run(swarm, name="agent", image=V1, mode="global", update_config=dict(monitor="8s"))
    assert result["running"] == 3 and 8 <= swarm.clock.sleeps <= 10


def test_an_engine_error_on_one_service_keeps_the_outcome_of_the_others_and_stops_the_rest(swarm):
    swarm.deploy("first")
    swarm.refuse("update", "second", "rpc error: code = Unknown desc = update out of sequence")
    swarm.deploy("second")
    result, error = batch(
        swarm, [dict(name="first", image=V2), dict(name="second", image=V2), dict(name="third", image=V1)]
    )
    outcomes = {r["name"]: (r["outcome"], r["changed"]) for r in result["services"]}
    assert outcomes == {
        "first": ("changed", True),
        "second": ("failed", False),
        "third": ("not applied", False),
    }
    assert result["changed"] is True
    assert error.startswith("service second: updating the service failed: rpc error: code = Unknown desc = update out")
    assert "not applied (the run stopped before them): third" in error
    assert error.endswith("Outcome: first changed, second failed, third not applied.")
    assert swarm.service("third") is None and len(swarm.running("first")) == 2


def test_a_service_sent_before_the_refused_one_is_waited_for_and_rolled_back(swarm):
    before = swarm.deploy("first")
    swarm.deploy("second")
    swarm.refuse("update", "second", "invalid mount config")
    result, error = batch(swarm, [dict(name="first", image=BROKEN), dict(name="second", image=V2)])
    assert [r["outcome"] for r in result["services"]] == ["rolled back", "failed"]
    assert "service first: the update failed" in error and "rolled back to the previous spec" in error
    assert live_spec(swarm, "first") == before["Spec"]


def test_a_planning_error_changes_nothing_and_names_every_service(swarm):
    result, error = batch(
        swarm,
        [
            dict(name="a", image=V1, networks=["nowhere"]),
            dict(name="b", image=V1, secrets=[dict(source="unknown")]),
            dict(name="c", image=V1),
        ],
    )
    assert error == (
        "nothing was changed: service a: unknown network nowhere (networks: field). Fix: declare it in "
        "swarm_networks (an earlier task creates it) or create it first. | service b: unknown secret unknown "
        "(secrets: field). Fix: declare it in swarm_secrets (an earlier task creates it) or create it first."
    )
    assert result["changed"] is False and swarm.writes == []


def test_check_mode_plans_with_the_objects_earlier_tasks_would_create(swarm):
    planned = dict(networks=["backend"], secrets=["api_key_0123456789ab"], configs=[])
    service = dict(name="api", image=V1, networks=["backend"], secrets=[dict(source="api_key_0123456789ab")])
    result, error = batch(swarm, [service], check_mode=True, planned=planned)
    assert error is None and result["changed"] is True
    template = result["services"][0]["changes"]["TaskTemplate"]["after"]
    assert template["Networks"] == [dict(Target="(new network backend, created by this run)")]
    assert (
        template["ContainerSpec"]["Secrets"][0]["SecretID"] == "(new secret api_key_0123456789ab, created by this run)"
    )
    assert swarm.writes == []


def test_planned_objects_do_not_count_outside_check_mode(swarm):
    planned = dict(networks=["backend"], secrets=[], configs=[])
    result, error = batch(swarm, [dict(name="api", image=V1, networks=["backend"])], planned=planned)
    assert error.startswith("nothing was changed: service api: unknown network backend (networks: field).")


# --------------------------------------------------------------------------- secrets in output


def test_env_values_are_hidden_in_changes_diff_and_errors_but_key_names_show(swarm):
    swarm.deploy("web", TaskTemplate=dict(ContainerSpec=dict(Image=V1, Env=["DB_PASSWORD=old-pass", "MODE=x"])))
    params = dict(name="web", image=BROKEN, env=dict(DB_PASSWORD="new-pass", MODE="x"))
    manager, message = failing(swarm, **params)
    text = json.dumps(manager.result) + message
    assert "old-pass" not in text and "new-pass" not in text
    env = manager.result["changes"]["TaskTemplate.ContainerSpec.Env"]
    assert env == dict(
        before=["DB_PASSWORD=" + HIDDEN, "MODE=" + HIDDEN], after=["DB_PASSWORD=" + HIDDEN_CHANGED, "MODE=" + HIDDEN]
    )
    assert manager.result["diff"]["after"]["TaskTemplate.ContainerSpec.Env"] == env["after"]


def vanishing_after_rollback(swarm, monkeypatch):
    """Remove each service behind the module's back as soon as the wait for its rollback returns."""
    original = ServiceManager.wait

    def wait(manager, since, expect, *args):
        progress = original(manager, since, expect, *args)
        if manager.result["outcome"] == "failed":  # the wait of the rollback (the change already failed)
            swarm.remove_service(swarm.service(manager.name)["ID"])
        return progress

    monkeypatch.setattr(ServiceManager, "wait", wait)


def test_a_service_removed_during_the_rollback_check_is_reported_gone(swarm, monkeypatch):
    swarm.deploy("web")
    vanishing_after_rollback(swarm, monkeypatch)
    manager, message = failing(swarm, name="web", image=BROKEN)
    assert message.endswith(
        "The update was rolled back to the previous spec, but the service is gone: no service web exists now "
        "(removed outside this run?). Fix: declare it as wanted and run again."
    )
    assert manager.result["outcome"] == "gone" and manager.result["rolled_back"] is False


def test_a_batch_reports_a_service_removed_during_its_rollback_check_as_gone(swarm, monkeypatch):
    swarm.deploy("web")
    swarm.deploy("db")
    vanishing_after_rollback(swarm, monkeypatch)
    result, error = batch(swarm, [dict(name="web", image=BROKEN), dict(name="db", image=V2)])
    outcomes = {r["name"]: r["outcome"] for r in result["services"]}
    assert outcomes == {"web": "gone", "db": "changed"}
    assert "service web: the update failed" in error and "the service is gone: no service web exists now" in error
    assert error.endswith("Outcome: web gone, db changed.")
    assert len(swarm.running("db")) == 2


# --------------------------------------------------------------------------- replicas that cannot be placed


def test_replicas_beyond_what_host_mode_ports_allow_are_refused_before_anything_is_sent(swarm):
    publish = [dict(target=8000, published=8080, mode="host")]
    _, message = failing(swarm, name="web", image=V1, replicas=4, publish=publish)
    assert (
        "service web: 4 replicas cannot be placed: 3 node(s) can run it (availability active: manager-1, worker-1, "
        "worker-2), each at most 1 task(s) (port 8080/tcp published in host mode). Nothing was changed." in message
    )
    assert swarm.writes == []


def test_a_constraint_no_node_matches_is_refused_before_anything_is_sent(swarm):
    _, message = failing(swarm, name="web", image=V1, constraints=["node.labels.zone==mars"])
    assert "no node can run it (none of the 3 nodes is availability active, matching constraints" in message
    assert swarm.writes == []


def test_max_replicas_per_node_within_the_nodes_is_placed_and_beyond_them_refused(swarm):
    _, result = run(swarm, name="web", image=V1, replicas=6, max_replicas_per_node=2)
    assert result["running"] == 6
    swarm.nodes_[2]["Spec"]["Availability"] = "drain"
    _, message = failing(swarm, name="web", image=V1, replicas=5, max_replicas_per_node=2)
    assert (
        "5 replicas cannot be placed: 2 node(s) can run it (availability active: manager-1, worker-1), each at most "
        in message
    )
    assert "2 task(s) (max_replicas_per_node: 2)" in message


def test_tasks_the_engine_cannot_place_end_the_wait_within_seconds_with_its_reason(swarm):
    swarm.nodes_ = [node("manager-1", "manager"), node("worker-1", labels={"zone": "a"})]
    run(swarm, name="web", image=V1, replicas=1, constraints=["node.labels.zone==a"])
    swarm.nodes_[1]["Status"]["State"] = "down"  # the only node it may run on: the pre-check counts it, it may return
    before = swarm.clock.sleeps
    manager = swarm.manager(name="web", image=V2, replicas=1, constraints=["node.labels.zone==a"], wait_timeout=120)
    manager.saved_spec_dir = str(swarm.saved)
    with pytest.raises(ServiceError) as caught:
        manager.run(swarm.services())
    message = " ".join(str(caught.value).split())
    assert "0 of 1 tasks running, and for 10s the engine has placed no more: no suitable node" in message
    assert swarm.clock.sleeps - before < 30  # the update and its rollback each gave up after 10 s, not 120 s

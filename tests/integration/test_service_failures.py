"""Failures lose nothing (issue 7), on real engines: each test injects a failure into a services.yml run (an image
that exits at once, an image missing from the registry, constraints no node matches, a spec the engine refuses, a
secret removed in the middle of a rebuild) and checks that what was running still runs with the same spec, and that
the message says what happened. Runs on its own lab (`sfail`, with the lab registry), created and removed here."""

import json
import subprocess
import time
import urllib.request

import pytest
from conftest import changed, registry_lab, run_adhoc, run_services

LAB = "sfail"
WEB = "lab-registry:5000/swarmplane/web"
SAVED_SPECS = "/var/lib/swarmplane/saved-services"
# A task of the broken image is started again after this delay: three failures (a certain failure) come quickly.
FAST_RESTART = dict(delay="1s")


def lab_exec(host, command):
    return subprocess.run(
        ["docker", "exec", "swarmplane-%s-%s" % (LAB, host), "sh", "-c", command], text=True, capture_output=True
    )


def manager(command):
    return lab_exec("manager-1", command)


@pytest.fixture(scope="module")
def fail_lab(tmp_path_factory):
    with registry_lab(LAB, tmp_path_factory.mktemp("sfail")) as formed:
        yield formed


def service(name, **options):
    return dict(dict(name=name, constraints=["node.role==worker"]), **options)


def spec(name):
    """The live spec of a service, or None."""
    out = manager("docker service inspect %s --format '{{json .Spec}}'" % name)
    return json.loads(out.stdout) if out.returncode == 0 else None


def api_spec(name):
    """The spec as the engine's API gives it (what the module saves), not as the docker CLI re-encodes it."""
    read = "import docker, json; print(json.dumps(docker.APIClient().inspect_service('%s')['Spec']))" % name
    return json.loads(manager('python3 -c "%s"' % read).stdout)


def service_id(name):
    return manager("docker service inspect %s --format '{{.ID}}'" % name).stdout.strip()


def running(name):
    out = manager("docker service ps %s --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'" % name)
    return sorted(line.split()[0] for line in out.stdout.splitlines() if " Running " in line + " ")


def wait_until(condition, what, timeout=60):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.5)


def fetch(address, port):
    with urllib.request.urlopen("http://%s:%d/" % (address, port), timeout=2) as reply:
        return reply.read().decode().strip()


# --------------------------------------------------------------------------- path 0: global services


def test_a_global_service_waits_for_eligible_nodes_and_fails_when_its_tasks_fail(fail_lab, tmp_path):
    inventory, _ = fail_lab
    manager("docker node update --availability pause worker-2")
    try:
        agent = service("agent", image=WEB + ":v1", mode="global", update_config=dict(monitor="2s"))
        deployed = run_services(inventory, tmp_path, dict(swarm_services=[agent]))
        assert deployed.returncode == 0, deployed.stdout[-3000:]
        # worker-2 is paused: its task waits there, and is not wanted
        assert "agent: 1 running (agent." in deployed.text and running("agent") == ["worker-1"]
    finally:
        manager("docker node update --availability active worker-2")
    wait_until(lambda: running("agent") == ["worker-1", "worker-2"], "agent on both workers")
    before = spec("agent")

    broken = dict(agent, image=WEB + ":broken", restart_policy=FAST_RESTART)
    updated = run_services(inventory, tmp_path, dict(swarm_services=[broken]))
    assert updated.returncode != 0
    assert "service agent: the update failed (update paused due to failure" in updated.text
    assert "The update was rolled back to the previous spec: 2 of 2 tasks run." in updated.text
    assert spec("agent") == before and running("agent") == ["worker-1", "worker-2"]

    new = run_services(
        inventory,
        tmp_path,
        dict(swarm_services=[service("gfail", image=WEB + ":broken", mode="global", restart_policy=FAST_RESTART)]),
    )
    assert new.returncode != 0
    assert (
        "service gfail: tasks keep failing: one failed 3 times since the change (engine says: task: non-zero exit (1))"
        in new.text
    )
    assert "The new service was removed again; nothing is left half-created." in new.text
    assert spec("gfail") is None and spec("agent") == before


# --------------------------------------------------------------------------- path 1: rebuilds


def test_a_mode_change_whose_new_service_fails_brings_the_old_one_back_as_it_was(fail_lab, tmp_path):
    inventory, addresses = fail_lab
    declared = dict(
        swarm_networks=[dict(name="fnet", attachable=True)],
        swarm_secrets=[dict(name="modal_pw", data="hunter2-secret")],
        swarm_configs=[dict(name="modal_conf", data="site: one\n")],
    )
    modal = service(
        "modal",
        image=WEB + ":v1",
        replicas=2,
        env=dict(DB_PASSWORD="hunter2-env"),
        networks=[dict(name="fnet", aliases=["modal-alias"])],
        secrets=[dict(source="modal_pw")],
        configs=[dict(source="modal_conf")],
        publish=[dict(target=8000, published=8082, mode="host")],
    )
    first = run_services(inventory, tmp_path, dict(declared, swarm_services=[modal]))
    assert first.returncode == 0, first.stdout[-3000:]
    before = spec("modal")

    rebuild = dict(modal, mode="global", replicas=None, image=WEB + ":broken", restart_policy=FAST_RESTART)
    result = run_services(inventory, tmp_path, dict(declared, swarm_services=[rebuild]), "--diff", "-vvv")
    assert result.returncode != 0
    assert "service modal: a task of the new service failed (engine says: task: non-zero exit (1))" in result.text
    assert (
        "The change (mode replicated -> global) needed the service removed and created again; the new one failed and "
        "was removed, and the previous one was created again from its saved spec (replicated, 2 replicas of "
        "lab-registry:5000/swarmplane/web:v1; ports 8082->8000/tcp; networks fnet; secrets modal_pw_" in result.text
    )
    assert "): 2 of 2 tasks run. Outage: " in result.text and "nothing is left" not in result.text
    assert spec("modal") == before
    assert running("modal") == ["worker-1", "worker-2"]
    assert {fetch(addresses[w], 8082).split()[-1] for w in ("worker-1", "worker-2")} == {"v1"}
    # env values are hidden everywhere, even at -vvv, and the key names show
    assert "hunter2-env" not in result.stdout and "hunter2-secret" not in result.stdout
    assert "DB_PASSWORD: <hidden>" in result.stdout
    assert manager("ls -A %s 2>/dev/null" % SAVED_SPECS).stdout.strip() == ""  # dropped once it runs again


def adhoc(inventory, module, args):
    """One module run on manager-1, as an operator would type it (`ansible manager-1 -m ... -a ...`)."""
    result = run_adhoc(inventory, "manager-1", module, args)
    result.text = " ".join(result.stdout.split())
    return result


def test_the_issues_case_a_mode_change_by_swarm_service_to_a_broken_image_keeps_the_service(fail_lab):
    """The issue's first try: `swarm_service name=modal mode=global image=<broken>` on a live 2-replica service."""
    inventory, _ = fail_lab
    created = adhoc(
        inventory,
        "swarmplane.cluster.swarm_service",
        "name=solo image=%s:v1 replicas=2 constraints=node.role==worker env={'PW':'solo-pass'}" % WEB,
    )
    assert created.returncode == 0, created.stdout[-3000:]
    assert "- PW=<hidden>" in created.text and "solo-pass" not in created.stdout + created.stderr
    before = spec("solo")

    result = adhoc(
        inventory,
        "swarmplane.cluster.swarm_service",
        "name=solo mode=global image=%s:broken env={'PW':'solo-pass'}" % WEB,
    )
    assert result.returncode != 0
    assert "service solo: a task of the new service failed (engine says: task: non-zero exit (1))" in result.text
    assert (
        "the new one failed and was removed, and the previous one was created again from its saved spec (replicated, "
        "2 replicas of lab-registry:5000/swarmplane/web:v1): 2 of 2 tasks run. Outage: " in result.text
    )
    assert "outcome: rolled back" in result.text and "nothing is left" not in result.text
    assert "solo-pass" not in result.stdout + result.stderr
    assert spec("solo") == before and running("solo") == ["worker-1", "worker-2"]


def test_a_rebuild_that_cannot_work_is_refused_before_the_service_is_removed(fail_lab, tmp_path):
    inventory, _ = fail_lab
    steady = service("steady", image=WEB + ":v1", replicas=1)
    assert run_services(inventory, tmp_path, dict(swarm_services=[steady])).returncode == 0
    before, before_id = spec("steady"), service_id("steady")

    missing = run_services(
        inventory, tmp_path, dict(swarm_services=[dict(steady, mode="global", replicas=None, image=WEB + ":gone")])
    )
    assert missing.returncode != 0
    assert (
        "service steady: changing mode replicated -> global needs the service removed and created again, but image "
        "lab-registry:5000/swarmplane/web:gone cannot be pulled (looking the image up in its registry failed: "
        "manifest unknown" in missing.text
    )
    assert (
        "the service is left as it runs (replicated, 1 replica of lab-registry:5000/swarmplane/web:v1)" in missing.text
    )

    nowhere = dict(steady, mode="global", replicas=None, constraints=["node.labels.zone==mars"])
    unplaceable = run_services(inventory, tmp_path, dict(swarm_services=[nowhere]))
    assert unplaceable.returncode != 0
    assert (
        "service steady: changing mode replicated -> global needs the service removed and created again, but no node "
        "can run it (Ready, availability active, matching constraints ['node.labels.zone==mars'])" in unplaceable.text
    )
    assert service_id("steady") == before_id and spec("steady") == before and len(running("steady")) == 1


def test_a_rebuild_that_cannot_be_undone_says_what_is_left_and_where_the_spec_is(fail_lab, tmp_path):
    inventory, _ = fail_lab

    def declaration(password, **options):
        keep = service("keep", image=WEB + ":v1", replicas=1, secrets=[dict(source="keep_pw")])
        return dict(swarm_secrets=[dict(name="keep_pw", data=password)], swarm_services=[dict(keep, **options)])

    assert run_services(inventory, tmp_path, declaration("one")).returncode == 0
    before = api_spec("keep")
    old_version = before["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"]

    # While the new (global, broken) service starts, the secret version the old spec needs is removed: the old
    # service cannot be created again. The watcher runs on the manager itself and polls every 0.1 s, well inside
    # the second or so the new service's first task takes to fail (which ends the wait of a rebuild).
    watch = (
        'timeout 600 sh -c \'until docker service inspect keep --format "{{json .Spec.Mode}}" 2>/dev/null '
        "| grep -q Global; do sleep 0.1; done; docker secret rm %s'" % old_version
    )
    remover = subprocess.Popen(
        ["docker", "exec", "swarmplane-%s-manager-1" % LAB, "sh", "-c", watch],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        result = run_services(
            inventory, tmp_path, declaration("two", mode="global", replicas=None, image=WEB + ":broken")
        )
    finally:
        if remover.poll() is None:
            remover.kill()
        removed = remover.communicate()[0]
    assert old_version in removed, removed  # `docker secret rm` names what it removed
    assert result.returncode != 0
    assert (
        "the new one failed, and the previous one could NOT be created again: creating the previous service"
        in result.text
    )
    assert "No service named keep exists now: its tasks are gone." in result.text
    assert "nothing is left" not in result.text
    saved = manager("ls %s/keep-*.json" % SAVED_SPECS).stdout.split()
    assert len(saved) == 1
    assert (
        "is saved in %s on this manager. Fix: create it with `curl --unix-socket /var/run/docker.sock -H "
        "'Content-Type: application/json' --data @%s http://localhost/services/create`" % (saved[0], saved[0])
    ) in result.text
    assert manager("stat -c %%a %s" % saved[0]).stdout.strip() == "600"
    assert json.loads(manager("cat %s" % saved[0]).stdout) == before
    manager("rm -f %s" % saved[0])


# --------------------------------------------------------------------------- path 3: a batch of services


def test_an_engine_error_in_a_batch_keeps_the_outcome_of_every_other_service(fail_lab, tmp_path):
    inventory, _ = fail_lab
    names = ("ok1", "bad1", "ref1")
    first = [service(n, image=WEB + ":v1", replicas=1, update_config=dict(monitor="2s")) for n in names]
    assert run_services(inventory, tmp_path, dict(swarm_services=first)).returncode == 0
    before = {n: spec(n) for n in names}

    second = [
        dict(first[0], image=WEB + ":v2"),
        dict(first[1], image=WEB + ":broken", restart_policy=FAST_RESTART),
        dict(first[2], constraints=["node.role==worker", "node.labels.zone!=eu!"]),  # the engine refuses the value
        service("new1", image=WEB + ":v1", replicas=1),
    ]
    result = run_services(inventory, tmp_path, dict(swarm_services=second))
    assert result.returncode != 0
    assert "service ref1: updating the service failed: " in result.text and "value 'eu!' is invalid" in result.text
    assert "service bad1: the update failed" in result.text
    assert "not applied (the run stopped before them): new1" in result.text
    assert "Outcome: ok1 changed, bad1 rolled back, ref1 failed, new1 not applied." in result.text
    assert "changed: true" in result.stdout
    assert spec("ok1")["TaskTemplate"]["ContainerSpec"]["Image"].startswith(WEB + ":v2")
    assert spec("bad1") == before["bad1"] and spec("ref1") == before["ref1"]
    assert spec("new1") is None


# --------------------------------------------------------------------------- path 4: rollbacks


def test_an_update_the_engine_rolls_back_by_itself_is_reported_as_such(fail_lab, tmp_path):
    inventory, _ = fail_lab
    auto = service("auto", image=WEB + ":v1", replicas=2, update_config=dict(failure_action="rollback", monitor="3s"))
    assert run_services(inventory, tmp_path, dict(swarm_services=[auto])).returncode == 0
    before = spec("auto")

    result = run_services(
        inventory, tmp_path, dict(swarm_services=[dict(auto, image=WEB + ":broken", restart_policy=FAST_RESTART)])
    )
    assert result.returncode != 0
    assert "service auto: the update failed and the engine rolled it back" in result.text
    assert (
        "The engine rolled the update back by itself (update_config.failure_action: rollback): 2 of 2 tasks run."
        in result.text
    )
    assert "does not have a previous spec" not in result.text
    assert spec("auto") == before and len(running("auto")) == 2


def test_a_wait_that_only_timed_out_never_reports_rolled_back(fail_lab, tmp_path):
    inventory, _ = fail_lab
    slow = service("slow", image=WEB + ":v1", replicas=2, update_config=dict(delay="5s", monitor="1s"))
    assert run_services(inventory, tmp_path, dict(swarm_services=[slow])).returncode == 0
    before = spec("slow")

    result = run_services(inventory, tmp_path, dict(swarm_services=[dict(slow, image=WEB + ":v2", wait_timeout=2)]))
    assert result.returncode != 0
    assert "service slow: " in result.text and "tasks running after 2s" in result.text
    assert "The update was being rolled back to the previous spec, but the rollback did not finish" in result.text
    assert "rolled_back: false" in result.stdout and "rolled back to the previous spec:" not in result.text
    state = "docker service inspect slow --format '{{.UpdateStatus.State}}'"
    wait_until(lambda: manager(state).stdout.strip() == "rollback_completed", "the engine to finish the rollback")
    assert spec("slow") == before


def test_replicas_that_can_never_be_placed_are_refused_before_anything_is_sent(fail_lab, tmp_path):
    inventory, _ = fail_lab
    placed = service("placed", image=WEB + ":v1", replicas=2, publish=[dict(target=8000, published=8093, mode="host")])
    assert run_services(inventory, tmp_path, dict(swarm_services=[placed])).returncode == 0
    before = spec("placed")

    too_many = run_services(inventory, tmp_path, dict(swarm_services=[dict(placed, replicas=3)]))
    assert too_many.returncode != 0
    assert (
        "service placed: 3 replicas cannot be placed: 2 node(s) can run it (availability active, matching "
        "constraints ['node.role==worker']: worker-1, worker-2), each at most 1 task(s) (port 8093/tcp published in "
        "host mode). Nothing was changed." in too_many.text
    )
    nowhere = run_services(
        inventory, tmp_path, dict(swarm_services=[dict(placed, constraints=["node.labels.zone==mars"])])
    )
    assert nowhere.returncode != 0
    assert "service placed: no node can run it (none of the 3 nodes is availability active, matching constraints" in (
        nowhere.text
    )
    assert spec("placed") == before and running("placed") == ["worker-1", "worker-2"]
    manager("docker service rm placed")


def test_tasks_the_engine_cannot_place_end_the_wait_in_seconds_with_its_reason_and_are_rolled_back(fail_lab, tmp_path):
    inventory, _ = fail_lab
    greedy = service("greedy", image=WEB + ":v1", replicas=1, wait_timeout=600)
    assert run_services(inventory, tmp_path, dict(swarm_services=[greedy])).returncode == 0
    before = spec("greedy")
    # No node has 512 CPUs: the pre-check does not count resources, the engine keeps the new task pending. The wait
    # (600 s) gives up after 10 s with the engine's words, and the update is rolled back.
    result = run_services(inventory, tmp_path, dict(swarm_services=[dict(greedy, reservations=dict(cpus=512))]))
    assert result.returncode != 0
    assert "service greedy: 0 of 1 tasks running, and for 10s the engine has placed no more: no suitable node" in (
        result.text
    )
    assert "insufficient resources on" in result.text, result.text[-2500:]
    assert "rolled back" in result.text
    assert spec("greedy") == before and len(running("greedy")) == 1
    manager("docker service rm greedy")


# --------------------------------------------------------------------------- path 6: check mode


def test_check_mode_plans_new_networks_secrets_and_configs_and_the_services_using_them(fail_lab, tmp_path):
    inventory, _ = fail_lab

    def declaration(password):
        return dict(
            swarm_networks=[dict(name="cknet")],
            swarm_secrets=[dict(name="ck_pw", data=password)],
            swarm_configs=[dict(name="ck_conf", data="x=1\n")],
            swarm_services=[
                service(
                    "ckuser",
                    image=WEB + ":v1",
                    replicas=1,
                    networks=["cknet"],
                    secrets=[dict(source="ck_pw")],
                    configs=[dict(source="ck_conf")],
                )
            ],
        )

    planned = run_services(inventory, tmp_path, declaration("first"), "--check", "--diff")
    assert planned.returncode == 0, planned.stdout[-3000:]
    for phrase in ("(new network cknet, created by this run)", "(new secret ck_pw_", "(new config ck_conf_"):
        assert phrase in planned.text
    assert sum(changed(planned).values()) == 4  # network, secret, config, service
    assert "ckuser: would change" in planned.text
    assert manager("docker network inspect cknet").returncode != 0 and spec("ckuser") is None
    assert manager("docker secret ls -q --filter name=ck_pw").stdout.strip() == ""

    assert run_services(inventory, tmp_path, declaration("first")).returncode == 0
    before = spec("ckuser")
    rotated = run_services(inventory, tmp_path, declaration("second"), "--check", "--diff")
    assert rotated.returncode == 0, rotated.stdout[-3000:]
    # the service would move to the new version: the diff shows it as created by the run
    assert "SecretID: (new secret ck_pw_" in rotated.stdout and "ckuser: would change" in rotated.text
    assert "None:" not in rotated.text
    assert spec("ckuser") == before

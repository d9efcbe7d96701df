"""Services as data on real engines: deploy, scale, rolling update, rollback, bad input, check mode.
Runs on its own lab (`svc`, with the lab registry), created and removed by this module."""

import json
import subprocess
import threading
import time
import urllib.request

import pytest
import yaml
from conftest import changed, registry_lab, run_playbook, run_services

LAB = "svc"
WEB = "lab-registry:5000/swarmplane/web"


def lab_exec(host, command):
    return subprocess.run(
        ["docker", "exec", "swarmplane-%s-%s" % (LAB, host), "sh", "-c", command], text=True, capture_output=True
    )


@pytest.fixture(scope="module")
def svc_lab(tmp_path_factory):
    with registry_lab(LAB, tmp_path_factory.mktemp("svc")) as formed:
        yield formed


def service(name, **options):
    return dict(dict(name=name, constraints=["node.role==worker"]), **options)


def running(name):
    out = lab_exec(
        "manager-1", "docker service ps %s --filter desired-state=running --format '{{json .}}'" % name
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line]


def fetch(address, port):
    with urllib.request.urlopen("http://%s:%d/" % (address, port), timeout=2) as reply:
        return reply.read().decode().strip()


def recap_changed(result):
    return sum(changed(result).values())


def test_deploy_two_replicas_on_two_nodes_answering_on_their_ports(svc_lab, tmp_path):
    inventory, addresses = svc_lab
    web = service(
        "myweb",
        image=WEB + ":v1",
        replicas=2,
        max_replicas_per_node=1,
        publish=[dict(target=8000, published=8080, mode="host")],
    )
    result = run_services(inventory, tmp_path, dict(swarm_services=[web]))
    assert result.returncode == 0, result.stdout[-3000:]
    tasks = running("myweb")
    assert sorted(t["Node"] for t in tasks) == ["worker-1", "worker-2"]
    replies = {fetch(addresses[t["Node"]], 8080) for t in tasks}
    assert len(replies) == 2 and all(r.endswith(" v1") for r in replies)

    again = run_services(inventory, tmp_path, dict(swarm_services=[web]))
    assert again.returncode == 0 and recap_changed(again) == 0


def test_check_mode_reports_a_replica_change_without_applying_it(svc_lab, tmp_path):
    inventory, _ = svc_lab
    web = service(
        "myweb",
        image=WEB + ":v1",
        replicas=2,
        max_replicas_per_node=1,
        publish=[dict(target=8000, published=8080, mode="host")],
    )
    unchanged = run_services(inventory, tmp_path, dict(swarm_services=[web]), "--check")
    assert unchanged.returncode == 0 and recap_changed(unchanged) == 0
    changed = run_services(inventory, tmp_path, dict(swarm_services=[dict(web, replicas=1)]), "--check", "--diff")
    assert changed.returncode == 0 and recap_changed(changed) == 1
    assert "Replicas: 1" in changed.stdout
    assert len(running("myweb")) == 2


def test_scale_up_and_down_then_remove_leaves_other_services_alone(svc_lab, tmp_path):
    inventory, _ = svc_lab
    scaler = service("scaler", image=WEB + ":v1", replicas=2)
    assert run_services(inventory, tmp_path, dict(swarm_services=[scaler])).returncode == 0
    for replicas in (4, 1):
        result = run_services(inventory, tmp_path, dict(swarm_services=[scaler], swarm_scale=dict(scaler=replicas)))
        assert result.returncode == 0, result.stdout[-3000:]
        assert len(running("scaler")) == replicas
    assert len(running("myweb")) == 2  # untouched by the scale
    removed = run_services(inventory, tmp_path, dict(swarm_services=[dict(scaler, state="absent")]))
    assert removed.returncode == 0
    assert lab_exec("manager-1", "docker service inspect scaler").returncode != 0


def test_rolling_update_keeps_one_replica_serving_and_a_broken_image_rolls_back(svc_lab, tmp_path):
    inventory, addresses = svc_lab
    roll = service(
        "roll",
        image=WEB + ":v1",
        replicas=2,
        max_replicas_per_node=1,
        publish=[dict(target=8000, published=8081, mode="host")],
        update_config=dict(parallelism=1, delay="2s", monitor="3s"),
    )
    assert run_services(inventory, tmp_path, dict(swarm_services=[roll])).returncode == 0
    workers = [addresses["worker-1"], addresses["worker-2"]]
    rounds, outages, stop = [], [], threading.Event()

    def poll():
        while not stop.is_set() and len(rounds) < 2000:
            answers = []
            for address in workers:
                try:
                    answers.append(fetch(address, 8081))
                except OSError:
                    pass
            rounds.append(answers)
            if not answers:
                outages.append(time.monotonic())
            time.sleep(0.1)

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        updated = run_services(inventory, tmp_path, dict(swarm_services=[dict(roll, image=WEB + ":v2")]))
    finally:
        stop.set()
        poller.join()
    assert updated.returncode == 0, updated.stdout[-3000:]
    assert len(rounds) > 20 and outages == []
    assert {fetch(a, 8081).split()[-1] for a in workers} == {"v2"}

    broken = run_services(inventory, tmp_path, dict(swarm_services=[dict(roll, image=WEB + ":broken")]))
    assert broken.returncode != 0
    assert "service roll: " in broken.stdout and "rolled back" in " ".join(broken.stdout.split())
    image = lab_exec("manager-1", "docker service inspect roll --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'")
    assert image.stdout.startswith(WEB + ":v2")
    assert len(running("roll")) == 2


def test_image_missing_from_the_registry_leaves_no_service_behind(svc_lab, tmp_path):
    inventory, _ = svc_lab
    result = run_services(inventory, tmp_path, dict(swarm_services=[service("ghost", image=WEB + ":does-not-exist")]))
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert "service ghost: image lab-registry:5000/swarmplane/web:does-not-exist cannot be pulled" in text
    assert "The new service was removed again" in text
    assert lab_exec("manager-1", "docker service inspect ghost").returncode != 0


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (
            dict(swarm_services=[dict(name="bad", image=WEB + ":v1", replicas=-1)]),
            "service bad: replicas=-1 is not a whole number >= 0.",
        ),
        (
            dict(swarm_services=[dict(name="bad", image=WEB + ":v1", publish=[dict(target=8000, published=70000)])]),
            "service bad: publish[0].published=70000 is not a port (1-65535).",
        ),
        (
            dict(swarm_services=[dict(name="bad", image=WEB + ":v1"), dict(name="bad", image=WEB + ":v2")]),
            "service bad is declared twice (swarm_services[0] and [1]).",
        ),
        (
            dict(
                swarm_services=[
                    dict(name="bad", image=WEB + ":v1", publish=[dict(target=8000, published=8080, mode="host")])
                ]
            ),
            "service bad: published port 8080/tcp is already used by service myweb",
        ),
        (
            dict(swarm_services=[dict(name="bad", image=WEB + ":v1", networks=["nowhere"])]),
            "service bad: unknown network nowhere",
        ),
        (
            dict(swarm_services=[dict(name="bad", image=WEB + ":v1", replicas="many")]),
            "service bad: replicas='many' is not a whole number >= 0.",
        ),
    ],
    ids=[
        "negative-replicas",
        "port-out-of-range",
        "duplicate-name",
        "port-used-by-myweb",
        "unknown-network",
        "replicas-not-a-number",
    ],
)
def test_bad_service_declarations_fail_with_the_service_and_field_and_apply_nothing(
    svc_lab, tmp_path, declaration, message
):
    inventory, _ = svc_lab
    result = run_services(inventory, tmp_path, declaration)
    assert result.returncode != 0
    assert message in " ".join(result.stdout.split())
    assert lab_exec("manager-1", "docker service inspect bad").returncode != 0


def test_secret_rotation_moves_the_service_to_the_new_version(svc_lab, tmp_path):
    inventory, _ = svc_lab

    def declaration(password):
        return dict(
            swarm_secrets=[dict(name="db_password", data=password)],
            swarm_services=[service("vault", image=WEB + ":v1", replicas=1, secrets=[dict(source="db_password")])],
        )

    def secret_in_task():
        task = running("vault")[0]
        host = task["Node"]
        container = lab_exec(host, "docker ps -q --filter label=com.docker.swarm.service.name=vault").stdout.split()[0]
        return lab_exec(host, "docker exec %s cat /run/secrets/db_password" % container).stdout

    first = run_services(inventory, tmp_path, declaration("first-password"))
    assert first.returncode == 0, first.stdout[-3000:]
    assert secret_in_task() == "first-password"
    assert "first-password" not in first.stdout  # never shown

    rotated = run_services(inventory, tmp_path, declaration("second-password"))
    assert rotated.returncode == 0, rotated.stdout[-3000:]
    assert secret_in_task() == "second-password"
    versions = lab_exec("manager-1", "docker secret ls --filter label=swarmplane.name=db_password --format '{{.Name}}'")
    assert len(versions.stdout.split()) == 2  # the old version stays while the previous spec can roll back to it

    again = run_services(inventory, tmp_path, declaration("second-password"))
    assert again.returncode == 0 and recap_changed(again) <= 1  # at most the pruning of versions no longer used


def test_encrypted_network_is_created_and_hosts_without_esp_are_named(svc_lab, tmp_path):
    inventory, _ = svc_lab
    result = run_services(inventory, tmp_path, dict(swarm_networks=[dict(name="secure", encrypted=True)]))
    assert result.returncode == 0, result.stdout[-3000:]
    options = lab_exec("manager-1", "docker network inspect secure --format '{{json .Options}}'").stdout
    assert '"encrypted"' in options
    esp = (
        lab_exec("worker-1", "test -d /sys/module/esp4 || ls /lib/modules/$(uname -r) >/dev/null 2>&1").returncode == 0
    )
    text = " ".join(result.stdout.split())
    if not esp:  # this machine's kernel: no ESP, and the play must say so
        assert "secure are encrypted (IPsec ESP between hosts), but these hosts' kernels have no ESP" in text


def test_mode_change_is_announced_as_a_rebuild_in_check_mode(svc_lab, tmp_path):
    inventory, _ = svc_lab
    modal = service("modal", image=WEB + ":v1", replicas=1)
    assert run_services(inventory, tmp_path, dict(swarm_services=[modal])).returncode == 0
    result = run_services(
        inventory, tmp_path, dict(swarm_services=[dict(modal, mode="global", replicas=None)]), "--check", "--diff"
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "global (the service is removed and created again)" in " ".join(result.stdout.split())
    mode = lab_exec("manager-1", "docker service inspect modal --format '{{json .Spec.Mode}}'").stdout
    assert "Replicated" in mode  # check mode changed nothing


def test_network_change_under_services_fails_naming_them_then_recreate_reattaches(svc_lab, tmp_path):
    inventory, _ = svc_lab
    user = service("netuser", image=WEB + ":v1", replicas=1, networks=["shared"])
    declared = dict(swarm_networks=[dict(name="shared", attachable=False)], swarm_services=[user])
    assert run_services(inventory, tmp_path, declared).returncode == 0

    changed = dict(declared, swarm_networks=[dict(name="shared", attachable=True)])
    refused = run_services(inventory, tmp_path, changed)
    assert refused.returncode != 0
    assert "network shared: attachable cannot change on an existing network, and services use it: netuser" in " ".join(
        refused.stdout.split()
    )

    recreate = dict(declared, swarm_networks=[dict(name="shared", attachable=True, recreate=True)])
    result = run_services(inventory, tmp_path, recreate)
    assert result.returncode == 0, result.stdout[-3000:]
    network_id = lab_exec(
        "manager-1", "docker network inspect shared --format '{{.Id}} {{.Attachable}}'"
    ).stdout.split()
    assert network_id[1] == "true"
    targets = lab_exec(
        "manager-1", "docker service inspect netuser --format '{{json .Spec.TaskTemplate.Networks}}'"
    ).stdout
    assert network_id[0] in targets


def test_ingress_ports_on_hosts_without_ipvs_are_warned_about(svc_lab, tmp_path):
    inventory, _ = svc_lab
    # The warning is what is tested, not the task: without IPVS an ingress task's start can be slow, so no wait.
    meshy = service("meshy", image=WEB + ":v1", replicas=1, publish=[dict(target=8000, published=8090)], wait=False)
    result = run_services(inventory, tmp_path, dict(swarm_services=[meshy]))
    assert result.returncode == 0, result.stdout[-3000:]
    text = " ".join(result.stdout.split())
    ipvs = lab_exec("worker-1", "test -e /proc/net/ip_vs").returncode == 0
    if not ipvs:  # this machine's kernel: the routing mesh cannot work, and the play must say where
        assert "meshy publish ports in ingress mode (the routing mesh), which needs IPVS in the kernel" in text, text[
            -2000:
        ]
        assert "manager-1, worker-1, worker-2" in text
        # verify.yml asks every node for the port, fails, and names the cause on each node.
        extra = tmp_path / "meshy.yml"
        extra.write_text(yaml.safe_dump(dict(swarm_services=[meshy])))
        verify = run_playbook(inventory, "-e", "@%s" % extra, "-e", "verify_requests=2", playbook="verify.yml")
        report = " ".join(verify.stdout.split())
        assert verify.returncode != 0
        assert "not served: meshy via manager-1, meshy via worker-1, meshy via worker-2" in report, report[-3000:]
        for node in ("manager-1", "worker-1", "worker-2"):
            assert "%s: routing mesh: the kernel has no IPVS" % node in report
    removed = run_services(inventory, tmp_path, dict(swarm_services=[dict(meshy, state="absent")]))
    assert removed.returncode == 0, removed.stdout[-3000:]

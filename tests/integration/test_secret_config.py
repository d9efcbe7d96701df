"""swarm_secret and swarm_config on a real engine: check mode, create, no change, rotation while a service
uses the old version, pruning, versioned: false refusing to change an object in use, state=absent refusing what a
rollback target still needs, the keyed names, and the migration of a service from a version named by the sha256.

Its own throwaway lab (`secrettest`, a single-node swarm), not the shared `lab` fixture: the modules need
only a manager, so the engine is started and the swarm initialised by hand instead of by cluster.yml.
The helpers that form such a swarm, run one module and read the live services are shared with
test_network_failures.py."""

import contextlib
import functools
import hashlib
import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_adhoc, run_playbook

LAB = "secrettest"
LAB_PY = str(REPO / "lab" / "lab.py")


def lab_shell(lab, host, command, check=True):
    """A shell command in a lab host; its stdout (stripped). With check, a failure fails the test."""
    container = "swarmplane-%s-%s" % (lab, host)
    result = subprocess.run(["docker", "exec", container, "sh", "-c", command], text=True, capture_output=True)
    if check:
        assert result.returncode == 0, "%s on %s: %s" % (command, host, result.stderr[-2000:])
    return result.stdout.strip()


host = functools.partial(lab_shell, LAB, "manager-1")


def run_module(inventory, module, args, check=False, diff=False, target="manager-1"):
    """One ad-hoc module run on the target host; returns (rc, the module's result, the whole output)."""
    options = (["--check"] if check else []) + (["--diff"] if diff else [])
    proc = run_adhoc(
        inventory,
        target,
        "swarmplane.cluster.%s" % module,
        args,
        *options,
        env=dict(ANSIBLE_CALLBACK_RESULT_FORMAT="json"),
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    marker = proc.stdout.find("%s | " % target)
    assert marker >= 0, output[-3000:]
    start = proc.stdout.index("{", marker)
    result, _ = json.JSONDecoder().raw_decode(proc.stdout[start:])
    return proc.returncode, result, output


# Runs on the manager (python3-docker is on every lab host): each service's spec in names (networks with their
# aliases, secrets, configs), its version, and its tasks.
LIVE_SERVICES = r"""
import docker, json
api = docker.APIClient()
names = {n["Id"]: n["Name"] for n in api.networks()}
def attachments(spec):
    return [[names.get(a["Target"], a["Target"]), a.get("Aliases") or []]
            for a in (spec.get("TaskTemplate") or {}).get("Networks") or []]
def refs(spec, key, name):
    return sorted(r[name] for r in spec["TaskTemplate"]["ContainerSpec"].get(key) or [])
found = {}
for service in api.services():
    spec = service["Spec"]
    tasks = api.tasks(filters={"service": service["ID"]})
    running = [t for t in tasks if t["DesiredState"] == "running" and t["Status"]["State"] == "running"]
    found[spec["Name"]] = dict(
        spec=dict(
            networks=attachments(spec),
            secrets=refs(spec, "Secrets", "SecretName"),
            configs=refs(spec, "Configs", "ConfigName"),
            image=spec["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0],
            replicas=((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas"),
        ),
        version=service["Version"]["Index"],
        running=len(running),
        pending=sum(1 for t in tasks if t["DesiredState"] == "running" and t["Status"]["State"] != "running"),
        task_networks=sorted(sorted(a["Network"]["Spec"]["Name"] for a in t.get("NetworksAttachments") or [])
                             for t in running),
        failed=sorted(t["Status"]["State"] for t in tasks if t["Status"]["State"] in ("failed", "rejected")),
    )
print(json.dumps(found))
"""


def live_services(lab):
    """{service name: dict(spec, version, running, pending, task_networks, failed)} read on manager-1."""
    return json.loads(lab_shell(lab, "manager-1", "python3 - <<'EOF'\n%s\nEOF" % LIVE_SERVICES))


def converged(lab, names, timeout=120):
    """live_services() once every named service runs all its replicas, each task on the spec's networks."""
    deadline = time.monotonic() + timeout
    while True:
        live = live_services(lab)
        waiting = [n for n in names if not service_converged(live[n])]
        if not waiting:
            return live
        assert time.monotonic() < deadline, "not converged after %d s: %s" % (timeout, {n: live[n] for n in waiting})
        time.sleep(1)


def service_converged(live):
    networks = sorted(name for name, _ in live["spec"]["networks"])
    return (
        live["running"] == live["spec"]["replicas"]
        and live["pending"] == 0
        and all(attached == networks for attached in live["task_networks"])
    )


@contextlib.contextmanager
def hand_made_swarm(lab, directory, workers=0):
    """A swarm of lab hosts formed by hand (engine started, init, join), the lab web image loaded on every
    host; yields dict(inventory, image). The lab is removed afterwards, even when the body fails."""
    inventory = Path(directory) / "hosts.yml"
    hosts = ["manager-1"] + ["worker-%d" % i for i in range(1, workers + 1)]
    try:
        subprocess.run(
            [LAB_PY, "up", "--name", lab, "--managers", "1", "--workers", str(workers), "--inventory", str(inventory)],
            check=True,
        )
        image = subprocess.run(
            [str(REPO / "lab" / "build-web-image.sh")], check=True, text=True, capture_output=True
        ).stdout.split()[-1]
        for name in hosts:
            lab_shell(
                lab,
                name,
                "start-stop-daemon --start --background --output /var/log/dockerd.log --exec /usr/sbin/dockerd",
            )
        for name in hosts:
            lab_shell(
                lab, name, "for i in $(seq 60); do docker info >/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1"
            )
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            subprocess.run(
                ["docker", "exec", "-i", "swarmplane-%s-%s" % (lab, name), "docker", "load", "-q"],
                stdin=save.stdout,
                check=True,
                capture_output=True,
            )
            save.stdout.close()
            assert save.wait() == 0
        lab_shell(lab, "manager-1", "docker swarm init >/dev/null")
        address = yaml.safe_load(inventory.read_text())["all"]["children"]["swarm"]["children"]["managers"]["hosts"]
        token = lab_shell(lab, "manager-1", "docker swarm join-token -q worker")
        for name in hosts[1:]:
            lab_shell(lab, name, "docker swarm join --token %s %s:2377" % (token, address["manager-1"]["ansible_host"]))
        yield dict(inventory=inventory, image=image)
    finally:
        subprocess.run([LAB_PY, "down", "--name", lab], check=False)


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    """A single-node swarm in a lab container, with the lab web image loaded; removed even when tests fail."""
    with hand_made_swarm(LAB, tmp_path_factory.mktemp(LAB)) as formed:
        yield formed


def names(kind, logical):
    return sorted(n for n in host("docker %s ls --format '{{.Name}}'" % kind).splitlines() if n.startswith(logical))


def service_reads(service, path, want, attempts=60):
    """The content of `path` in the service's running task, once it equals `want` (tasks restart on updates)."""
    seen = None
    for _ in range(attempts):
        container = host("docker ps -q -f name=%s. -f status=running | head -1" % service, check=False)
        if container:
            seen = host("docker exec %s cat %s" % (container, path), check=False)
            if seen == want:
                return seen
        time.sleep(1)
    return seen


def create_service(swarm, name, flag):
    host("docker service create -q --detach=false --name %s %s %s >/dev/null 2>&1" % (name, flag, swarm["image"]))


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_secret_rotation_while_in_use_pruning_and_removal(swarm):
    inv = swarm["inventory"]
    args = dict(name="db_password", data="hunter2", labels={"app": "web"})

    rc, check, output = run_module(inv, "swarm_secret", args, check=True, diff=True)
    assert rc == 0 and check["changed"] is True and check["id"] is None
    v1 = check["name"]
    assert v1.startswith("db_password_") and len(v1) == len("db_password_") + 12
    assert names("secret", "db_password") == [] and names("config", "swarmplane-version-key") == []
    assert "hunter2" not in output and '"hmac": "%s"' % check["hmac"] in output
    assert sha256("hunter2")[:12] not in output

    rc, first, output = run_module(inv, "swarm_secret", args)
    assert rc == 0 and first["changed"] is True and first["name"] == v1 and first["id"]
    assert names("secret", "db_password") == [v1]
    labels = json.loads(host("docker secret inspect %s --format '{{json .Spec.Labels}}'" % v1))
    assert labels == {"app": "web", "swarmplane.name": "db_password", "swarmplane.hmac": first["hmac"]}
    key = host("docker config inspect swarmplane-version-key --format '{{printf \"%s\" .Spec.Data}}'")
    assert len(key) == 64 and key not in output

    rc, again, _ = run_module(inv, "swarm_secret", args)
    assert rc == 0 and again["changed"] is False and again["id"] == first["id"]
    rc, again_check, _ = run_module(inv, "swarm_secret", args, check=True)
    assert rc == 0 and again_check["changed"] is False

    create_service(swarm, "app", "--secret source=%s,target=db_password" % v1)
    assert service_reads("app", "/run/secrets/db_password", "hunter2") == "hunter2"

    # Rotation: each new value is a new secret; the one the service uses is never removed.
    versions = [v1]
    for value in ("hunter3", "hunter4", "hunter5"):
        rc, rotated, _ = run_module(inv, "swarm_secret", dict(args, data=value, keep_versions=1))
        assert rc == 0 and rotated["changed"] is True and rotated["services"] == ["app"]
        versions.insert(0, rotated["name"])
    assert rotated["pruned"] == [versions[2]]
    assert rotated["versions"] == [versions[0], versions[1], v1]
    assert names("secret", "db_password") == sorted([versions[0], versions[1], v1])

    # The service moves to the newest version; the old one stays while the service's previous spec (what a
    # rollback returns to) needs it, whatever keep_versions says.
    host(
        "docker service update -q --detach=false --secret-rm %s --secret-add source=%s,target=db_password app"
        % (v1, versions[0])
    )
    assert service_reads("app", "/run/secrets/db_password", "hunter5") == "hunter5"
    rc, pruned, _ = run_module(inv, "swarm_secret", dict(args, data="hunter5", keep_versions=0))
    assert rc == 0 and pruned["pruned"] == [versions[1]] and pruned["versions"] == [versions[0], v1]

    rc, refused, _ = run_module(inv, "swarm_secret", dict(name="db_password", state="absent"))
    assert rc != 0
    assert refused["msg"] == (
        "secret db_password: these versions are still needed, so not removed: %s (used by app); %s (rollback "
        "target of app: the previous spec uses it). Fix: remove the secret from those services (docker service "
        "update --secret-rm NAME SERVICE) or remove the services; update each service whose rollback target needs "
        "it once more, so its previous spec no longer names it (docker service update --force SERVICE; its tasks "
        "restart), or set force: true to remove it anyway (docker service rollback SERVICE then fails), then run "
        "again." % (versions[0], v1)
    )
    assert names("secret", "db_password") == sorted([versions[0], v1])

    host("docker service rm app >/dev/null")
    rc, removed, _ = run_module(inv, "swarm_secret", dict(name="db_password", state="absent"))
    assert rc == 0 and removed["changed"] is True and sorted(removed["pruned"]) == sorted([versions[0], v1])
    assert names("secret", "db_password") == []


def test_absent_refuses_a_version_a_rollback_target_needs_and_the_rollback_still_works(swarm):
    """Path 5: the engine removes a secret only a service's previous spec uses, and the rollback then fails."""
    inv = swarm["inventory"]
    rc, old, _ = run_module(inv, "swarm_secret", dict(name="api_token", data="token-one"))
    rc2, new, _ = run_module(inv, "swarm_secret", dict(name="next_token", data="token-two"))
    assert rc == rc2 == 0
    create_service(swarm, "roller", "--secret source=%s,target=api_token" % old["name"])
    host(
        "docker service update -q --detach=false --secret-rm %s --secret-add source=%s,target=api_token roller"
        % (old["name"], new["name"])
    )
    assert service_reads("roller", "/run/secrets/api_token", "token-two") == "token-two"
    previous = "docker service inspect roller --format '{{json .PreviousSpec.TaskTemplate.ContainerSpec.Secrets}}'"
    before = (live_services(LAB)["roller"], host(previous))

    for check in (True, False):
        rc, refused, _ = run_module(inv, "swarm_secret", dict(name="api_token", state="absent"), check=check)
        assert rc != 0 and refused["changed"] is False
        assert refused["msg"].startswith(
            "secret api_token: this version is still needed, so not removed: %s (rollback target of roller: the "
            "previous spec uses it). Fix: update each service whose rollback target needs it once more" % old["name"]
        )
    assert names("secret", "api_token_") == [old["name"]]
    assert (live_services(LAB)["roller"], host(previous)) == before  # what was running runs, with the same spec

    rc, forced_check, _ = run_module(
        inv, "swarm_secret", dict(name="api_token", state="absent", force=True), check=True
    )
    assert rc == 0 and forced_check["pruned"] == [old["name"]] and names("secret", "api_token_") == [old["name"]]

    host("docker service rollback -q --detach=false roller >/dev/null 2>&1")
    assert service_reads("roller", "/run/secrets/api_token", "token-one") == "token-one"
    assert live_services(LAB)["roller"]["failed"] == []
    rc, used, _ = run_module(inv, "swarm_secret", dict(name="api_token", state="absent", force=True))
    assert rc != 0 and "%s (used by roller)" % old["name"] in used["msg"]  # force never removes what runs
    host("docker service rm roller >/dev/null")


def test_a_service_on_a_version_named_by_the_sha256_moves_to_the_keyed_name_without_a_failed_task(swarm, tmp_path):
    """The migration: a secret as releases before the keyed digest created it, used by a running service,
    then services.yml as an operator runs it."""
    value = "legacy-pass"
    legacy = "mig_password_%s" % sha256(value)[:12]
    host(
        "printf %s | docker secret create --label swarmplane.name=mig_password --label swarmplane.sha256=%s %s - "
        ">/dev/null" % (value, sha256(value), legacy)
    )
    create_service(swarm, "migrant", "--replicas 2 --secret source=%s,target=mig_password" % legacy)
    assert converged(LAB, ["migrant"])["migrant"]["running"] == 2

    rc, planned, _ = run_module(swarm["inventory"], "swarm_secret", dict(name="mig_password", data=value), check=True)
    assert rc == 0 and planned["changed"] is True and planned["name"] != legacy

    declaration = tmp_path / "vars.yml"
    declaration.write_text(
        yaml.safe_dump(
            dict(
                swarm_secrets=[dict(name="mig_password", data=value)],
                swarm_services=[dict(name="migrant", image=swarm["image"], secrets=[dict(source="mig_password")])],
            )
        )
    )
    seen, stop = [], threading.Event()

    def watch():  # the service must never be down while it moves
        while not stop.is_set():
            seen.append(live_services(LAB)["migrant"]["running"])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        migrated = run_playbook(swarm["inventory"], "-e", "@%s" % declaration, playbook="services.yml")
    finally:
        stop.set()
        watcher.join()
    assert migrated.returncode == 0, migrated.stdout[-3000:]
    assert all(counts["failed"] == 0 for counts in migrated.stats["hosts"].values())
    assert len(seen) > 5 and min(seen) >= 1, seen
    live = converged(LAB, ["migrant"])["migrant"]
    assert live["spec"]["secrets"] == [planned["name"]] and live["running"] == 2 and live["failed"] == []
    assert service_reads("migrant", "/run/secrets/mig_password", value) == value
    assert value not in migrated.stdout and sha256(value)[:12] not in migrated.stdout.replace(legacy, "")
    # The legacy version stays while a rollback would return to it, and goes once nothing needs it.
    assert names("secret", "mig_password") == sorted([legacy, planned["name"]])
    host("docker service update -q --detach=false --force migrant >/dev/null 2>&1")
    rc, settled, _ = run_module(swarm["inventory"], "swarm_secret", dict(name="mig_password", data=value))
    assert rc == 0 and settled["pruned"] == [legacy] and names("secret", "mig_password") == [planned["name"]]
    host("docker service rm migrant >/dev/null")


def test_unversioned_config_in_use_refuses_to_change_and_unused_is_recreated(swarm):
    inv = swarm["inventory"]
    rc, created, _ = run_module(inv, "swarm_config", dict(name="motd", data="hello\n", versioned=False))
    assert rc == 0 and created["changed"] is True and created["name"] == "motd"
    create_service(swarm, "web", "--config source=motd,target=/etc/motd")

    rc, refused, _ = run_module(inv, "swarm_config", dict(name="motd", data="bye\n", versioned=False))
    assert rc != 0 and refused["changed"] is False
    assert refused["msg"].startswith("config motd: its value changed")
    assert "services use it: web. Fix: set versioned: true" in refused["msg"]

    host("docker service rm web >/dev/null")
    rc, recreated, _ = run_module(inv, "swarm_config", dict(name="motd", data="bye\n", versioned=False))
    assert rc == 0 and recreated["changed"] is True and recreated["id"] != created["id"]
    assert host("docker config inspect motd --format '{{printf \"%s\" .Spec.Data}}'") == "bye"
    rc, _, _ = run_module(inv, "swarm_config", dict(name="motd", state="absent"))
    assert rc == 0 and names("config", "motd") == []


def test_config_from_a_file_on_the_target(swarm):
    host("printf 'listen 80;\\n' > /tmp/app.conf")
    rc, result, _ = run_module(swarm["inventory"], "swarm_config", dict(name="app_conf", data_src="/tmp/app.conf"))
    assert rc == 0 and result["changed"] is True
    assert host("docker config inspect %s --format '{{printf \"%%s\" .Spec.Data}}'" % result["name"]) == "listen 80;"

"""swarm_secret and swarm_config on a real engine: check mode, create, no change, rotation while a service
uses the old version, pruning, versioned: false refusing to change an object in use, state=absent.

Its own throwaway lab (`secrettest`, a single-node swarm), not the shared `lab` fixture: the modules need
only a manager, so the engine is started and the swarm initialised by hand instead of by cluster.yml."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO

LAB = "secrettest"
LAB_PY = str(REPO / "lab" / "lab.py")
CONTAINER = "swarmplane-%s-manager-1" % LAB


def host(command, check=True):
    result = subprocess.run(["docker", "exec", CONTAINER, "sh", "-c", command], text=True, capture_output=True)
    if check:
        assert result.returncode == 0, "%s: %s" % (command, result.stderr[-2000:])
    return result.stdout.strip()


def run_module(inventory, module, args, check=False, diff=False):
    """One ad-hoc module run on manager-1; returns (rc, the module's result, the whole output)."""
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_CALLBACK_RESULT_FORMAT="json",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    argv = [str(Path(sys.executable).parent / "ansible"), "-i", str(inventory), "manager-1"]
    argv += ["-m", "swarmplane.cluster.%s" % module, "-a", json.dumps(args)]
    argv += ["--check"] if check else []
    argv += ["--diff"] if diff else []
    proc = subprocess.run(argv, cwd=REPO, env=env, text=True, capture_output=True, timeout=300)
    output = proc.stdout + proc.stderr
    marker = proc.stdout.find("manager-1 | ")
    assert marker >= 0, output[-3000:]
    start = proc.stdout.index("{", marker)
    result, _ = json.JSONDecoder().raw_decode(proc.stdout[start:])
    return proc.returncode, result, output


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


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    """A single-node swarm in a lab container, with the lab web image loaded; removed even when tests fail."""
    inventory = tmp_path_factory.mktemp(LAB) / "hosts.yml"
    try:
        subprocess.run(
            [LAB_PY, "up", "--name", LAB, "--managers", "1", "--workers", "0", "--inventory", str(inventory)],
            check=True,
        )
        host(
            "start-stop-daemon --start --background --output /var/log/dockerd.log --exec /usr/sbin/dockerd; "
            "for i in $(seq 30); do docker info >/dev/null 2>&1 && break; sleep 1; done; "
            "docker swarm init >/dev/null"
        )
        image = subprocess.run(
            [str(REPO / "lab" / "build-web-image.sh")], check=True, text=True, capture_output=True
        ).stdout.split()[-1]
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        subprocess.run(["docker", "exec", "-i", CONTAINER, "docker", "load"], stdin=save.stdout, check=True)
        save.stdout.close()
        assert save.wait() == 0
        yield dict(inventory=inventory, image=image)
    finally:
        subprocess.run([LAB_PY, "down", "--name", LAB], check=False)


def create_service(swarm, name, flag):
    host("docker service create -q --detach=false --name %s %s %s >/dev/null 2>&1" % (name, flag, swarm["image"]))


def test_secret_rotation_while_in_use_pruning_and_removal(swarm):
    inv = swarm["inventory"]
    args = dict(name="db_password", data="hunter2", labels={"app": "web"})

    rc, check, output = run_module(inv, "swarm_secret", args, check=True, diff=True)
    assert rc == 0 and check["changed"] is True and check["id"] is None
    v1 = check["name"]
    assert v1.startswith("db_password_") and len(v1) == len("db_password_") + 12
    assert names("secret", "db_password") == []
    assert "hunter2" not in output and '"sha256": "%s"' % check["sha256"] in output

    rc, first, _ = run_module(inv, "swarm_secret", args)
    assert rc == 0 and first["changed"] is True and first["name"] == v1 and first["id"]
    assert names("secret", "db_password") == [v1]
    labels = json.loads(host("docker secret inspect %s --format '{{json .Spec.Labels}}'" % v1))
    assert labels == {"app": "web", "swarmplane.name": "db_password", "swarmplane.sha256": first["sha256"]}

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

    # The service moves to the newest version; the old one goes on a later run with keep_versions: 0 only
    # once no service's previous spec (a rollback) needs it.
    host(
        "docker service update -q --detach=false --secret-rm %s --secret-add source=%s,target=db_password app"
        % (v1, versions[0])
    )
    assert service_reads("app", "/run/secrets/db_password", "hunter5") == "hunter5"
    rc, pruned, _ = run_module(inv, "swarm_secret", dict(args, data="hunter5", keep_versions=0))
    assert rc == 0 and pruned["pruned"] == [versions[1]] and pruned["versions"] == [versions[0], v1]

    rc, refused, _ = run_module(inv, "swarm_secret", dict(name="db_password", state="absent"))
    assert rc != 0
    assert refused["msg"].startswith("secret db_password: this version is still used by services")
    assert "%s (used by app)" % versions[0] in refused["msg"]
    assert names("secret", "db_password") == [versions[0]]

    host("docker service rm app >/dev/null")
    rc, removed, _ = run_module(inv, "swarm_secret", dict(name="db_password", state="absent"))
    assert rc == 0 and removed["changed"] is True and removed["pruned"] == [versions[0]]
    assert names("secret", "db_password") == []


def test_unversioned_config_in_use_refuses_to_change_and_unused_is_recreated(swarm):
    inv = swarm["inventory"]
    rc, created, _ = run_module(inv, "swarm_config", dict(name="motd", data="hello\n", versioned=False))
    assert rc == 0 and created["changed"] is True and created["name"] == "motd"
    create_service(swarm, "web", "--config source=motd,target=/etc/motd")

    rc, refused, _ = run_module(inv, "swarm_config", dict(name="motd", data="bye\n", versioned=False))
    assert rc != 0 and refused["changed"] is False
    assert refused["msg"].startswith("config motd: its value changed")
    assert "services use it: web. Set versioned: true" in refused["msg"]

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

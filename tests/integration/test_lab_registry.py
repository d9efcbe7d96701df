"""The lab registry (`lab/lab.py up --registry`): the web images are pushed into it, cluster.yml makes the lab
hosts' engines trust it (one restart for daemon.json), a service pulls from it on every node and answers, a
second run changes nothing, and `down` removes the registry with the rest of the lab.

Its own lab (`regtest`, 1 manager + 1 worker), not the shared `lab` fixture: the registry changes daemon.json."""

import json
import subprocess
import time
import urllib.request

import pytest
import yaml
from conftest import REPO, changed, run_playbook
from test_engine_config import restarted

LAB = "regtest"
LAB_PY = str(REPO / "lab" / "lab.py")
REGISTRY_CONTAINER = "swarmplane-%s-registry" % LAB
IMAGE = "lab-registry:5000/swarmplane/web:v1"


def lab_up(inventory):
    size = ["--managers", "1", "--workers", "1"]
    subprocess.run([LAB_PY, "up", "--name", LAB, *size, "--registry", "--inventory", str(inventory)], check=True)


def docker_out(*args):
    return subprocess.check_output(["docker", *args], text=True)


def host_exec(host, command):
    return subprocess.run(
        ["docker", "exec", "swarmplane-%s-%s" % (LAB, host), "sh", "-c", command], text=True, capture_output=True
    )


def registry_port():
    return int(docker_out("port", REGISTRY_CONTAINER, "5000/tcp").rsplit(":", 1)[1])


def registry_get(path):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://127.0.0.1:%d%s" % (registry_port(), path), timeout=5) as response:
        return json.load(response)


def fetch(host, url, attempts=20):
    """GET url from inside a lab host (python3 is in the host image; curl and wget are not), retried."""
    script = "import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=3).read().decode().strip())"
    for _ in range(attempts):
        result = host_exec(host, "python3 -c '%s' %s" % (script, url))
        if result.returncode == 0:
            return result.stdout.strip()
        time.sleep(0.5)
    raise AssertionError("no reply from %s on %s: %s" % (url, host, result.stderr[-500:]))


def lab_objects():
    containers = docker_out("ps", "-aq", "--filter", "label=swarmplane.lab=%s" % LAB)
    networks = docker_out("network", "ls", "-q", "--filter", "name=swarmplane-%s" % LAB)
    return containers.split() + networks.split()


@pytest.fixture(scope="module")
def regtest_lab(tmp_path_factory):
    inventory = tmp_path_factory.mktemp("regtest") / "hosts.yml"
    try:
        lab_up(inventory)
        yield inventory
    finally:
        subprocess.run([LAB_PY, "down", "--name", LAB], check=False)


def test_up_starts_the_registry_with_the_web_images(regtest_lab):
    all_vars = yaml.safe_load(regtest_lab.read_text())["all"]["vars"]
    assert all_vars["lab_registry"] == "lab-registry:5000"
    assert all_vars["docker_engine_daemon_options"] == {"insecure-registries": ["lab-registry:5000"]}

    info = json.loads(docker_out("inspect", REGISTRY_CONTAINER))[0]
    assert info["Config"]["Labels"]["swarmplane.lab"] == LAB
    assert "lab-registry" in info["NetworkSettings"]["Networks"]["swarmplane-%s" % LAB]["Aliases"]
    assert [b["HostIp"] for b in info["HostConfig"]["PortBindings"]["5000/tcp"]] == ["127.0.0.1"]

    assert registry_get("/v2/_catalog") == {"repositories": ["swarmplane/web"]}
    assert sorted(registry_get("/v2/swarmplane/web/tags/list")["tags"]) == ["broken", "v1", "v2"]
    outer_tags = docker_out("images", "--format", "{{.Repository}}").split()
    assert not [t for t in outer_tags if t.startswith("127.0.0.1:%d/" % registry_port())], "temporary tags left"

    # A second `up` reuses the registry: same container, same port.
    port = registry_port()
    lab_up(regtest_lab)
    assert registry_port() == port
    assert json.loads(docker_out("inspect", REGISTRY_CONTAINER))[0]["Id"] == info["Id"]


def test_a_service_pulls_from_the_lab_registry_on_every_node(regtest_lab):
    first = run_playbook(regtest_lab)
    assert first.returncode == 0, first.stdout[-3000:]
    # One restart per host, one host at a time (on a fresh lab no host is a manager yet when the order is decided).
    assert sorted(restarted(first)) == ["manager-1", "worker-1"]
    for host in ("manager-1", "worker-1"):
        assert json.loads(host_exec(host, "cat /etc/docker/daemon.json").stdout) == {
            "insecure-registries": ["lab-registry:5000"]
        }

    created = host_exec(
        "manager-1",
        "docker service create --quiet --name web --replicas 2 "
        "--publish mode=host,target=8000,published=8080 %s" % IMAGE,
    )
    assert created.returncode == 0, created.stderr
    tasks = host_exec("manager-1", "docker service ps web --format '{{.Node}} {{.CurrentState}} {{.Error}}'").stdout
    assert sorted(line.split()[0] for line in tasks.splitlines()) == ["manager-1", "worker-1"], tasks
    assert all(" Running " in line for line in tasks.splitlines()), tasks

    addresses = yaml.safe_load(regtest_lab.read_text())["all"]["children"]["swarm"]["children"]
    for group in ("managers", "workers"):
        for name, host_vars in addresses[group]["hosts"].items():
            reply = fetch("manager-1", "http://%s:8080/" % host_vars["ansible_host"])
            assert reply.endswith(" v1"), reply
            # The task on that node pulled the image from the lab registry.
            pulled = host_exec(name, "docker images --format '{{.Repository}}' lab-registry:5000/swarmplane/web")
            assert pulled.stdout.split() == ["lab-registry:5000/swarmplane/web"]

    second = run_playbook(regtest_lab)
    assert second.returncode == 0, second.stdout[-3000:]
    assert restarted(second) == []
    assert set(changed(second).values()) == {0}


def test_down_removes_the_registry_with_the_lab(regtest_lab):
    assert lab_objects()
    subprocess.run([LAB_PY, "down", "--name", LAB], check=True, capture_output=True)
    assert lab_objects() == []
